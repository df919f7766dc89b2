"""The crash trials of ``bench/reliability.py`` still run and still lose nothing (a short run; the
published figures are the full one's, in docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_kill_9_of_the_server_loses_no_acknowledged_event() -> None:
    finished = subprocess.run(
        [sys.executable, "reliability.py", "--trials", "3", "--targets", "sqlite", "--no-load"],
        cwd=BENCH,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    figures = {line["figure"]: line for line in map(json.loads, finished.stdout.splitlines())}
    assert figures["sqlite_acknowledged"]["trials"] == 3
    assert figures["sqlite_acknowledged"]["value"] > 0
    assert figures["sqlite_lost"]["value"] == 0
