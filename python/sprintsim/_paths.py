"""Where the package finds libsprintsim and the shared files (models,
examples, scripts): the directories `make install` recorded in
_installed.py, else the source tree this package sits in."""
import os

try:
    from ._installed import LIBDIR, DATADIR  # written by `make install`
except ImportError:
    LIBDIR = DATADIR = None

_top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# the source tree: python/sprintsim/ sits two levels below it
TOP = _top if os.path.exists(os.path.join(_top, "sim", "spr_bind.h")) else None


def data_path(*parts):
    """A shared file: DATADIR (installed) or the source tree."""
    base = DATADIR if DATADIR else TOP
    if base is None:
        raise FileNotFoundError("sprintsim: no data directory (neither installed nor in a source tree)")
    return os.path.join(base, *parts)
