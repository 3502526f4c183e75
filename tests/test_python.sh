#!/bin/sh
# tests/test_python.sh - the Python package's pytest suite (tests/python/,
# docs/python.md) against this build's libsprintsim.  The numpy tests
# always run; the PyTorch tests skip (inside pytest) without python3-torch.
# SKIPs (77) when /usr/bin/python3 cannot import numpy, h5py and pytest.
S=${top_srcdir:-.}
B=${top_builddir:-.}
PY=/usr/bin/python3
if ! "$PY" -c "import numpy, h5py, pytest" 2>/dev/null; then
  echo "skip - the Python tests need python3-numpy, python3-h5py and python3-pytest"
  exit 77
fi
PYTHONPATH="$S/python"
SPRINTSIM_LIB="$B/.libs/libsprintsim.so"
# nothing written into the source tree: no bytecode, no pytest cache
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH SPRINTSIM_LIB PYTHONDONTWRITEBYTECODE top_srcdir top_builddir
exec "$PY" -m pytest -q -p no:cacheprovider -o console_output_style=classic "$S/tests/python"
