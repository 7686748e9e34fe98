"""Models: architectures (a factory) and the zoo of shipped weights with their cards.

``devolens.models.load("nuclei")`` returns a ready predictor; ``devolens.models.available()``
lists the shipped models and ``devolens.models.card(name)`` gives a model's card.

A process forked after a predictor ran (a ``multiprocessing`` pool of the default 'fork' start method, "load
once, fork workers") runs PyTorch in one thread: PyTorch's OpenMP (libgomp) pool does not survive a fork, and a
child that used it hung for ever. Raising the child's thread count (``torch.set_num_threads``) brings the hang back:
for several threads per worker use a 'spawn' pool, or threads.
"""

import os as _os
import sys as _sys

from devolens.models.zoo import available, card, load

__all__ = ["available", "card", "load"]


def _one_thread_after_fork() -> None:
    """In a forked child, PyTorch (when loaded) in one thread: its OpenMP pool's threads stayed in the parent."""
    torch = _sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(1)
        except Exception:  # a PyTorch without it: nothing to do
            pass


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_one_thread_after_fork)
