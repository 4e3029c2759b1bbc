#!/usr/bin/env python3
"""Learning curves of difftop runs: mean +- std over seeds, one panel per task, with the
published TD-MPC curves (data/tdmpc) overlaid. Used by `difftop plot RUN_DIR... [--out FILE]`.

Each run directory holds config.yaml (task, algo, seed) and eval.csv (env_step, mean_return).
Runs of the same task and algorithm are grouped; seeds are aligned on their common env steps.
"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

# the source tree (tools/..) or the installed share/difftop (tools/..): both hold data/tdmpc
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_config(run):
    cfg = {}
    with open(os.path.join(run, "config.yaml")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if ":" in line:
                k, v = line.split(":", 1)
                cfg[k.strip()] = v.strip()
    return cfg


def read_eval(run):
    steps, rets = [], []
    with open(os.path.join(run, "eval.csv")) as f:
        for row in csv.DictReader(f):
            steps.append(int(float(row["env_step"])))
            rets.append(float(row["mean_return"]))
    return steps, rets


def mean_std(curves, max_step):
    """Mean and std across seeds at the steps every seed reached (and <= max_step)."""
    common = set(curves[0][0])
    for steps, _ in curves[1:]:
        common &= set(steps)
    xs = sorted(s for s in common if max_step is None or s <= max_step)
    means, stds = [], []
    for x in xs:
        vals = [rets[steps.index(x)] for steps, rets in curves]
        m = sum(vals) / len(vals)
        means.append(m)
        stds.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)))
    return xs, means, stds


def published(task, max_step):
    """Published TD-MPC curves for a task: {label: (steps, mean, std, seeds)}."""
    out = {}
    sources = [("tdmpc-results", "TD-MPC (published, 5 seeds)", "step", "return"),
               ("tdmpc2-results-tdmpc", "TD-MPC (TD-MPC2 re-run)", "step", "reward")]
    for folder, label, sk, rk in sources:
        path = os.path.join(ROOT, "data", "tdmpc", folder, task + ".csv")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", help="run directories")
    ap.add_argument("--out", default="curves.png", help="PNG file to write")
    ap.add_argument("--max-step", type=int, default=None,
                    help="last env step shown for the published curves (default: ours)")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("difftop plot: matplotlib is missing (apt-get install python3-matplotlib)")

    groups = defaultdict(list)  # (task, algo) -> [(steps, returns)]
    for run in args.runs:
        try:
            cfg = read_config(run)
            steps, rets = read_eval(run)
        except (OSError, KeyError, ValueError) as e:
            sys.exit(f"difftop plot: {run}: not a run directory ({e})")
        if steps:
            groups[(cfg.get("task", "?"), cfg.get("algo", "?"))].append((steps, rets))
    if not groups:
        sys.exit("difftop plot: no evaluations in the given runs")
    tasks = sorted({t for t, _ in groups})
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = {"difftop": "tab:red", "tdmpc": "tab:blue"}
    for i, task in enumerate(tasks):
        ax = axes[i // cols][i % cols]
        ours_max = 0
        for (t, algo), curves in sorted(groups.items()):
            if t != task:
                continue
            xs, m, s = mean_std(curves, None)
            ours_max = max(ours_max, xs[-1] if xs else 0)
            c = colors.get(algo, None)
            ax.plot(xs, m, color=c, label=f"{algo} (ours, {len(curves)} seeds)")
            ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                            color=c, alpha=0.2)
        limit = args.max_step or max(ours_max, 100000)
        for j, (label, (xs, m, s, n)) in enumerate(published(task, limit).items()):
            style = "--" if j == 0 else ":"
            ax.plot(xs, m, style, color="gray", label=label)
            ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                            color="gray", alpha=0.12)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("episode return")
        ax.set_ylim(0, 1000)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for j in range(len(tasks), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
