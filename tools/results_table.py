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


NAMES = {"tdmpc": "TD-MPC (ours)", "difftop": "DiffTOP (ours)"}


def cell(runs, step, window):
    """'mean ± sd (n seeds)' of the runs' returns at `step` (each averaged over its last
    `window` evaluations) and the mean, or ('—', None) when no run reached the step."""
    vals = []
    for s, r in runs.values():
        if step in s:
            k = s.index(step)
            w = r[max(0, k - window + 1):k + 1]
            vals.append(sum(w) / len(w))
    if not vals:
        return "—", None
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))
    return f"{m:.0f} ± {sd:.0f} ({len(vals)} seeds)", m


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--step", type=int, default=None, help="env step to report")
    ap.add_argument("--window", type=int, default=1,
                    help="average each seed over its last N evaluations up to the step (default 1)")
    args = ap.parse_args()
    # task -> variant label (algo plus its variant flags) -> {seed: (steps, returns)}
    groups = defaultdict(dict)
    for run in args.runs:
        if not os.path.isdir(run) or not os.path.exists(os.path.join(run, "eval.csv")):
            continue
        cfg = read_config(run)
        seeds = groups[cfg["task"]].setdefault(_plot.variant_label(cfg), {})
        if cfg["seed"] in seeds:
            sys.exit(f"results_table: two runs of {cfg['task']}, {_plot.variant_label(cfg)}, "
                     f"seed {cfg['seed']} (the second is {run})")
        seeds[cfg["seed"]] = read_eval(run)
    labels = sorted({lab for algos in groups.values() for lab in algos},
                    key=lambda lab: (lab != "tdmpc", lab != "difftop", lab))
    others = [lab for lab in labels if lab != "tdmpc"]
    what = "return" if args.window == 1 else f"mean of the last {args.window} evaluations"
    print(f"Per seed: {what}; then mean ± std over seeds.\n")
    cols = ["tdmpc"] + others
    print("| task | env steps | " + " | ".join(NAMES.get(c, c) for c in cols)
          + " | TD-MPC published (mean ± std) |")
    print("|---" * (len(cols) + 3) + "|")
    diffs = defaultdict(list)
    for task in sorted(groups):
        algos = groups[task]
        # the step to report: the requested one, or the last step every run of the task reached
        reached = [s[-1] for runs in algos.values() for s, _ in runs.values() if s]
        step = args.step if args.step is not None else min(reached)
        cells, means = [], {}
        for c in cols:
            text, means[c] = cell(algos.get(c, {}), step, args.window)
            cells.append(text)
        pub = published(task, step)
        pubcell = "; ".join(
            f"{m[xs.index(step)]:.0f} ± {s[xs.index(step)]:.0f} ({lab.split('(')[1][:-1]})"
            for lab, (xs, m, s, n) in pub.items() if step in xs) or "—"
        print(f"| {task} | {step} | " + " | ".join(cells) + f" | {pubcell} |")
        for c in others:
            if means[c] is not None and means["tdmpc"] is not None:
                diffs[c].append(means[c] - means["tdmpc"])
    for c in others:
        if diffs[c]:
            name = "DiffTOP" if c == "difftop" else c
            print(f"\nMean over the {len(diffs[c])} tasks of ({name} − TD-MPC): "
                  f"{sum(diffs[c]) / len(diffs[c]):+.1f}")


if __name__ == "__main__":
    main()
