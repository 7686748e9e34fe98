"""Lineage tables: Sulston cell names, per-lineage populations, cliffs, the embryo simulator."""


def __getattr__(name: str):  # its modules on first use: devolens.lineage.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
