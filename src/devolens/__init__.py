"""devolens: deep learning for developmental-biology microscopy.

Start here (each is imported on first use after a bare ``import devolens``; ``help()`` on any of them says more):

- ``devolens.models.load(name, **options)``: a shipped model (``"nuclei"``, ``"membrane"``, ``"population"``,
  ``"identity"``, ``"livedead"``; ``devolens.models.available()``) or a folder of your own, as a predictor:
  ``load("nuclei", diameter="auto").predict(image)`` segments as ``devolens segment nuclei`` does (the library's
  default ``diameter`` is None: the image as it is), ``predict_iter(frames)`` streams a video;
  ``devolens.models.card(name)`` is a model's card.
- ``devolens.io.tables.read_table(path)``: a lineage table (EPIC, AceTree, tidy CSV);
  ``devolens.lineage.populations.populations``, ``devolens.lineage.cliffs``: its counts and annotation cliffs.
- ``devolens.io.frames.iter_path_frames(path)``: the frames of an image, folder, video or TIFF stack.
- ``devolens.curate.curate_path(path)``: the corrupt frames of a timelapse.
- ``devolens.render.dataset.render_dataset``, ``devolens.lineage.simulate.simulate_embryo``: training data.
- The command line: ``devolens --help`` (``devolens.cli.main(argv)`` from Python).

Layers (data flows left to right; a module imports only layers to its left):
``io -> lineage -> render -> data -> train -> models -> predict -> curate -> viz -> cli``.
"""

import os

# No network at run time, ever: albumentations (2.x) asks PyPI for a newer release when it is first imported
# (a blocking request; offline, a warning and whatever the resolver's time-out costs) unless this is set.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from devolens.errors import DevolensError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DevolensError", "__version__"]

#: the subpackages and modules that ``devolens.NAME`` imports on first use (``import devolens`` stays light: no
#: NumPy, no PyTorch), so that ``devolens.models.load("nuclei")`` works after a bare ``import devolens``
_SUBMODULES = frozenset({"checks", "cli", "curate", "data", "errors", "io", "lineage", "models", "predict",
                         "provenance", "render", "train", "viz"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _submodule(package: str, name: str):
    """A subpackage's ``__getattr__``: its module ``name`` imported on first use, so that the dotted paths the
    README gives (``devolens.io.tables.read_table``, ``devolens.lineage.populations``) work after a bare
    ``import devolens``, as ``devolens.models.load`` does (a package's modules are otherwise attributes only once
    imported); AttributeError for any other name."""
    import importlib
    import importlib.util

    if not name.startswith("__"):
        try:
            found = importlib.util.find_spec(f"{package}.{name}") is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return importlib.import_module(f"{package}.{name}")
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
