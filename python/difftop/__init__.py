# SPDX-License-Identifier: MIT
"""difftop: Python bindings (ctypes) over the difftop C library.

    import difftop
    told = difftop.Told(obs_dim=5, action_dim=1)
    solver = difftop.Trajopt(told.plan(horizon=5), max_batch=8, solver="lm", backward="unroll")

The library is found through $DIFFTOP_LIB, then <repo>/build/libdifftop.so, then the system
loader. Every non-zero C status is raised as a DifftopError subclass carrying dt_last_error().
torch is needed only by difftop.torch and difftop.told; gymnasium is optional for difftop.envs.
Trained imitation-learning policies (`difftop il-train` run directories) load with
difftop.il.Policy.load(run_dir).
"""
__version__ = "0.1.0.dev0"

from . import _lib
from .errors import (DifftopError, ArgumentError, ShapeError, OutOfMemoryError, DifftopIOError,
                     FormatError, NonFiniteError, NotFoundError, StateError, UnsupportedError,
                     InternalError)
from .core import (Params, MLP, Unet1D, LSTM, Rng, Tape, RLConfig, Told, Agent, LatentPlan, Trajopt,
                   SolveResult, trajopt_options, options_dict, mlp_spec, spec_elu, spec_q,
                   set_num_threads, get_num_threads, f32_ptr)
from . import il  # imitation-learning policies: difftop.il.Policy.load(run_dir)

lib_path = _lib.path


def _parse_version(v):
    parts = v.split(".")
    return int(parts[0]), int(parts[1]), int(parts[2].split("-")[0])


def library_version():
    """Version of the loaded libdifftop as (major, minor, patch)."""
    h = _lib.lib.dt_version()
    return (h >> 16) & 0xFF, (h >> 8) & 0xFF, h & 0xFF


def library_version_string():
    return _lib.lib.dt_version_string().decode()


def _check_version():
    want = _parse_version(__version__)
    have = library_version()
    # the ABI is kept within a major version; before 1.0 the minor version counts as major
    same_abi = have[0] == want[0] and (want[0] > 0 or have[1] == want[1])
    if not same_abi:
        raise ImportError(
            f"difftop: the Python package {__version__} needs libdifftop {want[0]}.{want[1]}.x, "
            f"but {lib_path} is {library_version_string()}; rebuild the library or set DIFFTOP_LIB")


_check_version()
