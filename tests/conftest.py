"""Top-level test configuration: the pure addon packages, importable without Odoo.

Odoo's model metaclass refuses to load addon code outside ``odoo.addons``, so importing
``room_exchange_sync.graph`` would run the addon's ``__init__`` and fail. The pure
packages are therefore loaded under neutral names (``exchange_graph``,
``exchange_engine``); they only use intra-package relative imports, which keeps this
possible.
"""

import importlib.util
import sys
from pathlib import Path

ADDON = Path(__file__).resolve().parent.parent / "room_exchange_sync"
pytest_plugins = ["tests.emulator.pytest_plugin"]

PURE_PACKAGES = {"exchange_graph": ADDON / "graph", "exchange_engine": ADDON / "engine"}
# Pure modules of the Odoo layer's sync package, loaded on their own.
PURE_MODULES = {"exchange_steps": ADDON / "sync" / "steps.py"}


def load_pure_package(name, folder):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


for _name, _folder in PURE_PACKAGES.items():
    if (_folder / "__init__.py").exists():
        load_pure_package(_name, _folder)

for _name, _path in PURE_MODULES.items():
    if _name not in sys.modules and _path.exists():
        _spec = importlib.util.spec_from_file_location(_name, _path)
        sys.modules[_name] = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(sys.modules[_name])
