"""The pure packages stay pure: no Odoo import in graph/, engine/ or the emulator."""

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
