"""devolens: deep learning for developmental-biology microscopy.

Layers (data flows left to right; a module imports only layers to its left):
``io -> lineage -> render -> data -> train -> models -> predict -> curate -> viz -> cli``.
"""

from devolens.errors import DevolensError

__version__ = "0.1.0"
__all__ = ["DevolensError", "__version__"]
