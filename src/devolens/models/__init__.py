"""Models: architectures (a factory) and the zoo of shipped weights with their cards.

``devolens.models.load("nuclei")`` returns a ready predictor; ``devolens.models.available()``
lists the shipped models and ``devolens.models.card(name)`` gives a model's card.

A process forked after a model was loaded with :func:`load` (a ``multiprocessing`` pool of the default 'fork'
start method, "load once, fork workers") runs its networks with PyTorch in one thread (set before its first
prediction, :func:`devolens.models.zoo.fork_guard`; a process that loaded none keeps its setting): PyTorch's OpenMP (libgomp) pool does not survive a fork, and a
child that used it hung for ever. Raising the child's thread count (``torch.set_num_threads``) brings the hang back:
for several threads per worker use a 'spawn' pool, or threads.
"""

from devolens.models.zoo import available, card, load

__all__ = ["available", "card", "load"]


def __getattr__(name: str):  # its modules on first use: devolens.models.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
