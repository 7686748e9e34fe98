"""unique_stems: the one rule for the names a folder's results start with (segment nuclei's frames, segment
livedead's wells)."""
from pathlib import Path

from devolens.io.frames import unique_stems


def test_stems_unless_two_files_share_one_case_blind():
    assert unique_stems(["b.png", Path("x.ome.tif"), "a.tif"]) == ["b", "x", "a"]
    assert unique_stems(["a.png", "a.ome.tif", "c.tif"]) == ["a.png", "a.ome.tif", "c"]  # c shares nothing
    assert unique_stems([Path("d") / "A.png", "a.tif"]) == ["A.png", "a.tif"]  # one name on macOS and Windows
    assert unique_stems([]) == []
