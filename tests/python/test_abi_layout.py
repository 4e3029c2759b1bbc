# SPDX-License-Identifier: MIT
"""The ctypes mirrors of the C structs (python/difftop/_lib.py) have the C layout: a small C
program compiled against include/difftop prints sizeof and offsetof of every mirrored field,
which must equal ctypes' sizes and offsets. Skips without a C compiler."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

difftop = pytest.importorskip("difftop")
from difftop import _lib  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
STRUCTS = {"DtRng": "dtRng", "DtTensor": "dtTensor", "DtTapeOpts": "dtTapeOpts",
           "DtParams": "dtParams", "DtMLPSpec": "dtMLPSpec", "DtMLP": "dtMLP",
           "DtObjective": "dtObjective", "DtLatentPlan": "dtLatentPlan",
           "DtTrajoptOpts": "dtTrajoptOpts", "DtTrajoptStats": "dtTrajoptStats",
           "DtEnvOpts": "dtEnvOpts", "DtSpace": "dtSpace", "DtStepInfo": "dtStepInfo",
           "DtTold": "dtTold", "DtILEvalResult": "dtILEvalResult",
           "DtUnet1DSpec": "dtUnet1DSpec", "DtConv1dBlock": "dtConv1dBlock",
           "DtResBlock1D": "dtResBlock1D", "DtUnet1D": "dtUnet1D",
           "DtLstmSpec": "dtLstmSpec", "DtLstm": "dtLstm"}


def test_struct_layouts_match_c(tmp_path):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <difftop/difftop.h>",
             "int main(void) {", 'printf("{");']
    first = True
    for py, c in STRUCTS.items():
        fields = [f[0] for f in getattr(_lib, py)._fields_]
        parts = [f'\\"{c}.sizeof\\": %zu'] + [f'\\"{c}.{f}\\": %zu' for f in fields]
        args = [f"sizeof({c})"] + [f"offsetof({c}, {f})" for f in fields]
        sep = "" if first else ", "
        first = False
        lines.append(f'printf("{sep}{", ".join(parts)}", {", ".join(args)});')
    lines += ['printf(", \\"dtRLConfig.sizeof\\": %zu}\\n", sizeof(dtRLConfig));', "return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", str(ROOT / "include"), str(src), "-o", str(exe)],
                   check=True, capture_output=True)
    c_layout = json.loads(subprocess.run([str(exe)], check=True, capture_output=True,
                                         text=True).stdout)
    for py, c in STRUCTS.items():
        cls = getattr(_lib, py)
        assert c_layout[f"{c}.sizeof"] == __import__("ctypes").sizeof(cls), f"sizeof({c})"
        for f in cls._fields_:
            assert c_layout[f"{c}.{f[0]}"] == getattr(cls, f[0]).offset, f"{c}.{f[0]}"
    assert c_layout["dtRLConfig.sizeof"] <= _lib.RL_CONFIG_BYTES
