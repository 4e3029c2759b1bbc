#!/usr/bin/env python3
"""Print an IL results table (markdown) from RUN_DIR/*/eval.json.

Push-T runs (the upstream metric) and DMC runs (metric "return", with the expert's return on
the same episodes) get their own tables; run directories are named <policy>-s<seed>.
"""
import glob, json, os, sys, statistics as st


def final_loss(csv):
    """The last epoch's training loss from train.csv (NaN when missing)."""
    if not os.path.exists(csv):
        return float("nan")
    lines = [l for l in open(csv).read().splitlines() if l and l[0].isdigit()]
    return float(lines[-1].split(",")[1]) if lines else float("nan")


def load(root):
    rows = {}
    for f in sorted(glob.glob(os.path.join(root, "*", "eval.json"))):
        name = os.path.basename(os.path.dirname(f))
        base, _, seed = name.rpartition("-s")
        if not base or not seed.isdigit():
            continue
        e = json.load(open(f))
        e["final_loss"] = final_loss(os.path.join(os.path.dirname(f), "train.csv"))
        rows.setdefault(base, []).append((int(seed), e))
    for r in rows.values():
        r.sort(key=lambda x: x[0])
    return rows


def msd(xs):
    return st.mean(xs), (st.stdev(xs) if len(xs) > 1 else 0.0)


def table(rows):
    out = []
    pusht = {b: r for b, r in rows.items() if r[0][1].get("metric") != "return"}
    dmc = {b: r for b, r in rows.items() if r[0][1].get("metric") == "return"}
    if pusht:
        out.append("| policy | seeds | score (mean ± sd over seeds) | per-seed scores | success | ms/action | "
                   "final train loss |")
        out.append("|---|---|---|---|---|---|---|")
        for base, r in pusht.items():
            sc = [e["mean_score"] for _, e in r]
            m, sd = msd(sc)
            losses = ", ".join(f"{e['final_loss']:.4f}" if e["final_loss"] == e["final_loss"] else "–"
                               for _, e in r)
            out.append(f"| {base} | {','.join(str(s) for s, _ in r)} | {m:.3f} ± {sd:.3f} | "
                       f"{', '.join(f'{x:.3f}' for x in sc)} | "
                       f"{st.mean(e['success_rate'] for _, e in r):.2f} | "
                       f"{st.mean(e['ms_per_action'] for _, e in r):.3f} | "
                       f"{losses} |")
    if dmc:
        if out:
            out.append("")
        tasks = sorted({e["task"] for r in dmc.values() for _, e in r})
        out.append(f"Task {', '.join(tasks)}: mean return over {dmc[next(iter(dmc))][0][1]['episodes']} "
                   "episodes per run; sd over training seeds; per-episode sd averaged over seeds.")
        out.append("")
        out.append("| policy | seeds | return (mean ± sd over seeds) | per-seed returns | "
                   "per-episode sd | expert | ms/action |")
        out.append("|---|---|---|---|---|---|---|")
        for base, r in dmc.items():
            sc = [e["mean_return"] for _, e in r]
            m, sd = msd(sc)
            out.append(f"| {base} | {','.join(str(s) for s, _ in r)} | {m:.1f} ± {sd:.1f} | "
                       f"{', '.join(f'{x:.1f}' for x in sc)} | "
                       f"{st.mean(e['sd_return'] for _, e in r):.1f} | "
                       f"{st.mean(e['expert_return'] for _, e in r):.1f} | "
                       f"{st.mean(e['ms_per_action'] for _, e in r):.3f} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(load(sys.argv[1] if len(sys.argv) > 1 else "runs/il")))
