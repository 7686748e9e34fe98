"""Messages that name one of the user's options name it as the user gave it: the ``devolens`` command's flag
(``--channel 5``) while the command runs, the library function's argument (``channel=5``) in Python
(:func:`devolens.errors.option`); the command's own messages are word for word as before, and the command's mode
never outlives it."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from devolens.cli import app, main
from devolens.errors import DevolensError, command_running, option, set_command


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture
def four_channels(tmp_path):
    """A TCYX hyperstack of 3 time points and 4 channels."""
    path = tmp_path / "c.tif"
    data = np.random.default_rng(0).integers(0, 4000, (3, 4, 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    return path


@pytest.fixture
def three_planes(tmp_path):
    """A well of three unnamed grey channels (C, H, W): which are Hoechst and Draq7 must be chosen."""
    path = tmp_path / "three.tif"
    image = np.random.default_rng(1).integers(0, 3000, (3, 80, 96), dtype=np.uint16)
    tifffile.imwrite(path, image, photometric="minisblack", metadata={"axes": "CYX"})
    return path


@pytest.fixture(autouse=True)
def _library_mode():
    """Every test starts (and leaves) the library's mode, whatever an earlier test did."""
    set_command(False)
    yield
    set_command(False)


# ------------------------------------------------------------------------------------------------ option()


def test_option_names_the_argument_in_python_and_the_flag_in_the_command():
    assert not command_running()
    assert option("channel", "5") == "channel=5"
    assert option("channel") == "channel"
    assert option("channel", "N", cli_value="") == "channel=N"
    assert option("stack_z", "'slices'", cli_value="slices") == "stack_z='slices'"
    assert option("order", "[2, 0]", flag="--channels", cli_value="2,0") == "order=[2, 0]"
    set_command(True)
    assert command_running()
    assert option("channel", "5") == "--channel 5"
    assert option("channel") == "--channel"
    assert option("channel", "N", cli_value="") == "--channel"
    assert option("stack_z", "'slices'", cli_value="slices") == "--stack-z slices"
    assert option("order", "[2, 0]", flag="--channels", cli_value="2,0") == "--channels 2,0"
    assert option("pages", flag="pages (--pages)") == "pages (--pages)"


# ------------------------------------------------------------------------------------------------ stacks


def test_a_stack_read_in_python_names_its_arguments_not_flags(four_channels, tmp_path):
    from devolens.io.stacks import check_pages, check_stack_z, open_stack, read_pages_as, stack_info

    with pytest.raises(DevolensError) as exc:
        open_stack(four_channels, channel=5)
    assert "channel=5 is out of range: this stack has 4 channel(s) (0..3)" in str(exc.value)
    assert "--" not in str(exc.value)
    with pytest.raises(DevolensError) as exc:
        open_stack(four_channels)
    assert str(exc.value).endswith("choose one with channel=0..3") and "--" not in str(exc.value)
    with pytest.raises(DevolensError) as exc:
        check_pages("sideways")
    assert str(exc.value) == "pages must be one of time, z, got 'sideways'"
    with pytest.raises(DevolensError) as exc:
        check_stack_z("all")
    assert str(exc.value) == "z must be one of project, slices, got 'all'"
    # two unlabelled axes (a 4-D array saved without axes) read with pages="z"
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((2, 3, 16, 16), np.uint16), photometric="minisblack")
    with pytest.raises(DevolensError) as exc:
        read_pages_as(stack_info(plain), "z", plain)
    assert "pages='z': this TIFF has 2 unlabelled axes" in str(exc.value) and "--pages" not in str(exc.value)


def test_a_channel_last_image_saved_without_axes_is_refused_naming_the_argument(tmp_path):
    from devolens.io.stacks import open_stack

    rows = tmp_path / "rows.tif"  # np.dstack([a, b]) saved as it is: one page per row, each W x 2 pixels
    tifffile.imwrite(rows, np.zeros((40, 24, 2), np.uint16), photometric="minisblack")
    with pytest.raises(DevolensError) as exc:
        open_stack(rows)
    assert str(exc.value).endswith("then choose the channel with channel=N")


def test_the_command_keeps_its_flags_word_for_word(four_channels, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["curate", "frames", str(four_channels), "--out", str(out), "--channel", "5"]) == 2
    assert f"error: {four_channels}: --channel 5 is out of range: this stack has 4 channel(s) (0..3)" in _err(capsys)
    assert main(["curate", "frames", str(four_channels), "--out", str(out)]) == 2
    assert _err(capsys).endswith("choose one with --channel 0..3")
    assert not out.exists()


def test_the_mode_ends_with_the_command_however_it_ends(four_channels, tmp_path, capsys):
    """After a command that failed, one that succeeded and one run by typer's CliRunner (not main), the library
    speaks Python again."""
    from typer.testing import CliRunner

    from devolens.io.stacks import open_stack

    def library_words() -> str:
        with pytest.raises(DevolensError) as exc:
            open_stack(four_channels, channel=7)
        return str(exc.value)

    assert main(["curate", "frames", str(four_channels), "--out", str(tmp_path / "a.csv"), "--channel", "7"]) == 2
    assert "--channel 7 is out of range" in _err(capsys)
    assert not command_running() and "channel=7 is out of range" in library_words()
    assert main(["curate", "frames", str(four_channels), "--out", str(tmp_path / "b.csv"), "--channel", "1"]) == 0
    assert not command_running() and "channel=7 is out of range" in library_words()
    result = CliRunner().invoke(app, ["curate", "frames", str(four_channels), "--out", str(tmp_path / "c.csv"),
                                      "--channel", "7"])
    assert result.exit_code != 0 and "--channel 7 is out of range" in str(result.exception)
    assert not command_running() and "channel=7 is out of range" in library_words()


def test_a_report_of_other_stack_options_names_them_as_arguments(tmp_path):
    from devolens.curate.frames import curate_path, reading_options, report_mismatch

    stack = tmp_path / "tz.tif"
    grey = np.random.default_rng(2).integers(0, 4000, (3, 2, 48, 64), dtype=np.uint16)
    tifffile.imwrite(stack, grey, imagej=True, metadata={"axes": "TZYX"})
    report = curate_path(stack)  # projected: input_options "--stack-z project", as the command records it
    assert (report["input_options"] == "--stack-z project").all()
    options = reading_options(stack, stack_z="slices")
    why = report_mismatch(report, None, options=options)
    assert "made with `stack_z='project'`, this run reads the input with `stack_z='slices'`" in why
    set_command(True)
    why = report_mismatch(report, None, options=options)
    assert "made with `--stack-z project`, this run reads the input with `--stack-z slices`" in why


# ------------------------------------------------------------------------------------------------ wells


def test_a_well_read_in_python_names_channels_not_the_flag(three_planes, tmp_path):
    from devolens.data.tiling import read_image
    from devolens.predict.tiled import RowReader

    for read in (lambda: RowReader(three_planes), lambda: read_image(three_planes)):
        with pytest.raises(DevolensError) as exc:
            read()
        text = str(exc.value)
        assert ("choose its Hoechst and Draq7 channels with channels=[H, D] (0-based, e.g. [0, 1]; order= of "
                "tile_to_h5, read_image and RowReader)") in text
        assert "--channels" not in text


def test_a_colour_well_with_green_signal_names_channels_in_python(tmp_path):
    import imageio.v3 as iio

    from devolens.io.wells import read_colour_image
    from devolens.predict.tiled import RowReader

    rgb = np.random.default_rng(3).integers(0, 250, (64, 80, 3), dtype=np.uint8)  # signal in every colour
    tifffile.imwrite(tmp_path / "w.tif", rgb, photometric="rgb")
    iio.imwrite(tmp_path / "w.png", rgb)
    for read in (lambda: RowReader(tmp_path / "w.tif"), lambda: read_colour_image(tmp_path / "w.png")):
        with pytest.raises(DevolensError) as exc:
            read()
        text = str(exc.value)
        assert "choose them with channels=[H, D] (0-based" in text and "is channels=[2, 0]; order= of" in text
        assert "--channels" not in text


def test_the_rgb_tiff_note_names_channels_in_python_and_the_flag_in_the_command(tmp_path):
    from devolens.predict.tiled import RGB_TIFF_NOTE, RowReader, rgb_tiff_note

    rgb = np.zeros((64, 80, 3), np.uint8)
    rgb[20:30, 20:30, 2], rgb[40:50, 40:50, 0] = 200, 150  # Hoechst blue, Draq7 red, green empty
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with RowReader(tmp_path / "rgb.tif") as r:
        assert "channels=[H, D] chooses others" in r.note and "--channels" not in r.note
    from devolens.data.tiling import read_image

    with pytest.warns(UserWarning) as said:  # tile_to_h5's reader words it so too
        read_image(tmp_path / "rgb.tif")
    text = " ".join(str(w.message) for w in said)
    assert "channels=[H, D] chooses others" in text and "--channels" not in text
    set_command(True)
    assert rgb_tiff_note() == RGB_TIFF_NOTE == (
        "an RGB TIFF without channel names: Hoechst read from its blue, Draq7 from its red (as for a PNG); "
        "--channels H,D chooses others (red 0, green 1, blue 2)")


def test_the_tile_command_keeps_its_channels_flag(three_planes, tmp_path, capsys):
    labels = tmp_path / "lab.tif"
    tifffile.imwrite(labels, np.zeros((80, 96), np.uint16))
    assert main(["tile", str(three_planes), "--labels", str(labels), "--out", str(tmp_path / "t.h5"),
                 "--tile", "64", "--stride", "32", "--keep", "all"]) == 2
    assert "choose its Hoechst and Draq7 channels with --channels H,D (0-based, e.g. 0,1)" in _err(capsys)
    assert not command_running()


def test_well_channel_notes_name_channels_in_python(tmp_path):
    from devolens.io.wells import well_channel_order

    path = tmp_path / "named.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 16, 16), np.uint16), ome=True,
                     metadata={"axes": "CYX", "Channel": {"Name": ["Hoechst", "Calcein"]}})
    order, note = well_channel_order(path, 2)
    assert note is not None and "(choose the channels with channels=[H, D]; order= of" in note
    set_command(True)
    assert well_channel_order(path, 2)[1].endswith("(choose the channels with --channels H,D)")


# ------------------------------------------------------------------------------------------------ export


def test_an_exported_model_given_to_export_names_load_in_python(tmp_path):
    from devolens.models.export import export_run

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "card.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DevolensError) as exc:
        export_run(folder, tmp_path / "to")
    assert "use it as it is (devolens.models.load(FOLDER))" in str(exc.value)
    set_command(True)
    with pytest.raises(DevolensError) as exc:
        export_run(folder, tmp_path / "to")
    assert "use it as it is (--model FOLDER)" in str(exc.value)

