"""devolens: deep learning for developmental-biology microscopy.

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
