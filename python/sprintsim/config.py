"""Configurations: the defaults, an INI file, and "section.key" overrides,
checked and resolved by the C key table (core/spr_config.c) with its
messages."""
import ctypes
import math
import os

from . import _lib
from ._lib import lib

# enum spr_key_type of core/spr_config.h
_INT, _U64, _DOUBLE, _BOOL, _ENUM, _LIST, _STRING = range(7)


def format_value(v):
    """A Python value as the text the key table reads."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(format_value(x) for x in v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"value {v!r} is not finite")
        return repr(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalars
        return format_value(v.item())
    return str(v)


def _keys():
    out = {}
    for i in range(lib.spr_config_nkeys()):
        k = lib.spr_config_key(i).contents
        out[f"{k.section.decode()}.{k.name.decode()}"] = k
    return out


KEYS = _keys()


def _check_key(key):
    if not isinstance(key, str):
        raise TypeError(f"configuration key {key!r}: expected a 'section.key' string")
    if "\n" in key or "=" in key:
        raise _lib.UnknownKeyError(_lib.ECONFIG, f"unknown key {key!r}")


class Config:
    """A resolved configuration.

        Config()                                   the defaults
        Config({"threshold.keep_rate": 0.2})       overrides over the defaults
        Config("examples/vit.ini")                 an INI file (relative file
                                                   names in it: from its folder)
        Config("examples/vit.ini", {"workload.images": 100})

    Values may be numbers, booleans, strings (with units: "20 nA"), lists
    (list keys) or paths.  Every value is checked by the C key table:
    unknown keys raise UnknownKeyError (a KeyError), bad values
    ConfigError (a ValueError), both with the C message; a missing file
    raises FileError (an OSError).  cfg["section.key"] gives the resolved
    value; cfg.to_ini() the whole configuration as INI text."""

    def __init__(self, source=None, overrides=None):
        if isinstance(source, Config):
            path, ov = source.path, dict(source.overrides)
        elif isinstance(source, dict):
            if overrides is not None:
                raise TypeError("Config(dict, overrides): give the overrides in one dict")
            path, ov = None, {}
            overrides = source
        elif source is None:
            path, ov = None, {}
        elif isinstance(source, (str, os.PathLike)):
            path, ov = os.fspath(source), {}
        else:
            raise TypeError(f"config: expected None, a dict, an INI path or a Config, "
                            f"not {type(source).__name__}")
        for k, v in (overrides or {}).items():
            _check_key(k)
            ov[k] = v
        self.path = path
        self.overrides = ov
        self._ptr = None
        sets = self._set_strings()
        arr = _lib.strings(sets)
        ptr = ctypes.c_void_p()
        rc = lib.spr_bind_config_new(path.encode() if path is not None else None, arr, len(sets),
                                     b"config", ctypes.byref(ptr))
        if rc < 0:
            msg = _lib.errmsg()
            for k in self.overrides:
                if lib.spr_bind_config_find(k.encode()) < 0 and not k.startswith("sweep.") \
                        and f" {k}=" in msg:
                    raise _lib.UnknownKeyError(rc, msg)
            _lib.check(rc)
        self._ptr = ptr

    def _set_strings(self, extra=()):
        out = []
        for k, v in list(self.overrides.items()) + list(extra):
            text = format_value(v)
            if "\n" in text:
                raise ValueError(f"key '{k}': value {text!r} spans lines")
            out.append(f"{k}={text}")
        return out

    def __del__(self):
        if getattr(self, "_ptr", None):
            lib.spr_bind_config_free(self._ptr)
            self._ptr = None

    @property
    def ptr(self):
        return self._ptr

    def text(self, key):
        """The resolved value of key as the key table writes it."""
        _check_key(key)
        buf = ctypes.create_string_buffer(256)
        n = _lib.check(lib.spr_bind_config_get(self._ptr, key.encode(), buf, len(buf)),
                       _lib.UnknownKeyError)
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            lib.spr_bind_config_get(self._ptr, key.encode(), buf, len(buf))
        return buf.value.decode()

    def __getitem__(self, key):
        t = self.text(key)
        kind = KEYS[key].type
        if kind in (_INT, _U64):
            return int(t)
        if kind == _DOUBLE:
            return float(t)
        if kind == _BOOL:
            return t in ("1", "true", "yes", "on")
        if kind == _LIST:
            return [float(x) for x in t.split(",") if x.strip()]
        return t

    def __contains__(self, key):
        return key in KEYS

    def keys(self):
        return list(KEYS)

    def as_dict(self):
        """Every key's resolved value."""
        return {k: self[k] for k in KEYS}

    def to_ini(self):
        p = lib.spr_config_to_ini(self._ptr)
        if not p:
            raise MemoryError("sprintsim: out of memory")
        try:
            return ctypes.string_at(p).decode()
        finally:
            lib.spr_bind_free(p)

    def with_overrides(self, overrides):
        """A new Config: this one's source and overrides, then overrides."""
        ov = dict(self.overrides)
        ov.update(overrides)
        return Config(self.path, ov) if self.path is not None else Config(ov)

    def __repr__(self):
        src = repr(self.path) if self.path is not None else "defaults"
        return f"<sprintsim.Config {src} + {len(self.overrides)} overrides>"


def as_config(config):
    """config as a Config (a Config is returned as it is)."""
    return config if isinstance(config, Config) else Config(config)


def key_doc(key):
    """(unit, documentation, choices) of a key of the table."""
    _check_key(key)
    if key not in KEYS:
        raise _lib.UnknownKeyError(_lib.ECONFIG, f"unknown key '{key}'")
    k = KEYS[key]
    return (k.unit.decode(), k.doc.decode(),
            k.choices.decode().split("|") if k.choices else None)
