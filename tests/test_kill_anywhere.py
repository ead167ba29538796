"""Kill anywhere, small: bench/kill_anywhere.py SIGKILLs two tiny runs at random moments, resumes them,
and their final reports must equal an uninterrupted run's value for value (the bench runs 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "kill_anywhere.py"


def test_two_runs_killed_at_random_moments_resume_to_the_uninterrupted_report(tmp_path):
    cmd = [sys.executable, str(BENCH), "--kills", "2", "--quick", "--seed", "0", "--workdir", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "2/2 final reports identical to the uninterrupted run"
    assert sum("identical" in line and line.startswith("  run ") for line in lines) == 2
