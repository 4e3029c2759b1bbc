# Shared pytest configuration. The suite runs twice: under Debian's /usr/bin/python3 (torch,
# numpy) and under build/venv (dm_control, gym-pusht, theseus-ai); tests skip what is missing.
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# the difftop Python package is imported from the source tree (no `pip install ./python`
# needed); it finds the library through DIFFTOP_LIB, DT_LIB or build/libdifftop.so
sys.path.insert(0, str(ROOT / "python"))


@pytest.fixture(scope="session")
def libdifftop_path():
    path = os.environ.get("DT_LIB", str(ROOT / "build" / "libdifftop.so"))
    if not os.path.exists(path):
        pytest.skip(f"{path} not built (run cmake --build build)")
    return path
