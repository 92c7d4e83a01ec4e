"""The chaos soak, wide: many seeds, or one seed for long (issue 15).

Usage::

    python3 scripts/soak.py                         # seeds 1-200, 300 operations
    python3 scripts/soak.py --seeds 1-10 --operations 3000
    python3 scripts/soak.py --seeds 20261124 --operations 150   # one seed, replayed

Runs ``room_exchange_sync/tests/test_soak.py`` (``TestChaosSoak.test_chaos_soak``) on
the test database made by ``make setup`` (``$ODOO_TEST_DB``, default
room_exchange_sync_test): every seed in one Odoo process, each rolled back after it.
A seed replays exactly (same operations, same faults on the same requests), so a
failing seed fails every time; each failure prints its problems and the command that
reproduces it. The last line sums the run up, e.g.::

    Soak wide: 200 seeds x 300 operations (fault rate 0.25): 200 passed, 0 failed in
    5100s.

The exit status is pytest's: 0 when every seed passed.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench_support import addons_path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1-200", help="A-B or a comma list")
    parser.add_argument("--operations", type=int, default=300)
    parser.add_argument("--fault-rate", type=float, default=0.25)
    parser.add_argument(
        "--db", default=os.environ.get("ODOO_TEST_DB", "room_exchange_sync_test")
    )
    args = parser.parse_args()
    environment = {
        **os.environ,
        "ROOM_SOAK_SEEDS": args.seeds,
        "ROOM_SOAK_OPERATIONS": str(args.operations),
        "ROOM_SOAK_FAULT_RATE": str(args.fault_rate),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "pytest_odoo",
        f"--odoo-database={args.db}",
        f"--odoo-addons-path={addons_path()}",
        "room_exchange_sync/tests/test_soak.py",
        "-q",
        "-s",
        "-k",
        "TestChaosSoak and test_chaos_soak",
    ]
    return subprocess.run(command, cwd=REPO, env=environment, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
