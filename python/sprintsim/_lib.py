"""Loading libsprintsim with ctypes, the function prototypes and the
mapping of the library's error codes to Python exceptions.

The library is found, in this order, at
  1. $SPRINTSIM_LIB (a path to libsprintsim.so),
  2. the libdir recorded by `make install` (sprintsim/_installed.py),
  3. the build tree this package sits in (<top>/.libs/libsprintsim.so,
     <top> = python/..).
"""
import ctypes
import os

from . import _paths

# error codes of core/spr_error.h
OK, ENOMEM, EINVAL, ECONFIG, EIO, EHDF5, EUSAGE, ESPICE, EINTERNAL, ECANCELED = range(0, -10, -1)


class Error(Exception):
    """An error of libsprintsim: .code (negative SPR_E* code) and
    .message (the C message, also str(error))."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return self.message


class ConfigError(Error, ValueError):
    """A bad configuration value, file line or argument (SPR_ECONFIG,
    SPR_EUSAGE, SPR_EINVAL)."""


class UnknownKeyError(Error, KeyError):
    """A configuration key that the key table does not have."""


class FileError(Error, OSError):
    """A file that cannot be read or written, or bad HDF5 content
    (SPR_EIO, SPR_EHDF5)."""


class OutOfMemoryError(Error, MemoryError):
    """SPR_ENOMEM: an allocation failed, or a run would need more memory
    than the process may use."""


class CancelledError(Error):
    """SPR_ECANCELED: stopped on request."""


class SimulationError(Error, RuntimeError):
    """SPR_ESPICE, SPR_EINTERNAL."""


_CLASSES = {ENOMEM: OutOfMemoryError, EINVAL: ConfigError, ECONFIG: ConfigError,
            EIO: FileError, EHDF5: FileError, EUSAGE: ConfigError, ESPICE: SimulationError,
            EINTERNAL: SimulationError, ECANCELED: CancelledError}


def _candidates():
    env = os.environ.get("SPRINTSIM_LIB")
    if env:
        return [env]
    out = []
    if _paths.LIBDIR:
        out.append(os.path.join(_paths.LIBDIR, "libsprintsim.so"))
    if _paths.TOP:
        out.append(os.path.join(_paths.TOP, ".libs", "libsprintsim.so"))
    return out


def _load():
    tried = _candidates()
    errors = []
    for path in tried:
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), path
            except OSError as e:  # a broken or foreign file
                errors.append(f"{path}: {e}")
        else:
            errors.append(f"{path}: no such file")
    raise ImportError(
        "sprintsim: libsprintsim.so not found (" + "; ".join(errors or ["no candidate"]) + "). "
        "Build it in the source tree with `scripts/setup` (or ./autogen.sh && ./configure && make), "
        "or point SPRINTSIM_LIB at libsprintsim.so, or `make install` the package.")


lib, path = _load()

c_int, c_double, c_char_p, c_void_p = ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p
c_size_t, c_uint64, c_int64 = ctypes.c_size_t, ctypes.c_uint64, ctypes.c_int64
P = ctypes.POINTER


class KeyInfo(ctypes.Structure):
    """spr_config_key_info of core/spr_config.h."""
    _fields_ = [("section", c_char_p), ("name", c_char_p), ("type", c_int), ("unit", c_char_p),
                ("doc", c_char_p), ("choices", c_char_p)]


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_proto("spr_errmsg", c_char_p)
_proto("spr_error_clear", None)
_proto("spr_strerror", c_char_p, c_int)
_proto("spr_bind_version", c_char_p)
_proto("spr_bind_free", None, c_void_p)
# configurations
_proto("spr_bind_config_new", c_int, c_char_p, P(c_char_p), c_int, c_char_p, P(c_void_p))
_proto("spr_bind_config_free", None, c_void_p)
_proto("spr_bind_config_get", c_int, c_void_p, c_char_p, c_char_p, c_size_t)
_proto("spr_bind_config_find", c_int, c_char_p)
_proto("spr_config_nkeys", c_int)
_proto("spr_config_key", P(KeyInfo), c_int)
_proto("spr_config_to_ini", c_void_p, c_void_p)
# statistics
_proto("spr_bind_nstats", c_int)
_proto("spr_bind_stat_name", c_char_p, c_int)
_proto("spr_bind_run_stats", c_int, c_void_p, c_int, c_int, c_int, c_void_p)
# attention layers
_proto("spr_bind_attn_alloc", c_int, c_void_p, c_int, c_int, c_int, c_int, c_int, P(c_void_p))
_proto("spr_bind_attn_free", None, c_void_p)
_proto("spr_bind_attn_layer", c_int, c_void_p, c_int, c_int, c_int, c_int, c_double, c_double,
       c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, P(c_int))
# model files
_proto("spr_bind_model_open", c_int, c_void_p, c_void_p, c_void_p, P(c_void_p))
_proto("spr_bind_model_free", None, c_void_p)
_proto("spr_bind_model_infer", c_int, c_void_p, c_int, c_int, c_void_p, c_void_p, c_void_p)
_proto("spr_bind_meval", c_int, c_void_p, c_int, c_void_p, P(c_void_p))
_proto("spr_bind_meval_free", None, c_void_p)
_proto("spr_bind_meval_info", None, c_void_p, c_void_p, P(c_double), P(c_char_p))
_proto("spr_bind_meval_row", c_int, c_void_p, c_int, c_void_p, c_void_p, c_void_p, c_void_p,
       c_void_p, c_void_p, c_void_p, c_void_p)
_proto("spr_bind_meval_write", c_int, c_char_p, c_void_p, c_void_p)
# runs and traces
_proto("spr_run_alloc", c_int, c_void_p, c_int, P(c_void_p))
_proto("spr_run_check", c_int, c_void_p)
_proto("spr_run_layer", c_int, c_void_p, c_int)
_proto("spr_run_result", c_void_p, c_void_p, c_int, c_int)
_proto("spr_run_results", c_void_p, c_void_p)
_proto("spr_run_free", None, c_void_p)
_proto("spr_trace_create", c_int, c_char_p, c_void_p, c_char_p, P(c_void_p))
_proto("spr_trace_write_head", c_int, c_void_p, c_void_p)
_proto("spr_trace_write_summary", c_int, c_void_p, c_void_p)
_proto("spr_trace_close", c_int, c_void_p, c_int)
_proto("spr_bind_trace_device", c_int, c_void_p, c_void_p)
# sweeps
_proto("spr_bind_sweep_load", c_int, c_char_p, P(c_char_p), c_int, c_char_p, P(c_void_p))
_proto("spr_sweep_free", None, c_void_p)
_proto("spr_sweep_npoints", c_int, c_void_p)
_proto("spr_sweep_naxes", c_int, c_void_p)
_proto("spr_sweep_axis_key", c_char_p, c_void_p, c_int)
_proto("spr_sweep_axis_text", c_char_p, c_void_p, c_int, c_int)
_proto("spr_sweep_point_value", c_int, c_void_p, c_int, c_int)
_proto("spr_sweep_nschemes", c_int, c_void_p)
_proto("spr_sweep_scheme", c_int, c_void_p, c_int)
_proto("spr_bind_sweep_eval", c_int, c_void_p, c_int, c_void_p)
_proto("spr_bind_sweep_nmetrics", c_int, c_void_p)
_proto("spr_bind_sweep_metric", c_char_p, c_void_p, c_int)
_proto("spr_bind_sweep_row", c_int, c_void_p, c_int, c_int, c_void_p)

VERSION = lib.spr_bind_version().decode()
STAT_NAMES = [lib.spr_bind_stat_name(i).decode() for i in range(lib.spr_bind_nstats())]
SCHEMES = ["sprint", "dense", "dense_tiled", "oracle", "topk", "sanger", "leopard", "window"]
EXACT = len(SCHEMES)          # SPR_BIND_EXACT, SPR_MEVAL_EXACT
REFERENCE = len(SCHEMES) + 1  # SPR_MEVAL_REFERENCE
MAX_LAYERS = 64               # SPR_MAX_LAYERS
MAX_ACC = 8                   # SPR_EVAL_MAX_ACC


def errmsg():
    return (lib.spr_errmsg() or b"").decode(errors="replace")


def check(rc, cls=None):
    """Raise the exception of a negative return code with the C message."""
    if rc >= 0:
        return rc
    msg = errmsg() or lib.spr_strerror(rc).decode()
    raise (cls or _CLASSES.get(rc, Error))(rc, msg)


def strings(items):
    """A NULL-free char *[] of Python strings (kept alive by the caller)."""
    arr = (c_char_p * max(1, len(items)))()
    for i, s in enumerate(items):
        arr[i] = s.encode()
    return arr
