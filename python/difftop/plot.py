# SPDX-License-Identifier: MIT
"""Learning curves of difftop run directories (the Python side of `difftop plot`).

    from difftop.plot import load_run, plot_runs
    fig = plot_runs(["runs/difftop-reacher-easy-s1", "runs/difftop-reacher-easy-s2"], out="c.png")

A run directory holds config.yaml (task, algo, seed), eval.csv (env_step, mean_return, ...) and
train.csv. Runs of the same task, algorithm and variant flags are grouped; the mean +- std over seeds is drawn
at the env steps every seed reached. With published=True and a repository checkout, TD-MPC's
published curves (data/tdmpc) are overlaid, as tools/plot_curves.py does. Needs matplotlib only
for drawing; load_run and group_runs work without it.
"""
import csv
import math
import os
from collections import defaultdict

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read_csv(path):
    if not os.path.exists(path):
        return {}
    cols = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                try:
                    cols[k].append(float(v))
                except (TypeError, ValueError):
                    cols[k].append(v)
    return dict(cols)


def read_config(run):
    cfg = {}
    with open(os.path.join(run, "config.yaml")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if ":" in line:
                k, v = line.split(":", 1)
                cfg[k.strip()] = v.strip().strip("'\"")
    return cfg


def load_run(run):
    """{'config': {...}, 'eval': {column: [...]}, 'train': {column: [...]}} of a run directory."""
    if not os.path.exists(os.path.join(run, "config.yaml")):
        raise FileNotFoundError(f"{run}: not a run directory (no config.yaml)")
    return {"path": run, "config": read_config(run),
            "eval": _read_csv(os.path.join(run, "eval.csv")),
            "train": _read_csv(os.path.join(run, "train.csv"))}


def mean_std(curves, max_step=None):
    """Mean and std across seeds at the steps every seed reached (and <= max_step)."""
    common = set(curves[0][0])
    for steps, _ in curves[1:]:
        common &= set(steps)
    xs = sorted(s for s in common if max_step is None or s <= max_step)
    means, stds = [], []
    for x in xs:
        vals = [rets[list(steps).index(x)] for steps, rets in curves]
        m = sum(vals) / len(vals)
        means.append(m)
        stds.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)))
    return xs, means, stds


# config flags that make a run a variant of its algorithm (off = "0" in configs/default.yaml)
VARIANT_FLAGS = ("mppi_init", "explore", "no_backward", "no_pi_init", "no_reward_loss",
                 "no_dynamics_loss")


def variant_label(config):
    """The algorithm's name plus the variant flags a run turned on, e.g. 'difftop +mppi_init'."""
    label = config.get("algo", "?")
    for flag in VARIANT_FLAGS:
        if config.get(flag, "0") not in ("0", ""):
            label += " +" + flag
    if config.get("pg_mode", "official") not in ("official", ""):
        label += " pg_mode=" + config["pg_mode"]
    return label


def group_runs(runs, x="env_step", y="mean_return"):
    """{(task, variant label): [(steps, values), ...]} from eval.csv of each run; runs of one
    algorithm with different variant flags (variant_label) are kept apart."""
    groups = defaultdict(list)
    for run in runs:
        r = load_run(run)
        ev = r["eval"]
        if ev.get(x) and ev.get(y):
            key = (r["config"].get("task", "?"), variant_label(r["config"]))
            groups[key].append(([int(s) for s in ev[x]], ev[y]))
    return dict(groups)


def published(task, max_step=None, root=_ROOT):
    """Published TD-MPC curves {label: (steps, mean, std, seeds)} from data/tdmpc, if present."""
    out = {}
    sources = [("tdmpc-results", "TD-MPC (published, 5 seeds)", "step", "return"),
               ("tdmpc2-results-tdmpc", "TD-MPC (TD-MPC2 re-run)", "step", "reward")]
    for folder, label, sk, rk in sources:
        path = os.path.join(root, "data", "tdmpc", folder, task + ".csv")
        if not os.path.exists(path):
            continue
        by_seed = defaultdict(dict)
        with open(path) as f:
            for row in csv.DictReader(f):
                by_seed[row["seed"]][int(float(row[sk]))] = float(row[rk])
        curves = [(sorted(d), [d[s] for s in sorted(d)]) for d in by_seed.values()]
        xs, m, s = mean_std(curves, max_step)
        if xs:
            out[label] = (xs, m, s, len(curves))
    return out


def plot_runs(runs, out=None, published_curves=True, ylim=(0, 1000)):
    """One panel per task, mean +- std over seeds per algorithm; returns the figure (and writes
    it to `out` when given). Raises ImportError when matplotlib is missing."""
    try:
        import matplotlib
        if out is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("difftop.plot needs matplotlib (apt-get install python3-matplotlib "
                          "or pip install matplotlib)") from e
    groups = group_runs(runs)
    if not groups:
        raise ValueError("plot_runs: no evaluations in the given runs")
    tasks = sorted({t for t, _ in groups})
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = {"difftop": "tab:red", "tdmpc": "tab:blue"}
    extra_colors = ["tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:olive"]
    variants = sorted({label for _, label in groups} - set(colors))
    colors.update({v: extra_colors[i % len(extra_colors)] for i, v in enumerate(variants)})
    for i, task in enumerate(tasks):
        ax = axes[i // cols][i % cols]
        ours_max = 0
        for (t, algo), curves in sorted(groups.items()):
            if t != task:
                continue
            xs, m, s = mean_std(curves)
            ours_max = max(ours_max, xs[-1] if xs else 0)
            c = colors.get(algo)
            ax.plot(xs, m, color=c, label=f"{algo} ({len(curves)} seeds)")
            ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                            color=c, alpha=0.2)
        if published_curves:
            for j, (label, (xs, m, s, n)) in enumerate(published(task, max(ours_max, 100000)).items()):
                ax.plot(xs, m, "--" if j == 0 else ":", color="gray", label=label)
                ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                                color="gray", alpha=0.12)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("episode return")
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for j in range(len(tasks), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig
