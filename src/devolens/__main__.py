"""``python -m devolens ...``: the ``devolens`` command (for an environment whose scripts folder is not on PATH)."""

from devolens.cli import run

if __name__ == "__main__":
    run()
