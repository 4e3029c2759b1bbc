# tools/results_table.py: the RL table per task and variant, and the mean difference to TD-MPC.
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(root, name, algo, seed, returns, extra=""):
    d = root / name
    d.mkdir()
    (d / "config.yaml").write_text(f"task: pendulum-swingup\nalgo: {algo}\nseed: {seed}\n{extra}")
    rows = "".join(f"{i * 10000},{r}\n" for i, r in enumerate(returns))
    (d / "eval.csv").write_text("env_step,mean_return\n" + rows)
    return str(d)


def _table(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "results_table.py"), *args],
                          capture_output=True, text=True)


def test_variants_get_their_own_column(tmp_path):
    runs = [_run(tmp_path, "t1", "tdmpc", 1, [0, 100, 300]),
            _run(tmp_path, "t2", "tdmpc", 2, [0, 100, 500]),
            _run(tmp_path, "d1", "difftop", 1, [0, 50, 200]),
            _run(tmp_path, "e1", "difftop", 1, [0, 400, 600], "mppi_init: 1\nexplore: 1\n")]
    out = _table(*runs, "--step", "20000")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "| TD-MPC (ours) | DiffTOP (ours) | difftop +mppi_init +explore |" in lines[2]
    row = next(l for l in lines if l.startswith("| pendulum-swingup"))
    assert "400 ± 100 (2 seeds) | 200 ± 0 (1 seeds) | 600 ± 0 (1 seeds)" in row
    assert "(DiffTOP − TD-MPC): -200.0" in out.stdout
    assert "(difftop +mppi_init +explore − TD-MPC): +200.0" in out.stdout
    # the mean of the last two evaluations
    out = _table(*runs, "--step", "20000", "--window", "2")
    assert "250 ± 50 (2 seeds) | 125 ± 0 (1 seeds) | 500 ± 0 (1 seeds)" in out.stdout


def test_two_runs_of_one_seed_are_refused(tmp_path):
    a = _run(tmp_path, "a", "difftop", 1, [0, 100])
    b = _run(tmp_path, "b", "difftop", 1, [0, 200])
    out = _table(a, b)
    assert out.returncode != 0 and "two runs of pendulum-swingup, difftop, seed 1" in out.stderr
