#!/usr/bin/env bash
# Run the whole test suite: the pure and emulator suites, then the addon's Odoo suite on
# the real PostgreSQL test database made by 'make setup'. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

require_odoo
check_postgres
"$PYTHON" -c "import psycopg2; psycopg2.connect(dbname='$ODOO_TEST_DB').close()" 2>/dev/null \
    || fail "The test database $ODOO_TEST_DB does not exist: run 'make setup' first."

say "test: pure, emulator and install suites"
"$PYTHON" -m pytest tests "$@"

say "test: updating room_exchange_sync in $ODOO_TEST_DB"
odoo_cli -d "$ODOO_TEST_DB" -u room_exchange_sync --stop-after-init \
    || fail "Updating room_exchange_sync in $ODOO_TEST_DB failed (log above)."

say "test: Odoo suite on $ODOO_TEST_DB"
"$PYTHON" -m pytest -p pytest_odoo --odoo-database="$ODOO_TEST_DB" \
    --odoo-addons-path="$(odoo_addons_path)" --odoo-http room_exchange_sync/tests "$@"

"$PYTHON" -c "import psycopg2; psycopg2.connect(dbname='$ODOO_QUEUE_TEST_DB').close()" 2>/dev/null \
    || fail "The test database $ODOO_QUEUE_TEST_DB does not exist: run 'make setup' first."
say "test: updating room_exchange_sync and room_exchange_sync_queue in $ODOO_QUEUE_TEST_DB"
odoo_cli -d "$ODOO_QUEUE_TEST_DB" -u room_exchange_sync,room_exchange_sync_queue \
    --stop-after-init \
    || fail "Updating the addons in $ODOO_QUEUE_TEST_DB failed (log above)."

say "test: queue_job suite on $ODOO_QUEUE_TEST_DB"
"$PYTHON" -m pytest -p pytest_odoo --odoo-database="$ODOO_QUEUE_TEST_DB" \
    --odoo-addons-path="$(odoo_addons_path)" --odoo-http room_exchange_sync_queue/tests "$@"
