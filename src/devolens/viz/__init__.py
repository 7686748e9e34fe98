"""Visualisation: overlays and plots."""

import os as _os
import sys as _sys


def _matplotlib_config() -> None:
    """Give matplotlib a writable config folder when the user's is not (HOME unset or read-only, as on some
    clusters and containers): matplotlib then makes a temporary one itself, but prints two lines of warnings on
    stderr into every plotting command's log. Nothing changes when the usual folder is writable or
    MPLCONFIGDIR is set, or once matplotlib is imported."""
    if "MPLCONFIGDIR" in _os.environ or "matplotlib" in _sys.modules:
        return
    base = _os.environ.get("XDG_CONFIG_HOME") or _os.path.join(_os.path.expanduser("~"), ".config")
    folder = _os.path.join(base, "matplotlib")
    probe = folder
    while not _os.path.exists(probe) and _os.path.dirname(probe) != probe:
        probe = _os.path.dirname(probe)
    if _os.path.isdir(probe) and _os.access(probe, _os.W_OK | _os.X_OK):
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


_matplotlib_config()
