"""Session 51: ``curate frames`` of a variable-rate video says so: its ``time`` column is each frame's own, and
frames missing from it cannot be told from a longer interval (no note before: a user read a report without dropped
frames as a video without gaps). A constant-rate video gets no such note. A folder of frames of several sizes gets
one too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from test_s48_timing import _frames, _vfr_video


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_a_variable_rate_video_is_noted(tmp_path, capsys):
    from devolens.cli import main

    movie = _vfr_video(tmp_path / "vfr.mp4", _frames(12), [(1, 2, 3)[i % 3] for i in range(12)])
    assert main(["curate", "frames", str(movie), "--out", str(tmp_path / "r.csv")]) == 0
    said = _err(capsys)
    assert "note: vfr.mp4: its frames come at varying intervals" in said
    assert "frames missing from such a video cannot be told from a longer interval" in said
    times = pd.read_csv(tmp_path / "r.csv")["time"].tolist()
    assert times[:4] == [0, 1, 3, 6]  # (each frame's own seconds)


def test_a_constant_rate_video_is_not(tmp_path, capsys):
    import imageio.v3 as iio

    from devolens.cli import main

    path = tmp_path / "cfr.mp4"
    iio.imwrite(path, np.stack(_frames(12)), fps=5, codec="libx264")
    assert main(["curate", "frames", str(path), "--out", str(tmp_path / "r.csv")]) == 0
    assert "varying intervals" not in _err(capsys)


def test_a_folder_of_frames_of_several_sizes_is_noted(tmp_path, capsys):
    """Files cropped (or of another movie) in a folder: their change is not measured and their levels are compared
    with another field's; a note names them (population and segment had one, curate none)."""
    import imageio.v3 as iio

    from devolens.cli import main

    folder = tmp_path / "f"
    folder.mkdir()
    for i, frame in enumerate(_frames(8, size=(64, 96))):
        iio.imwrite(folder / f"t{i:03d}.png", frame[8:56, 8:72] if i in (3, 6) else frame)
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "r.csv")]) == 0
    said = _err(capsys)
    assert "note: 2 of 8 files (t003.png, t006.png) are of another size than the first (96x64 pixels): 64x48" in said
    report = pd.read_csv(tmp_path / "r.csv")
    assert report.loc[report["file"].isin(["t003.png", "t006.png"]), "change"].isna().all()
    same = tmp_path / "same"
    same.mkdir()
    for i, frame in enumerate(_frames(4, size=(64, 96))):
        iio.imwrite(same / f"t{i:03d}.png", frame)
    assert main(["curate", "frames", str(same), "--out", str(tmp_path / "s.csv")]) == 0
    assert "another size" not in _err(capsys)
