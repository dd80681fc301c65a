"""The plan memo answers a no-op build before the planner loads: importing it must not
pull in networkx or numpy (they are most of the planner's start-up time)."""

from __future__ import annotations

import subprocess
import sys


def test_the_plan_memo_imports_neither_the_planner_nor_numpy():
    probe = "import sys, trainkit.engine.memo; print(sorted({'networkx', 'numpy', 'trainkit.engine.plan'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
