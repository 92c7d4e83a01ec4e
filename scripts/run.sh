#!/usr/bin/env bash
# Start Odoo with room_exchange_sync installed on a local database (created on first use).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
require_odoo
check_postgres
PORT=${ODOO_PORT:-8069}
if ! "$PYTHON" -c "import psycopg2; psycopg2.connect(dbname='$ODOO_RUN_DB').close()" 2>/dev/null; then
    say "run: creating database $ODOO_RUN_DB with room_exchange_sync and demo data"
    odoo_cli -d "$ODOO_RUN_DB" -i room_exchange_sync --with-demo --stop-after-init \
        || fail "Creating $ODOO_RUN_DB failed (log above)."
fi
# localhost rather than 127.0.0.1: Entra ID accepts plain-http redirect URIs only for
# localhost, and the emulator's demo app registers http://localhost:8069/...
say "run: Odoo on http://localhost:$PORT (database $ODOO_RUN_DB, login admin, password admin)"
exec "$PYTHON" -m odoo --addons-path="$(odoo_addons_path)" -d "$ODOO_RUN_DB" \
    --db-filter="^$ODOO_RUN_DB\$" --http-interface=127.0.0.1 --http-port="$PORT" \
    -u room_exchange_sync
