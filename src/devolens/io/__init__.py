"""Input and output: images, videos, lineage tables and HDF5 tile stores."""


def __getattr__(name: str):  # its modules on first use: devolens.io.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
