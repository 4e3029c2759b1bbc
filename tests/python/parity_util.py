# SPDX-License-Identifier: MIT
"""Helpers shared by the PyTorch parity tests (imported by them; holds no tests)."""
import numpy as np


def rel(c, r):
    """max |c - r| / max |r| in float64 (the per-tensor error the parity tests bound)."""
    c, r = np.asarray(c, np.float64), np.asarray(r, np.float64)
    return float(np.abs(c - r).max() / max(np.abs(r).max(), 1e-30))


def check_parity(name, worst, gp, gp32, gp64, tol, width=45):
    """worst: {label: (C's error, torch float32's error)} against the float64 reference; adds
    the worst parameter gradient (gp: C's, gp32 / gp64: torch's by name), prints the table
    (pytest -s) and asserts every C error, and every parameter gradient's, is <= tol."""
    assert sorted(gp) == sorted(gp64), "C and torch parameter names differ"
    wp = max(((rel(gp[n], gp64[n]), rel(gp32[n], gp64[n]), n) for n in gp64), key=lambda t: t[0])
    worst = dict(worst)
    worst[f"dL/dparams (worst: {wp[2]})"] = wp[:2]
    print(f"\n{name}: max|C - torch64| / max|torch64| (torch32 beside it)")
    for k, (ec, e32) in worst.items():
        print(f"  {k:{width}s} {ec:.2e}  ({e32:.2e})")
    for k, (ec, _) in worst.items():
        assert ec <= tol, f"{name}: {k}: relative error {ec:.3g} > {tol}"
    for n in gp64:
        assert rel(gp[n], gp64[n]) <= tol, f"{name}: gradient of {n}: {rel(gp[n], gp64[n]):.3g}"
