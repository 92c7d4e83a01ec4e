"""Several cron workers syncing together: every room once per cycle, none starved.

Runs ``scripts/load.py`` on a small size against real PostgreSQL and the emulator, and
checks its behavioural verdicts (never its timings). ``make load`` runs the full size.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_two_workers_sync_each_room_once_per_cycle():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "load.py"),
            "--rooms",
            "12",
            "--bookings-per-room",
            "4",
            "--cycles",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "every room processed exactly once per cycle: met" in output, output[-3000:]
    assert "target idle room 1 Graph request: 1.00 per room: met" in output, output[
        -3000:
    ]
    assert (
        "expected 48)" in output
        and "events in the room calendars at the end: 48" in (output)
    ), output[-3000:]
