# SPDX-License-Identifier: MIT
"""difftop.envs: gymnasium-shaped Python API over the C environments, and (when gymnasium is
installed) registration and gymnasium.utils.env_checker.check_env on our tasks."""
import pytest

np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")
envs = pytest.importorskip("difftop.envs")


def rollout(env, actions):
    out = []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs.copy(), r, term, trunc))
    return out


def test_api_shapes_and_types():
    env = envs.make("cartpole-swingup", seed=3)
    obs, info = env.reset(seed=0)
    assert isinstance(info, dict)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32
    assert env.action_space.shape == (1,) and env.action_space.dtype == np.float32
    obs, r, term, trunc, info = env.step(np.zeros(1, np.float32))
    assert isinstance(r, float) and isinstance(term, bool) and isinstance(trunc, bool)
    assert obs.shape == (5,) and np.all(np.isfinite(obs))
    # list actions are converted
    env.step([0.5])


def test_reset_seed_determinism_and_stream():
    env = envs.make("reacher-easy")
    o1, _ = env.reset(seed=42)
    acts = [np.full(2, 0.3 * (-1) ** i, np.float32) for i in range(10)]
    t1 = rollout(env, acts)
    o2, _ = env.reset(seed=42)
    t2 = rollout(env, acts)
    np.testing.assert_array_equal(o1, o2)
    for (a, ra, *_), (b, rb, *_) in zip(t1, t2):
        np.testing.assert_array_equal(a, b)
        assert ra == rb
    o3, _ = env.reset(seed=43)
    assert not np.array_equal(o1, o3)
    o4, _ = env.reset()  # seed=None continues the env's own stream
    assert not np.array_equal(o4, o3)


def test_state_round_trip():
    env = envs.make("walker-walk", seed=1)
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, 6).astype(np.float32))
    s = env.get_state()
    assert s.dtype == np.float64
    acts = [rng.uniform(-1, 1, 6).astype(np.float32) for _ in range(8)]
    first = rollout(env, acts)
    obs = env.set_state(s)
    second = rollout(env, acts)
    for (a, ra, *_), (b, rb, *_) in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert ra == rb
    assert obs.shape == env.observation_space.shape
    with pytest.raises(ValueError, match="float64"):
        env.set_state(s[:-1])
    bad = s.copy()
    bad[-1] = np.nan
    with pytest.raises(difftop.NonFiniteError, match="finite"):
        env.set_state(bad)


def test_time_limit_truncates():
    env = envs.make("cartpole-swingup", max_steps=7)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(7)]
    assert flags == [False] * 6 + [True]


def test_render_rgb():
    env = envs.make("cartpole-swingup", render_mode="rgb_array", render_size=(48, 64))
    env.reset(seed=0)
    try:
        img = env.render()
    except difftop.UnsupportedError as e:
        pytest.skip(f"rendering unavailable in this build: {e}")
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert img.std() > 0  # not a blank frame


def test_errors_carry_c_messages():
    with pytest.raises(difftop.NotFoundError) as ei:
        envs.make("cartpole-swingdown")
    assert "cartpole-swingup" in str(ei.value)  # the C message lists known names
    assert ei.value.status == 7
    env = envs.make("cartpole-swingup")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="expected 1"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(difftop.DifftopError) as ei:
        env.step(np.array([np.nan], np.float32))
    assert "NaN" in str(ei.value) or "finite" in str(ei.value)
    env.close()
    with pytest.raises(difftop.StateError):
        env.reset()


def test_names_and_pixels():
    names = envs.names()
    assert "cartpole-swingup" in names and "pusht" in names
    env = envs.make("cartpole-swingup", obs="pixels", image_size=32, frame_stack=2)
    try:
        obs, _ = env.reset(seed=0)
    except difftop.UnsupportedError as e:
        pytest.skip(f"pixels unavailable in this build: {e}")
    assert obs.shape == (6, 32, 32) and obs.dtype == np.uint8
    assert env.observation_space.shape == (6, 32, 32)


# check_env warns (not fails) about unbounded DMC observations and Push-T's pixel-unit actions
@pytest.mark.filterwarnings("ignore:.*WARN.*:UserWarning")
@pytest.mark.parametrize("task,obs", [("cartpole-swingup", "state"), ("walker-walk", "state"),
                                      ("pusht", "state"), ("reacher-easy", "pixels")])
def test_gymnasium_check_env(task, obs):
    gymnasium = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env
    env = envs.make(task, obs=obs, image_size=32 if obs == "pixels" else 0)
    assert isinstance(env, gymnasium.Env)
    assert isinstance(env.observation_space, gymnasium.spaces.Box)
    assert isinstance(env.action_space, gymnasium.spaces.Box)
    check_env(env, skip_render_check=True)
    # through the registry, with rendering
    genv = gymnasium.make(f"difftop/{task}-v0", render_mode="rgb_array", obs=obs,
                          image_size=32 if obs == "pixels" else 0, render_size=(32, 48))
    check_env(genv.unwrapped)
    genv.reset(seed=0)
    assert genv.render().shape == (32, 48, 3)
    genv.close()
    # the module:id form imports difftop.envs itself
    assert gymnasium.make(f"difftop.envs:difftop/{task}-v0").unwrapped.task == task
