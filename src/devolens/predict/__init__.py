"""Prediction: segmentation, populations, identities, tiled inference, post-processing."""


def __getattr__(name: str):  # its modules on first use: devolens.predict.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
