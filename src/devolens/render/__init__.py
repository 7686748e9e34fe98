"""The digital embryo: optics, nuclei and membrane frames, wells, artifacts."""


def __getattr__(name: str):  # its modules on first use: devolens.render.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
