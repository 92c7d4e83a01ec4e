#!/usr/bin/env bash
# The linters CI runs: ruff (lint and format), pylint-odoo with OCA's mandatory checks
# and the OCA module checks (manifest, XML, CSV) of odoo-pre-commit-hooks.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
"$PYTHON" -m pylint --rcfile=.pylintrc-mandatory room_exchange_sync room_exchange_sync_queue
oca-checks-odoo-module room_exchange_sync room_exchange_sync_queue
