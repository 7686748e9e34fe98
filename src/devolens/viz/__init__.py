"""Visualisation: overlays and plots."""

import os as _os
import sys as _sys


def _matplotlib_config() -> None:
    """Give matplotlib a writable config folder when the user's is not (HOME unset, missing or read-only, as on
    some clusters and containers): matplotlib then makes a temporary one itself, but prints two lines of warnings
    on stderr into every plotting command's log; and for a HOME that does not exist it would make HOME whole.
    Nothing changes when its config and cache folders (``~/.config/matplotlib``, ``~/.cache/matplotlib``, or under
    XDG_CONFIG_HOME and XDG_CACHE_HOME) exist or can be made in an existing folder of the user's, when
    MPLCONFIGDIR is set, or once matplotlib is imported."""
    if "MPLCONFIGDIR" in _os.environ or "matplotlib" in _sys.modules:
        return
    home = _os.path.expanduser("~")
    usual = True
    for variable, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        base = _os.environ.get(variable)
        # matplotlib makes every missing folder on the way: only below an existing HOME (or XDG folder)
        usual = usual and _may_make(_os.path.join(base or _os.path.join(home, default), "matplotlib"),
                                    base or home)
    if usual:
        return
    import tempfile

    if not hasattr(_os, "getuid"):
        return
    own = _os.path.join(tempfile.gettempdir(), f"devolens-matplotlib-{_os.getuid()}")
    try:
        _os.makedirs(own, mode=0o700, exist_ok=True)
        st = _os.lstat(own)
    except OSError:
        return  # matplotlib's own fallback (and its warning)
    # only a folder of this user's that nobody else may write in: one another user made first could plant a
    # matplotlibrc or a font cache
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode) and st.st_uid == _os.getuid() and not st.st_mode & 0o022 \
            and _os.access(own, _os.W_OK | _os.X_OK):
        _os.environ["MPLCONFIGDIR"] = own


def _may_make(folder: str, top: str) -> bool:
    """Whether ``folder`` is a writable folder, or can be made in an existing writable folder at or below ``top``."""
    probe = folder
    while not _os.path.exists(probe):
        if _os.path.normpath(probe) == _os.path.normpath(top) or _os.path.dirname(probe) == probe:
            return False  # top itself is missing
        probe = _os.path.dirname(probe)
    return _os.path.isdir(probe) and _os.access(probe, _os.W_OK | _os.X_OK)


_matplotlib_config()


def __getattr__(name: str):  # its modules on first use: devolens.viz.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
