"""Shared fixtures of the Python binding's tests (tests/test_python.sh
runs them; see docs/python.md)."""
import os
import shutil
import subprocess

import pytest

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(__file__), "..", "..")
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR


def cli():
    """The sprintsim program of this build."""
    for p in (os.path.join(TOP_BUILDDIR, "sprintsim"), os.path.join(TOP_SRCDIR, "sprintsim")):
        if os.path.exists(p):
            return os.path.abspath(p)
    pytest.skip("no ./sprintsim program in the build tree")


def run_cli(*args, check=True):
    r = subprocess.run([cli(), *args], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    if check and r.returncode:
        raise AssertionError(f"sprintsim {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r


def src(*parts):
    return os.path.join(TOP_SRCDIR, *parts)
