"""Print the Python requirements of an Odoo 19 source tree, adapted to this interpreter.

Odoo pins its dependencies per Python version. Some of its Python 3.11 pins (cbor2
5.4.2, cryptography 3.4.8 with pyopenssl 21) no longer build or work with current
toolchains, while the pins it lists for Python 3.12 install cleanly on 3.11 too, so on
older interpreters the 3.12 markers are used. psycopg2 becomes psycopg2-binary (no
compiler or libpq headers needed), and the packages that tests and a plain server never
use (python-ldap, gevent, greenlet) are left out.

Usage: python scripts/odoo_requirements.py ODOO_SOURCE_DIR > requirements-odoo.txt
"""

import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

SKIPPED = {"python-ldap", "gevent", "greenlet"}
RENAMED = {"psycopg2": "psycopg2-binary"}


def marker_environment():
    env = default_environment()
    if sys.version_info < (3, 12):
        env.update(python_version="3.12", python_full_version="3.12.0")
    return env


def adapted_requirements(requirements_text):
    env = marker_environment()
    for raw in requirements_text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker and not req.marker.evaluate(env):
            continue
        name = req.name.lower()
        if name in SKIPPED:
            continue
        req.marker = None
        req.name = RENAMED.get(name, req.name)
        yield str(req)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: odoo_requirements.py ODOO_SOURCE_DIR")
    path = Path(argv[1]) / "requirements.txt"
    if not path.is_file():
        sys.exit(f"{path} not found: ODOO_SOURCE must be an Odoo 19 source tree.")
    print("\n".join(adapted_requirements(path.read_text())))


if __name__ == "__main__":
    main(sys.argv)
