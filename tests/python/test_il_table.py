# tools/il-table.py: Push-T and DMC (return) runs get their own tables with per-seed values.
import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("il_table", ROOT / "tools" / "il-table.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _write(root, name, e):
    d = root / name
    d.mkdir()
    (d / "eval.json").write_text(json.dumps(e))


def test_tables(tmp_path):
    m = _module()
    for s, v in [(1, 0.2), (2, 0.4)]:
        _write(tmp_path, f"bc-s{s}", {"mean_score": v, "success_rate": 0.0, "ms_per_action": 0.01})
    # the final training loss comes from train.csv's last epoch; a run without one shows "–"
    (tmp_path / "bc-s1" / "train.csv").write_text("epoch,loss\n1,0.5\n2,0.0125\n")
    for s, v in [(2, 600.0), (1, 500.0), (3, 700.0)]:
        _write(tmp_path, f"difftop-bc-s{s}",
               {"metric": "return", "task": "reacher-hard", "episodes": 50, "mean_score": v,
                "mean_return": v, "sd_return": 100.0, "expert_return": 979.0,
                "success_rate": None, "ms_per_action": 0.05})
    (tmp_path / "notarun").mkdir()
    out = m.table(m.load(str(tmp_path)))
    lines = out.splitlines()
    assert "| bc | 1,2 | 0.300 ± 0.141 | 0.200, 0.400 | 0.00 | 0.010 | 0.0125, – |" in lines
    assert "| difftop-bc | 1,2,3 | 600.0 ± 100.0 | 500.0, 600.0, 700.0 | 100.0 | 979.0 | 0.050 |" in lines
    assert any(line.startswith("Task reacher-hard") for line in lines)
