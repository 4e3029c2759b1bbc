# SPDX-License-Identifier: MIT
"""difftop.plot: reading run directories and drawing their learning curves."""
import pytest

plot = pytest.importorskip("difftop.plot")


def make_run(root, name, task, algo, seed, returns):
    d = root / name
    d.mkdir()
    (d / "config.yaml").write_text(f"task: {task}\nalgo: {algo}\nseed: {seed}  # comment\n")
    rows = "".join(f"{(i + 1) * 1000},{r}\n" for i, r in enumerate(returns))
    (d / "eval.csv").write_text("env_step,mean_return\n" + rows)
    (d / "train.csv").write_text("env_step,episode_return\n1000,3.5\n")
    return str(d)


def test_load_group_and_plot(tmp_path):
    a = make_run(tmp_path, "a", "cartpole-swingup", "difftop", 1, [10, 20, 30])
    b = make_run(tmp_path, "b", "cartpole-swingup", "difftop", 2, [30, 40])
    c = make_run(tmp_path, "c", "reacher-easy", "tdmpc", 1, [5])
    r = plot.load_run(a)
    assert r["config"] == {"task": "cartpole-swingup", "algo": "difftop", "seed": "1"}
    assert r["eval"]["mean_return"] == [10.0, 20.0, 30.0] and r["train"]["episode_return"] == [3.5]
    groups = plot.group_runs([a, b, c])
    xs, m, s = plot.mean_std(groups[("cartpole-swingup", "difftop")])
    assert xs == [1000, 2000] and m == [20.0, 30.0] and s == [10.0, 10.0]
    with pytest.raises(FileNotFoundError):
        plot.load_run(str(tmp_path))
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    fig = plot.plot_runs([a, b, c], out=str(out))
    assert out.stat().st_size > 1000 and len(fig.axes) >= 2


def test_variants_are_grouped_apart(tmp_path):
    a = make_run(tmp_path, "a", "pendulum-swingup", "difftop", 1, [10, 20])
    b = make_run(tmp_path, "b", "pendulum-swingup", "difftop", 1, [50, 60])
    with open(b + "/config.yaml", "a") as f:
        f.write("mppi_init: 1\nexplore: 1\nno_backward: 0\npg_mode: official\n")
    c = make_run(tmp_path, "c", "pendulum-swingup", "difftop", 2, [70, 80])
    with open(c + "/config.yaml", "a") as f:
        f.write("pg_mode: batched\n")
    groups = plot.group_runs([a, b, c])
    assert sorted(groups) == [("pendulum-swingup", "difftop"),
                              ("pendulum-swingup", "difftop +mppi_init +explore"),
                              ("pendulum-swingup", "difftop pg_mode=batched")]
    assert groups[("pendulum-swingup", "difftop +mppi_init +explore")][0][1] == [50.0, 60.0]
    pytest.importorskip("matplotlib")
    fig = plot.plot_runs([a, b, c], out=str(tmp_path / "v.png"))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any(l.startswith("difftop +mppi_init +explore") for l in labels)
