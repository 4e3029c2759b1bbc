#!/usr/bin/env python3
"""Print the Push-T IL results table (markdown) from RUN_DIR/*/eval.json."""
import glob, json, os, sys, statistics as st
root = sys.argv[1] if len(sys.argv) > 1 else "runs/il"
rows = {}
for f in sorted(glob.glob(os.path.join(root, "*", "eval.json"))):
    name = os.path.basename(os.path.dirname(f))
    base, _, seed = name.rpartition("-s")
    e = json.load(open(f))
    loss = float("nan")
    csv = os.path.join(os.path.dirname(f), "train.csv")
    if os.path.exists(csv):
        lines = [l for l in open(csv).read().splitlines() if l and l[0].isdigit()]
        if lines:
            loss = float(lines[-1].split(",")[1])
    rows.setdefault(base, []).append((int(seed), e["mean_score"], e["success_rate"], e["ms_per_action"], loss))
print("| policy | seeds | score (mean ± sd over seeds) | per-seed scores | success | ms/action | final train loss |")
print("|---|---|---|---|---|---|---|")
for base, r in rows.items():
    sc = [x[1] for x in r]
    sd = st.stdev(sc) if len(sc) > 1 else 0.0
    print(f"| {base} | {','.join(str(x[0]) for x in r)} | {st.mean(sc):.3f} ± {sd:.3f} | "
          f"{', '.join(f'{x:.3f}' for x in sc)} | {st.mean(x[2] for x in r):.2f} | {st.mean(x[3] for x in r):.3f} | "
          f"{', '.join(f'{x[4]:.4f}' for x in r)} |")
