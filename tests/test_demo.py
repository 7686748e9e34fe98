"""The demo runs end to end on data the project makes itself, and its report explains what it reports."""

import re

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.cli import demo


def _frames_csv(times, artifacts):
    """A render/frames.csv of ``render --video``: a dropped time point has no file and no video frame."""
    kept = np.cumsum([a != "dropped" for a in artifacts]) - 1
    return pd.DataFrame({
        "file": ["" if a == "dropped" else f"frames/t{t:03d}.png" for t, a in zip(times, artifacts)],
        "time": times, "embryo": "sim", "total": [2 * i + 1 for i in range(len(times))], "artifact": artifacts,
        "video_frame": [pd.NA if a == "dropped" else int(k) for a, k in zip(artifacts, kept)],
    })


# the seed-7 demo's render: every 4th of 109 time points, three artifacts in the video and t093 dropped
SEVEN_TIMES = list(range(1, 110, 4))
SEVEN_ARTIFACTS = ["dropped" if t == 93 else {13: "red_line", 29: "dark", 65: "black"}.get(t, "") for t in SEVEN_TIMES]


def _curation(n_frames, flagged, flag="dark"):
    return pd.DataFrame({"frame": np.arange(n_frames), "flagged": [k in flagged for k in range(n_frames)],
                         "flag": [flag if k in flagged else "" for k in range(n_frames)]})


def test_frame_map_numbers_video_frames_and_leaves_dropped_ones_out():
    fmap = demo._frame_map(_frames_csv(SEVEN_TIMES, SEVEN_ARTIFACTS))
    assert len(fmap) == 28 and fmap["video frame"].notna().sum() == 27
    dropped = fmap[fmap["video frame"].isna()]
    assert dropped["time"].tolist() == [93]
    assert fmap.set_index("time").loc[[1, 89, 97, 109], "video frame"].tolist() == [0, 22, 23, 26]


def test_frame_time_sentence_gives_the_mapping_and_the_shift_after_a_dropped_frame():
    text = demo._frame_time_sentence(demo._frame_map(_frames_csv(SEVEN_TIMES, SEVEN_ARTIFACTS)))
    assert "Video frame k (numbered from 0" in text
    assert "time point 1 + 4k for frames 0-22 (t001-t089)" in text
    assert "time point 93 was dropped" in text and "from frame 23 on" in text
    assert "time point 5 + 4k for frames 23-26 (t097-t109)" in text
    plain = demo._frame_time_sentence(demo._frame_map(_frames_csv([1, 2, 3], ["", "", ""])))
    assert "time point 1 + k for frames 0-2" in plain and "No time point was dropped" in plain


def test_curation_counts_split_the_renderers_artifacts_into_video_frames_and_dropped_ones():
    fmap = demo._frame_map(_frames_csv(SEVEN_TIMES, SEVEN_ARTIFACTS))
    counts = demo._curation_counts(fmap, _curation(27, {3, 7, 16, 20}))  # 20: a clean frame flagged
    assert counts["artifacts recorded by the renderer"] == 4
    assert counts["in video frames (corrupt, truth)"] == 3 and counts["dropped (missing from the video)"] == 1
    assert counts["artifacts recorded by the renderer"] == (counts["in video frames (corrupt, truth)"]
                                                            + counts["dropped (missing from the video)"])
    assert counts["frames in the video"] == 27 and counts["rendered time points"] == 28
    assert (counts["flagged by curate"], counts["correctly flagged"], counts["flagged but clean"],
            counts["missed (corrupt, not flagged)"]) == (4, 3, 1, 0)
    text = demo._curation_sentence(fmap, counts)
    assert text.startswith("4 artifacts recorded by the renderer")
    assert "3 in frames that are in the video (red_line t013, dark t029, black t065)" in text
    assert "1 dropped frame (t093), missing from the video" in text


def test_per_frame_table_shows_the_dropped_time_point_and_skipped_frames():
    fmap = demo._frame_map(_frames_csv(SEVEN_TIMES, SEVEN_ARTIFACTS))
    report = _curation(27, {3, 7, 16})
    seen = [k for k in range(27) if k not in (3, 7, 16)]
    counts = pd.DataFrame({"frame": seen, "count": seen})
    pred = pd.DataFrame({"frame": seen, "total": [float(k) for k in seen]})
    table = demo._per_frame_table(fmap, report, counts, pred)
    assert len(table) == 28
    row = table[table["time point"] == "t093"].iloc[0]
    assert row["video frame"] == "- (dropped)" and row["artifact (renderer)"] == "dropped"
    row = table[table["time point"] == "t097"].iloc[0]
    assert row["video frame"] == "23" and row["nuclei segmented"] == "23"
    row = table[table["time point"] == "t013"].iloc[0]
    assert row["video frame"] == "3" and row["nuclei segmented"] == "skipped" and row["flag (curate)"] == "dark"


def test_majority_baseline_and_an_honest_verdict():
    truth = np.array(["AB"] * 70 + ["MS"] * 20 + ["C"] * 10, dtype=object)
    major, share, base = demo._majority_baseline(truth)
    assert (major, share, base["accuracy"]) == ("AB", 0.7, 0.7)
    worse = {"accuracy": 0.659, "macro_f1": 0.100}
    text = demo._versus_baseline("Founder", worse, base, major)
    assert "does not beat the majority-class baseline" in text and "0.659 against 0.700" in text
    assert "every nucleus AB" in text
    better = {"accuracy": 0.95, "macro_f1": 0.9}
    assert "the model beats the majority-class baseline" in demo._versus_baseline("Founder", better, base, major)
    close = {"accuracy": 0.72, "macro_f1": 0.5}
    assert "only slightly above" in demo._versus_baseline("Founder", close, base, major)


def test_population_figure_uses_the_letter_colours_of_the_other_plots():
    from matplotlib.colors import to_hex

    from devolens.viz.plots import LETTER_COLOURS

    t = np.arange(1, 9)
    comp = pd.DataFrame({"time": t, "count": t, "total_pred": t + 0.5,
                         **{f"{L}_{s}": t * (i + 1) for i, L in enumerate(demo.LETTERS) for s in ("true", "pred")}})
    truth = pd.DataFrame({"time": t, "total": t})
    fig = demo._population_figure(truth, comp)
    right = fig.axes[1]
    by_label = {line.get_label(): to_hex(line.get_color()) for line in right.get_lines()}
    for L in demo.LETTERS:
        assert by_label[L] == LETTER_COLOURS[L].lower(), L
    assert {to_hex(line.get_color()) for line in right.get_lines()} == {LETTER_COLOURS[L].lower() for L in demo.LETTERS}
    assert to_hex(fig.axes[0].get_lines()[0].get_color()) == LETTER_COLOURS["total"].lower()


@pytest.mark.slow
def test_demo_writes_a_report_a_biologist_can_read(tmp_path, capsys):
    from devolens.cli.identify import _input_notes
    from devolens.lineage.names import LETTER_KEY, LETTER_KEY_LINE
    from devolens.models import load
    from devolens.models.zoo import card
    from devolens.io.tables import read_table
    from devolens.predict.identity import identity_labels

    out = tmp_path / "demo"
    # seed 24 at this size renders 12 time points: a duplicate, a dark frame and one dropped before the dark one
    assert main(["demo", "--out", str(out), "--cells", "40", "--frames", "10", "--seed", "24"]) == 0
    printed = capsys.readouterr().err
    report = (out / "report.md").read_text()
    for section in ("Corrupt frames", "populations", "Cell identities", "Video frames and time points"):
        assert section in report
    for name in ("embryo.csv", "curation.csv", "populations.csv", "cells.csv", "populations.png"):
        assert (out / name).is_file(), name
    assert any((out / "segment" / "labels").glob("*_labels.tif"))

    # 1. jargon explained, letters keyed
    for words in ("MAE = mean absolute error", "MAE / mean = that error as a fraction", "- founder: ",
                  "- depth-1: the founder's daughter", "macro-F1: for each class", LETTER_KEY_LINE):
        assert words in report, words
    assert report.index("MAE = mean absolute error") < report.index("| letter |")
    assert report.index("macro-F1: for each class") < report.index("founder macro-F1")
    for letter, what in LETTER_KEY.items():
        assert f"| {letter} | {what} |" in report, letter

    # 2. majority-class baseline beside the accuracy, with an honest verdict; identify's note and the card's limits
    table = read_table(out / "embryo.csv")
    cells = pd.read_csv(out / "cells.csv")
    truth = identity_labels(table["cell"], 0)
    named = truth.notna().to_numpy()
    share = truth[named].value_counts(normalize=True)
    accuracy = float(np.mean(cells["pred_founder"].to_numpy()[named] == truth.to_numpy()[named]))
    row = re.search(r"^\| founder accuracy \| ([0-9.]+) \| ([0-9.]+) \(every nucleus (\w+)\) \|$", report, re.M)
    assert row, "founder accuracy row with its baseline"
    assert float(row.group(1)) == pytest.approx(accuracy, abs=6e-4)
    assert float(row.group(2)) == pytest.approx(share.iloc[0], abs=6e-4) and row.group(3) == share.index[0]
    beats = round(accuracy, 3) > round(share.iloc[0], 3)
    assert ("Founder: the model does not beat the majority-class baseline" in report) == (not beats)
    notes = _input_notes(load("identity").predict(table).attrs)
    assert any("stops at" in n for n in notes)  # a 40-cell table is short
    for n in notes:
        assert f"> note: {n}" in report
    from devolens.cli.demo import identity_limits_summary  # the card's limits in short (s47), the card named

    for limit in identity_limits_summary(card("identity")):
        assert f"- {limit}" in report
    assert "`devolens models show identity`" in report

    # 3. artifacts: the renderer's count = in the video + dropped, and the dropped one is named
    frames = pd.read_csv(out / "render" / "frames.csv", keep_default_na=False)
    n_art = int((frames["artifact"] != "").sum())
    n_drop = int((frames["artifact"] == "dropped").sum())
    assert n_drop == 1, "seed 24 drops one frame at this size (the case this test is about)"
    assert f"| artifacts recorded by the renderer | {n_art} |" in report
    assert f"| in video frames (corrupt, truth) | {n_art - n_drop} |" in report
    assert f"| dropped (missing from the video) | {n_drop} |" in report
    assert f"{n_art} artifacts recorded by the renderer" in report and "missing from the video" in report
    assert f"| frames in the video | {int((frames['file'] != '').sum())} |" in report

    # 4. video frame -> time point, from the render, shifted after the dropped frame
    written = frames[frames["file"] != ""].reset_index(drop=True)
    for k, t in enumerate(written["time"]):
        assert re.search(rf"^\| {k} \| t{int(t):03d} \|", report, re.M), (k, t)
    t_drop = int(frames.loc[frames["artifact"] == "dropped", "time"].iloc[0])
    assert f"| - (dropped) | t{t_drop:03d} |" in report
    assert f"time point {t_drop} was dropped" in report and "Video frame k (numbered from 0" in report

    # 6. the run and the report give the same number of cells, the embryo's largest time point
    most = int(table.groupby("time").size().max())
    assert f"{most} cells at the last" in printed
    assert f"{most} cells at the last" in report and "at least 40 cells" in report


def test_demo_rejects_a_file_as_out(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["demo", "--out", str(target)]) == 2
