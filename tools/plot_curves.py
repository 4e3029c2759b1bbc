#!/usr/bin/env python3
"""Learning curves of difftop runs (mean +- std over seeds, one panel per task, the published
TD-MPC curves overlaid): the command-line front of python/difftop/plot.py, which holds the
logic. Used by `difftop plot RUN_DIR... [--out FILE]`."""
import argparse
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_plot_module():
    """python/difftop/plot.py from the source tree or the installed share/difftop, by path (the
    difftop package itself is not imported: it would load the C library)."""
    path = os.path.join(os.path.dirname(HERE), "python", "difftop", "plot.py")
    spec = importlib.util.spec_from_file_location("difftop_plot", path)
    if spec is None or not os.path.exists(path):
        sys.exit(f"difftop plot: {path} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", help="run directories")
    ap.add_argument("--out", default="curves.png", help="PNG file to write")
    args = ap.parse_args()
    plot = load_plot_module()
    for run in args.runs:
        if not os.path.exists(os.path.join(run, "eval.csv")):
            sys.exit(f"difftop plot: {run}: not a run directory (no eval.csv)")
    try:
        plot.plot_runs(args.runs, out=args.out)
    except ImportError:
        sys.exit("difftop plot: matplotlib is missing (apt-get install python3-matplotlib)")
    print(args.out)


if __name__ == "__main__":
    main()
