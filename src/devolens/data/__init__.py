"""Torch datasets, augmentation pipelines and tiling."""


def __getattr__(name: str):  # its modules on first use: devolens.data.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
