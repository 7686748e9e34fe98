"""Training engine: trainer, losses, schedulers, metrics, pruning, tuning."""


def __getattr__(name: str):  # its modules on first use: devolens.train.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
