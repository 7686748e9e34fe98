"""``predict(path)`` of a photo turned by its EXIF orientation tag warns, as ``devolens segment`` notes it: the labels
follow the turned image (752 x 512 for a 512 x 752 file) while napari and imageio show the file unturned, so a plugin's
labels layer did not fit its image layer, without a word (session-43 walkthrough)."""
import warnings

import numpy as np
import pytest
from PIL import Image

from devolens.errors import DevolensWarning, InputWarning


def _jpeg(path, orientation=None):
    rng = np.random.default_rng(0)
    img = rng.normal(20, 3, (64, 96)).clip(0, 255).astype(np.uint8)
    img[20:30, 30:40] = 200
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.fromarray(img).save(path, exif=exif.tobytes(), quality=95)
    return path


@pytest.fixture(scope="module")
def nuclei():
    from devolens.models import load

    return load("nuclei", diameter=None)


def test_a_turned_photo_read_by_path_warns_and_its_labels_follow_the_turn(tmp_path, nuclei):
    path = _jpeg(tmp_path / "turned.jpg", orientation=6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nuclei.predict(path)
    assert res.labels.shape == (96, 64)  # (turned a quarter: as a photo viewer shows it)
    turned = [w for w in caught if issubclass(w.category, InputWarning) and "EXIF orientation tag (6)" in str(w.message)]
    assert len(turned) == 1 and issubclass(turned[0].category, DevolensWarning)
    assert "napari and scikit-image show the file unturned" in str(turned[0].message)
    assert str(path) in str(turned[0].message)
    assert turned[0].filename == __file__  # (named at the caller's line, as the library's warnings are)


@pytest.mark.parametrize("orientation", [None, 1])
def test_an_unturned_photo_or_an_array_gets_no_such_warning(tmp_path, nuclei, orientation):
    path = _jpeg(tmp_path / "plain.jpg", orientation=orientation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nuclei.predict(path)
        nuclei.predict(np.asarray(Image.open(path)))
    assert res.labels.shape == (64, 96)
    assert not [w for w in caught if "EXIF" in str(w.message)]
