"""The pure packages stay pure: no Odoo import in graph/, engine/ or the emulator;
and what a sync round runs in worker threads (sync/exchange.py, and the step runner)
holds no ``env`` by construction: those modules import nothing of Odoo, nor any
module of the sync package that does."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_FOLDERS = [
    ROOT / "room_exchange_sync" / "graph",
    ROOT / "room_exchange_sync" / "engine",
    ROOT / "tests" / "emulator",
]


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
            elif node.level > 1:
                yield "." * node.level + (node.module or "")


PURE_FILES = [p for folder in PURE_FOLDERS for p in sorted(folder.rglob("*.py"))]


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_odoo_and_no_parent_imports(path):
    for module in imported_modules(path):
        assert not module.split(".")[0] == "odoo", f"{path} imports {module}"
        assert not module.startswith(".."), f"{path} reaches outside its package"


def test_the_check_sees_the_packages():
    folders = {path.parent.name for path in PURE_FILES}
    assert {"graph", "emulator"} <= folders


SYNC = ROOT / "room_exchange_sync" / "sync"
# The sync package's modules that run in worker threads, and what they may import
# relatively (the pure packages, and each other).
WORKER_MODULES = [
    SYNC / "exchange.py",
    SYNC / "read_ahead.py",
    SYNC / "steps.py",
    SYNC / "seams.py",
]
WORKER_IMPORTS = {"..graph", "..engine", ".seams", ".steps", ".exchange"}


def worker_import_problems(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = (
                [base]
                if node.module or not node.level
                else [base + alias.name for alias in node.names]
            )
        else:
            continue
        for name in names:
            if name.split(".")[0] == "odoo":
                yield f"imports {name}"
            elif name.startswith(".") and name not in WORKER_IMPORTS:
                yield f"imports {name}, which may hold an env"


@pytest.mark.parametrize("path", WORKER_MODULES, ids=lambda p: p.name)
def test_what_runs_in_worker_threads_holds_no_env(path):
    assert list(worker_import_problems(path)) == []


def test_the_worker_check_sees_odoo_and_the_shell(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from odoo import fields\nfrom .round import SyncRound\nfrom . import local\n"
    )
    assert len(list(worker_import_problems(bad))) == 3
