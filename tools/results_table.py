#!/usr/bin/env python3
"""Markdown table of RL results: per task and algorithm, the mean +- std over seeds of the
evaluation return at a given env step (default: the last step every seed reached), next to the
published TD-MPC figure at that step. Usage: tools/results_table.py RUN_DIR... [--step N]"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_curves import load_plot_module  # noqa: E402

_plot = load_plot_module()
published, read_config = _plot.published, _plot.read_config


def read_eval(run):
    cols = _plot.load_run(run)["eval"]
    return [int(s) for s in cols.get("env_step", [])], list(cols.get("mean_return", []))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--step", type=int, default=None, help="env step to report")
    ap.add_argument("--window", type=int, default=1,
                    help="average each seed over its last N evaluations up to the step (default 1)")
    args = ap.parse_args()
    groups = defaultdict(dict)  # task -> algo -> {seed: (steps, returns)}
    for run in args.runs:
        if not os.path.isdir(run) or not os.path.exists(os.path.join(run, "eval.csv")):
            continue
        cfg = read_config(run)
        groups[cfg["task"]].setdefault(cfg["algo"], {})[cfg["seed"]] = read_eval(run)
    what = "return" if args.window == 1 else f"mean of the last {args.window} evaluations"
    print(f"Per seed: {what}; then mean ± std over seeds.\n")
    print("| task | env steps | TD-MPC (ours) | DiffTOP (ours) | TD-MPC published (mean ± std) |")
    print("|---|---|---|---|---|")
    diffs = []
    for task in sorted(groups):
        algos = groups[task]
        # the step to report: the requested one, or the last step every run of the task reached
        reached = [s[-1] for runs in algos.values() for s, _ in runs.values() if s]
        step = args.step if args.step is not None else min(reached)
        cells, means = [], {}
        for algo in ("tdmpc", "difftop"):
            vals = []
            for s, r in algos.get(algo, {}).values():
                if step in s:
                    k = s.index(step)
                    window = r[max(0, k - args.window + 1):k + 1]
                    vals.append(sum(window) / len(window))
            if vals:
                m = sum(vals) / len(vals)
                sd = math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))
                cells.append(f"{m:.0f} ± {sd:.0f} ({len(vals)} seeds)")
                means[algo] = m
            else:
                cells.append("—")
        pub = published(task, step)
        pubcell = "; ".join(
            f"{m[xs.index(step)]:.0f} ± {s[xs.index(step)]:.0f} ({lab.split('(')[1][:-1]})"
            for lab, (xs, m, s, n) in pub.items() if step in xs) or "—"
        print(f"| {task} | {step} | {cells[0]} | {cells[1]} | {pubcell} |")
        if len(means) == 2:
            diffs.append(means["difftop"] - means["tdmpc"])
    if diffs:
        print(f"\nMean over the {len(diffs)} tasks of (DiffTOP − TD-MPC): {sum(diffs) / len(diffs):+.1f}")


if __name__ == "__main__":
    main()
