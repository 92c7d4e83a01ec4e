"""The set-up stops with one sentence that names the fix when something is missing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_setup(**env):
    environment = dict(os.environ, SKIP_SYSTEM_PACKAGES="1", PYTHON=sys.executable)
    environment.update(env)
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def last_sentence(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_missing_odoo_source_is_named(tmp_path):
    result = run_setup(ODOO_SOURCE=str(tmp_path / "nowhere"))
    assert result.returncode != 0
    assert "ODOO_SOURCE" in last_sentence(result)
    assert "Traceback" not in result.stderr


def test_a_directory_that_is_not_odoo_is_named(tmp_path):
    result = run_setup(ODOO_SOURCE=str(tmp_path))
    assert result.returncode != 0
    assert "is not an Odoo source tree" in last_sentence(result)


def test_another_odoo_version_is_named(tmp_path):
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo" / "release.py").write_text("version_info = (18, 0, 0)\n")
    result = run_setup(ODOO_SOURCE=str(tmp_path))
    assert result.returncode != 0
    assert "is Odoo 18.0; room_exchange_sync needs Odoo 19.0" in last_sentence(result)


def test_no_odoo_and_no_upstream_download_is_named(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = run_setup(
        PYTHON=str(venv / "bin" / "python"),
        ODOO_SOURCE="",
        ODOO_HOME=str(tmp_path / "home"),
        ODOO_UPSTREAM_ARCHIVE="https://127.0.0.1:1/odoo-19.0.tar.gz",
    )
    assert result.returncode != 0
    sentence = last_sentence(result)
    assert "could not be downloaded" in sentence
    assert "Set ODOO_SOURCE" in sentence


def test_unreachable_postgres_is_named():
    script = f'source "{ROOT}/scripts/common.sh"; check_postgres'
    result = subprocess.run(
        ["bash", "-c", script],
        env=dict(os.environ, PGHOST="127.0.0.1", PGPORT="1", PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "PostgreSQL cannot be reached" in last_sentence(result)
    assert "PGHOST" in last_sentence(result)
