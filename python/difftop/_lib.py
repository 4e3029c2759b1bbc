# SPDX-License-Identifier: MIT
"""Loading libdifftop and declaring its C ABI for ctypes.

The library is searched, in order, at
  1. the path in the environment variable DIFFTOP_LIB (or DT_LIB, the name the test scripts use),
  2. the build tree of the repository this package lives in: <repo>/build/libdifftop.so,
  3. the system loader: ctypes.util.find_library("difftop") (e.g. after `cmake --install build`).

Every struct below mirrors a public header of include/difftop/ field by field; the prototypes
are declared once here so that ctypes converts and checks arguments on every call.
"""
import ctypes
import ctypes.util
import os
import pathlib

from . import errors

c_int, c_float, c_double, c_size_t = ctypes.c_int, ctypes.c_float, ctypes.c_double, ctypes.c_size_t
c_int64, c_uint64, c_char_p, c_void_p = ctypes.c_int64, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_void_p
P = ctypes.POINTER
c_float_p = P(c_float)
c_double_p = P(c_double)
c_int_p = P(c_int)

DT_MAX_DIMS = 4
DT_MLP_MAX_LAYERS = 8


# --- base.h ---------------------------------------------------------------------------------
class DtRng(ctypes.Structure):
    _fields_ = [("state", c_uint64), ("inc", c_uint64), ("has_spare", c_int), ("spare", c_float)]


# --- tensor.h -------------------------------------------------------------------------------
class DtTensor(ctypes.Structure):
    pass


DtTensor._fields_ = [
    ("ndim", c_int), ("shape", c_int * DT_MAX_DIMS), ("size", c_int64),
    ("val", c_float_p), ("dot", c_float_p), ("grad", c_float_p), ("gdot", c_float_p),
    ("name", c_char_p), ("flags", c_int), ("op", c_int), ("src", P(DtTensor) * 3),
    ("fp", c_float * 4), ("ip", c_int * 4), ("aux", c_void_p), ("prev", P(DtTensor)), ("id", c_int),
]


class DtTapeOpts(ctypes.Structure):
    _fields_ = [("arena_bytes", c_size_t), ("check_finite", c_int)]


# --- nn.h -----------------------------------------------------------------------------------
class DtParams(ctypes.Structure):
    _fields_ = [("items", P(P(DtTensor))), ("count", c_int), ("capacity", c_int)]


class DtMLPSpec(ctypes.Structure):
    _fields_ = [("layers", c_int), ("dims", c_int * (DT_MLP_MAX_LAYERS + 1)),
                ("layernorm", c_int * DT_MLP_MAX_LAYERS), ("act", c_int * DT_MLP_MAX_LAYERS),
                ("init", c_int), ("zero_last", c_int)]


class DtMLP(ctypes.Structure):
    _fields_ = [("spec", DtMLPSpec), ("weight", P(DtTensor) * DT_MLP_MAX_LAYERS),
                ("bias", P(DtTensor) * DT_MLP_MAX_LAYERS),
                ("ln_gain", P(DtTensor) * DT_MLP_MAX_LAYERS),
                ("ln_bias", P(DtTensor) * DT_MLP_MAX_LAYERS)]


DT_CONV_MAX_LAYERS = 6


class DtConvNetSpec(ctypes.Structure):
    _fields_ = [("in_channels", c_int), ("in_h", c_int), ("in_w", c_int), ("layers", c_int),
                ("channels", c_int * DT_CONV_MAX_LAYERS), ("kernel", c_int * DT_CONV_MAX_LAYERS),
                ("stride", c_int * DT_CONV_MAX_LAYERS), ("out", c_int), ("in_scale", c_float),
                ("first_index", c_int), ("conv_gain", c_float)]


class DtConvNet(ctypes.Structure):
    _fields_ = [("spec", DtConvNetSpec), ("weight", P(DtTensor) * DT_CONV_MAX_LAYERS),
                ("bias", P(DtTensor) * DT_CONV_MAX_LAYERS), ("lin_weight", P(DtTensor)),
                ("lin_bias", P(DtTensor))]


DT_UNET_MAX_LEVELS = 4


class DtUnet1DSpec(ctypes.Structure):
    _fields_ = [("in_channels", c_int), ("horizon", c_int), ("cond_dim", c_int),
                ("levels", c_int), ("dims", c_int * DT_UNET_MAX_LEVELS), ("kernel", c_int),
                ("groups", c_int), ("step_dim", c_int)]


class DtConv1dBlock(ctypes.Structure):
    _fields_ = [("weight", P(DtTensor)), ("bias", P(DtTensor)), ("gn_weight", P(DtTensor)),
                ("gn_bias", P(DtTensor))]


class DtResBlock1D(ctypes.Structure):
    _fields_ = [("in_ch", c_int), ("out_ch", c_int), ("block", DtConv1dBlock * 2),
                ("cond_weight", P(DtTensor)), ("cond_bias", P(DtTensor)),
                ("res_weight", P(DtTensor)), ("res_bias", P(DtTensor))]


class DtUnet1D(ctypes.Structure):
    _fields_ = [("spec", DtUnet1DSpec), ("step_w1", P(DtTensor)), ("step_b1", P(DtTensor)),
                ("step_w2", P(DtTensor)), ("step_b2", P(DtTensor)),
                ("down", (DtResBlock1D * 2) * DT_UNET_MAX_LEVELS),
                ("down_w", P(DtTensor) * DT_UNET_MAX_LEVELS),
                ("down_b", P(DtTensor) * DT_UNET_MAX_LEVELS), ("mid", DtResBlock1D * 2),
                ("up", (DtResBlock1D * 2) * (DT_UNET_MAX_LEVELS - 1)),
                ("up_w", P(DtTensor) * (DT_UNET_MAX_LEVELS - 1)),
                ("up_b", P(DtTensor) * (DT_UNET_MAX_LEVELS - 1)),
                ("final_block", DtConv1dBlock), ("final_w", P(DtTensor)),
                ("final_b", P(DtTensor))]


DT_LSTM_MAX_LAYERS = 4


class DtLstmSpec(ctypes.Structure):
    _fields_ = [("in", c_int), ("hidden", c_int), ("layers", c_int)]  # s.in: getattr(s, "in")


class DtLstm(ctypes.Structure):
    _fields_ = [("spec", DtLstmSpec), ("w_ih", P(DtTensor) * DT_LSTM_MAX_LAYERS),
                ("w_hh", P(DtTensor) * DT_LSTM_MAX_LAYERS),
                ("b_ih", P(DtTensor) * DT_LSTM_MAX_LAYERS),
                ("b_hh", P(DtTensor) * DT_LSTM_MAX_LAYERS)]


# --- trajopt.h ------------------------------------------------------------------------------
class DtObjective(ctypes.Structure):
    _fields_ = [("n", c_int), ("nx", c_int), ("ctx", c_void_p), ("prepare", c_void_p),
                ("value", c_void_p), ("params", P(DtParams))]


class DtLatentPlan(ctypes.Structure):
    _fields_ = [("horizon", c_int), ("action_dim", c_int), ("latent_dim", c_int),
                ("gamma", c_float), ("terminal", c_int),
                ("encoder", P(DtMLP)), ("dynamics", P(DtMLP)), ("reward", P(DtMLP)),
                ("q1", P(DtMLP)), ("q2", P(DtMLP)), ("pi", P(DtMLP)),
                ("clip_lo", c_float), ("clip_hi", c_float), ("x_dim", c_int),
                ("params", P(DtParams)), ("conv_encoder", P(DtConvNet))]


class DtTrajoptOpts(ctypes.Structure):
    _fields_ = [("solver", c_int), ("max_iters", c_int), ("step_size", c_float),
                ("damping", c_float), ("offset", c_float), ("abs_tol", c_float),
                ("rel_tol", c_float), ("grad_tol", c_float), ("lo", c_float), ("hi", c_float),
                ("armijo_c", c_float), ("armijo_shrink", c_float), ("armijo_max", c_int),
                ("newton_min_curv", c_float), ("backward", c_int), ("backward_iters", c_int),
                ("implicit_reg", c_float), ("bound_tol", c_float), ("newton_cg", c_int),
                ("project", c_int), ("newton_gradient_first", c_int)]


class DtTrajoptStats(ctypes.Structure):
    _fields_ = [("iterations", c_int), ("converged", c_int), ("nonfinite", c_int),
                ("solve_ms", c_double), ("backward_ms", c_double),
                ("tape_high_water", c_size_t), ("tape_capacity", c_size_t),
                ("history_bytes", c_size_t), ("value_passes", c_int), ("paired_passes", c_int),
                ("gradient_passes", c_int), ("hvp_passes", c_int)]


# --- env.h ----------------------------------------------------------------------------------
class DtEnvOpts(ctypes.Structure):
    _fields_ = [("seed", c_uint64), ("obs", c_int), ("action_repeat", c_int),
                ("frame_stack", c_int), ("image_size", c_int), ("camera", c_int),
                ("max_steps", c_int), ("render_shadows", c_int), ("render_msaa", c_int)]


class DtSpace(ctypes.Structure):
    _fields_ = [("ndim", c_int), ("shape", c_int * 4), ("size", c_int64), ("dtype", c_int),
                ("low", c_float), ("high", c_float)]


class DtStepInfo(ctypes.Structure):
    _fields_ = [("reward", c_float), ("terminated", c_int), ("truncated", c_int),
                ("success", c_int)]


# --- rl.h -----------------------------------------------------------------------------------
class DtTold(ctypes.Structure):
    _fields_ = [("obs_dim", c_int), ("action_dim", c_int), ("latent_dim", c_int),
                ("mlp_dim", c_int), ("enc_dim", c_int), ("state_critics", c_int),
                ("params", DtParams),
                ("enc", DtMLP), ("dyn", DtMLP), ("rew", DtMLP), ("pi", DtMLP),
                ("q1", DtMLP), ("q2", DtMLP), ("qs1", DtMLP), ("qs2", DtMLP),
                ("pixels", c_int), ("obs_shape", c_int * 3),
                ("cenc", DtConvNet), ("cqs1", DtConvNet), ("cqs2", DtConvNet)]


# --- il.h -----------------------------------------------------------------------------------
class DtILEvalResult(ctypes.Structure):
    _fields_ = [("episodes", c_int), ("mean_score", c_double), ("success_rate", c_double),
                ("ms_per_call", c_double), ("ms_per_action", c_double), ("sd_score", c_double)]


# dtILConfig is never mirrored (large, and it grows): difftop.il reads a run's config.yaml and
# handles dtILPolicy as an opaque pointer.

# dtRLConfig is handled as an opaque block (filled by dt_rl_config_default, changed by key with
# dt_rl_config_set, read back with dt_rl_config_dump), so its layout is never mirrored here.
# The block is far larger than the struct (a few hundred bytes).
RL_CONFIG_BYTES = 16384

# --- prototypes: name -> (restype, argtypes) -------------------------------------------------
T, PT = DtTensor, P(DtTensor)
_PROTOS = {
    # base
    "dt_status_string": (c_char_p, [c_int]),
    "dt_last_error": (c_char_p, []),
    "dt_last_status": (c_int, []),
    "dt_clear_error": (None, []),
    "dt_version": (c_int, []),
    "dt_version_string": (c_char_p, []),
    "dt_rng_seed": (None, [P(DtRng), c_uint64]),
    "dt_set_num_threads": (None, [c_int]),
    "dt_get_num_threads": (c_int, []),
    "dt_cpu_model": (c_char_p, []),
    "dt_time_s": (c_double, []),
    # tensor
    "dt_tape_default_opts": (DtTapeOpts, []),
    "dt_tape_new": (c_void_p, [P(DtTapeOpts)]),
    "dt_tape_free": (None, [c_void_p]),
    "dt_tape_reset": (None, [c_void_p]),
    "dt_tape_status": (c_int, [c_void_p]),
    "dt_tape_error": (c_char_p, [c_void_p]),
    "dt_tape_set_param_grads": (None, [c_void_p, c_int]),
    "dt_input2": (PT, [c_void_p, c_int, c_int, c_float_p, c_char_p]),
    "dt_input": (PT, [c_void_p, c_int, c_int_p, c_float_p, c_char_p]),
    "dt_requires_grad": (c_int, [c_void_p, PT]),
    "dt_backward": (c_int, [c_void_p, PT, c_float_p]),
    "dt_tanh": (PT, [c_void_p, PT]),
    "dt_concat": (PT, [c_void_p, PT, PT, c_int]),
    # nn
    "dt_params_init": (None, [P(DtParams)]),
    "dt_params_free": (None, [P(DtParams)]),
    "dt_params_find": (PT, [P(DtParams), c_char_p]),
    "dt_params_numel": (c_int64, [P(DtParams)]),
    "dt_params_zero_grad": (None, [P(DtParams)]),
    "dt_params_set_trainable": (None, [P(DtParams), c_char_p, c_int]),
    "dt_mlp_spec_elu": (DtMLPSpec, [c_int, c_int, c_int, c_int]),
    "dt_mlp_spec_q": (DtMLPSpec, [c_int, c_int]),
    "dt_mlp_create": (c_int, [P(DtMLP), P(DtMLPSpec), P(DtParams), c_char_p, P(DtRng)]),
    "dt_mlp_bind": (c_int, [P(DtMLP), P(DtMLPSpec), P(DtParams), c_char_p]),
    "dt_mlp_forward": (PT, [c_void_p, P(DtMLP), PT]),
    "dt_unet1d_spec_default": (DtUnet1DSpec, [c_int, c_int, c_int]),
    "dt_unet1d_check": (c_int, [P(DtUnet1DSpec)]),
    "dt_unet1d_create": (c_int, [P(DtUnet1D), P(DtUnet1DSpec), P(DtParams), c_char_p, P(DtRng)]),
    "dt_unet1d_bind": (c_int, [P(DtUnet1D), P(DtUnet1DSpec), P(DtParams), c_char_p]),
    "dt_unet1d_forward": (PT, [c_void_p, P(DtUnet1D), PT, c_float_p, PT]),
    "dt_lstm_check": (c_int, [P(DtLstmSpec)]),
    "dt_lstm_create": (c_int, [P(DtLstm), P(DtLstmSpec), P(DtParams), c_char_p, P(DtRng)]),
    "dt_lstm_bind": (c_int, [P(DtLstm), P(DtLstmSpec), P(DtParams), c_char_p]),
    "dt_lstm_forward": (PT, [c_void_p, P(DtLstm), PT, c_int]),
    # trajopt
    "dt_latent_objective": (c_int, [P(DtObjective), P(DtLatentPlan)]),
    "dt_latent_plan_n": (c_int, [P(DtLatentPlan)]),
    "dt_latent_pi_rollout": (c_int, [P(DtLatentPlan), c_void_p, c_int, c_float_p, c_float,
                                     c_float, P(DtRng), c_float_p]),
    "dt_trajopt_default_opts": (DtTrajoptOpts, []),
    "dt_solver_name": (c_char_p, [c_int]),
    "dt_solver_parse": (c_int, [c_char_p]),
    "dt_backward_name": (c_char_p, [c_int]),
    "dt_backward_parse": (c_int, [c_char_p]),
    "dt_trajopt_new": (c_int, [P(DtObjective), c_int, P(DtTrajoptOpts), c_size_t, P(c_void_p)]),
    "dt_trajopt_free": (None, [c_void_p]),
    "dt_trajopt_solve": (c_int, [c_void_p, c_int, c_float_p, c_float_p, c_float_p, c_float_p,
                                 c_float_p, c_int_p]),
    "dt_trajopt_backward": (c_int, [c_void_p, c_float_p, c_float_p, c_float_p]),
    "dt_trajopt_stats": (P(DtTrajoptStats), [c_void_p]),
    "dt_trajopt_iterations": (c_int_p, [c_void_p]),
    "dt_trajopt_eval": (c_int, [c_void_p, c_int, c_float_p, c_float_p, c_float_p, c_float_p]),
    "dt_trajopt_implicit_indefinite": (c_int, [c_void_p]),
    # env
    "dt_env_default_opts": (DtEnvOpts, []),
    "dt_env_make": (c_int, [c_char_p, P(DtEnvOpts), P(c_void_p)]),
    "dt_env_free": (None, [c_void_p]),
    "dt_env_names": (P(c_char_p), []),
    "dt_env_name": (c_char_p, [c_void_p]),
    "dt_env_obs_space": (P(DtSpace), [c_void_p]),
    "dt_env_action_space": (P(DtSpace), [c_void_p]),
    "dt_env_reset": (c_int, [c_void_p, c_int64, c_void_p]),
    "dt_env_step": (c_int, [c_void_p, c_float_p, c_int, c_void_p, P(DtStepInfo)]),
    "dt_env_observe": (c_int, [c_void_p, c_void_p]),
    "dt_env_render": (c_int, [c_void_p, c_int, c_int, c_int, c_void_p]),
    "dt_env_state_size": (c_int, [c_void_p]),
    "dt_env_get_state": (c_int, [c_void_p, c_double_p]),
    "dt_env_set_state": (c_int, [c_void_p, c_double_p]),
    "dt_env_default_action_repeat": (c_int, [c_char_p]),
    "dt_env_action_repeat": (c_int, [c_void_p]),
    "dt_env_max_steps": (c_int, [c_void_p]),
    "dt_env_step_count": (c_int64, [c_void_p]),
    # rl
    "dt_rl_config_default": (None, [c_void_p]),
    "dt_rl_config_set": (c_int, [c_void_p, c_char_p, c_char_p]),
    "dt_rl_config_dump": (c_int, [c_void_p, c_char_p, c_size_t]),
    "dt_rl_config_keys": (P(c_char_p), []),
    "dt_told_create": (c_int, [P(DtTold), c_int, c_int, c_void_p, c_int, P(DtRng)]),
    "dt_told_free": (None, [P(DtTold)]),
    "dt_told_plan": (None, [P(DtTold), c_int, c_float, P(DtLatentPlan)]),
    "dt_agent_new": (c_int, [c_void_p, c_int, c_int, P(c_void_p)]),
    "dt_agent_free": (None, [c_void_p]),
    "dt_agent_model": (P(DtTold), [c_void_p]),
    "dt_agent_target": (P(DtTold), [c_void_p]),
    "dt_agent_act": (c_int, [c_void_p, c_float_p, c_int64, c_int, c_int, c_float_p]),
    "dt_agent_planner": (c_int, [c_void_p, c_int64, c_int]),
    # io
    "dt_params_save": (c_int, [c_char_p, P(PT), c_int, P(c_char_p), c_int]),
    "dt_params_load": (c_int, [c_char_p, P(PT), c_int]),
    "dt_params_load_ex": (c_int, [c_char_p, P(PT), c_int, c_int]),
    # il
    "dt_il_have_hdf5": (c_int, []),
    "dt_il_kind_name": (c_char_p, [c_int]),
    "dt_il_policy_load": (c_int, [c_char_p, P(c_void_p)]),
    "dt_il_policy_free": (None, [c_void_p]),
    "dt_il_act": (c_int, [c_void_p, c_float_p, c_float_p]),
    "dt_il_act_image": (c_int, [c_void_p, c_float_p, c_void_p, c_float_p]),
    "dt_il_policy_image": (c_int, [c_void_p, c_int_p, c_int_p, c_int_p]),
    "dt_il_policy_obs_keys": (c_char_p, [c_void_p]),
    "dt_il_policy_set_sample_seed": (None, [c_void_p, c_uint64]),
    "dt_il_eval_pusht": (c_int, [c_void_p, c_int, ctypes.c_uint32, c_int, P(DtILEvalResult),
                                 c_double_p]),
    "dt_il_eval_dmc": (c_int, [c_void_p, c_char_p, c_int, c_int, c_uint64, P(DtILEvalResult),
                               c_double_p]),
    "dt_il_eval_expert_dmc": (c_int, [c_char_p, c_int, c_int, c_uint64, P(DtILEvalResult),
                                      c_double_p]),
}


def _candidates():
    for var in ("DIFFTOP_LIB", "DT_LIB"):
        path = os.environ.get(var)
        if path:
            yield path, f"${var}"
    root = pathlib.Path(__file__).resolve().parents[2]  # <repo>/python/difftop/_lib.py
    build = root / "build" / "libdifftop.so"
    if build.exists():
        yield str(build), "the repository's build tree"
    found = ctypes.util.find_library("difftop")
    if found:
        yield found, "the system loader"


def _load():
    tried = []
    for path, origin in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({origin}): {e}")
            # an explicit path that fails is an error, not a reason to pick another library
            if origin.startswith("$"):
                raise ImportError(f"difftop: cannot load {path} from {origin}: {e}") from e
            continue
        return lib, path
    raise ImportError(
        "difftop: libdifftop.so not found. Build it (cmake -S . -B build && cmake --build build), "
        "set DIFFTOP_LIB=/path/to/libdifftop.so, or install it where the system loader finds it."
        + (" Tried: " + "; ".join(tried) if tried else ""))


lib, path = _load()
for _name, (_res, _args) in _PROTOS.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


def last_error():
    """dt_last_error() of this thread as text."""
    msg = lib.dt_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def check(status, what=""):
    """Raise the DifftopError subclass for a non-zero status with dt_last_error()'s message."""
    if status:
        msg = last_error()
        if not msg:
            s = lib.dt_status_string(status)
            msg = s.decode() if s else f"status {status}"
        if what:
            msg = f"{what}: {msg}"
        raise errors.from_status(status, msg)
    return status
