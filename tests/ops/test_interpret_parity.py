"""Run the Triton-vs-reference parity cases under the Triton CPU interpreter, in a subprocess.

``TRITON_INTERPRET=1`` has to be set before the kernel modules are imported and must not leak into the rest of the
suite, so one child process runs ``python -m pytest tests/ops/interpret_cases.py`` with that variable set (one
process for all three kernel families: interpreter start-up dominates the cost). Its output names any failing case.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

CASES = Path(__file__).with_name('interpret_cases.py')
REPO = Path(__file__).resolve().parents[2]


def test_parity_under_interpreter():
    env = {**os.environ, 'TRITON_INTERPRET': '1'}
    cmd = [sys.executable, '-m', 'pytest', str(CASES), '-q', '-p', 'no:cacheprovider']
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'parity cases failed (`{" ".join(cmd)}` with TRITON_INTERPRET=1):\n{output}'
    passed = re.search(r'(\d+) passed', output)
    assert passed and int(passed.group(1)) >= 15, f'expected every parity case to run:\n{output}'
    assert not re.search(r'skipped|deselected|xfail', output), f'parity cases must all run:\n{output}'
