# The project's commands. See README.md.
.PHONY: setup test run lint bench bench-directory load demo screenshots

# The interpreter with Odoo 19 (as in scripts/common.sh).
PYTHON ?= python3

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

run:
	bash scripts/run.sh

lint:
	bash scripts/lint.sh

bench:
	$(PYTHON) scripts/bench.py

bench-directory:
	$(PYTHON) scripts/bench_directory.py

demo:
	$(PYTHON) scripts/demo.py

screenshots:
	$(PYTHON) scripts/screenshots.py --start-demo

load:
	$(PYTHON) scripts/load.py
