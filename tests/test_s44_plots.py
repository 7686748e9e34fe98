"""Publication-ready population plots (forty-fourth session): one colour-blind-safe style per letter (Okabe-Ito
colour plus a line style and marker) shared by ``population`` and ``lineage populations``; ``population
--plot-format svg|pdf``; SVG and PDF plots that are the same bytes run after run."""

from __future__ import annotations

import json
from itertools import combinations

import pytest
from matplotlib.colors import to_hex

from _cli_helpers import blob_frame
from _lineage_builders import run_cli
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.viz.plots import LETTER_COLOURS, LETTER_STYLES, letter_style

LETTERS = ("A", "E", "M", "P", "C", "D", "Z", "total")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A small simulated embryo written as a tidy lineage table."""
    from devolens.io.tables import write_tidy
    from devolens.lineage.simulate import simulate_embryo

    path = tmp_path_factory.mktemp("s44") / "emb.csv"
    write_tidy(simulate_embryo(0, n_cells=60), path)
    return path


def _drawn(fig) -> dict[str, tuple]:
    """Each curve of a populations figure by its label: (colour, line style, marker)."""
    return {line.get_label(): (to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
            for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")}


def _expected(letters) -> dict[str, tuple]:
    from matplotlib.lines import Line2D

    def style(col):
        s = LETTER_STYLES[col]
        probe = Line2D([], [], ls=s["ls"], marker=s["marker"])  # matplotlib's spelling of the style ("--" ...)
        return to_hex(s["color"]), probe.get_linestyle(), probe.get_marker()

    return {col: style(col) for col in letters}


def test_every_letter_has_its_own_colour_and_a_second_cue():
    """matplotlib's default colours, plain solid lines: A and C alike under deuteranopia, E and M under protanopia.
    Every pair now differs in colour and in line style or marker."""
    assert list(LETTER_STYLES) == list(LETTERS)
    for a, b in combinations(LETTERS, 2):
        sa, sb = LETTER_STYLES[a], LETTER_STYLES[b]
        assert sa["color"].lower() != sb["color"].lower(), (a, b)
        assert (sa["ls"], sa["marker"]) != (sb["ls"], sb["marker"]), (a, b)
    assert "--" not in {s["ls"] for s in LETTER_STYLES.values()}  # (a cliff's mark)
    assert LETTER_COLOURS == {col: s["color"] for col, s in LETTER_STYLES.items()}  # (the demo's colours)


def test_markers_every_nth_point_staggered():
    """A long curve carries a marker every n-th point, not at each (a blur), the letters' starting apart."""
    starts = {letter_style(col, 120)["markevery"] for col in "AEMPCDZ"}
    assert {every for _, every in starts} == {10} and len({start for start, _ in starts}) == 7
    assert "markevery" not in letter_style("total", 120)


def test_lineage_populations_plot_draws_the_letter_styles(table, tmp_path, capsys, figures):
    code, _, err = run_cli(["lineage", "populations", str(table), "--out", str(tmp_path / "p.csv"), "--plot",
                            str(tmp_path / "p.png")], capsys)
    assert code == 0, err
    drawn = _drawn(figures[-1])
    assert drawn == _expected(drawn) and {"A", "total"} <= set(drawn)


def test_population_plot_draws_the_same_styles_and_takes_a_vector_format(tiny_zoo, tmp_path, figures):
    """``population`` wrote only a PNG; ``--plot-format svg|pdf`` writes the plot as NAME.svg or NAME.pdf (the
    record names it), in the same styles as ``lineage populations``, and a rerun gives the same bytes."""
    from devolens.cli import main
    from devolens.io.images import write_png

    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        write_png(blob_frame(seed=i), src / f"t{i + 1:03d}.png")
    out = tmp_path / "p.csv"
    assert main(["population", str(src), "--out", str(out)]) == 0
    drawn = _drawn(figures[-1])
    assert drawn == _expected(drawn) and set(drawn) == set(LETTERS)
    assert (tmp_path / "p.png").is_file()
    for fmt in ("svg", "PDF"):
        image = tmp_path / f"p.{fmt.lower()}"
        assert main(["population", str(src), "--out", str(out), "--plot-format", fmt]) == 0
        first = image.read_bytes()
        assert json.loads((tmp_path / "p.json").read_text())["plot"] == str(image)
        assert main(["population", str(src), "--out", str(out), "--plot-format", fmt]) == 0
        assert image.read_bytes() == first
    assert not (tmp_path / "p.png").exists()  # (an earlier run's plot this one does not write: removed, as before)


def test_population_refuses_another_plot_format(tmp_path, capsys):
    from devolens.cli import main

    assert main(["population", str(tmp_path), "--out", str(tmp_path / "p.csv"), "--plot-format", "jpg"]) != 0
    err = capsys.readouterr().err
    assert "--plot-format must be one of png, svg, pdf" in err and "Traceback" not in err


@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_vector_plots_are_the_same_bytes_every_run(table, tmp_path, capsys, suffix):
    """Two runs writing the same SVG differed in ``<dc:date>`` and random clip-path ids, PDFs in
    ``/CreationDate``."""
    images = []
    image = tmp_path / f"q{suffix}"
    for _ in range(2):
        code, _, err = run_cli(["lineage", "populations", str(table), "--out", str(tmp_path / "q.csv"), "--plot",
                                str(image)], capsys)
        assert code == 0, err
        images.append(image.read_bytes())
    assert images[0] == images[1]
    assert b"dc:date" not in images[0] and b"/CreationDate" not in images[0]
