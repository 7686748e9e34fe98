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
