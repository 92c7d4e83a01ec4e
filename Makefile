# The project's commands. See README.md.
.PHONY: setup test run lint bench

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

run:
	bash scripts/run.sh

lint:
	bash scripts/lint.sh
