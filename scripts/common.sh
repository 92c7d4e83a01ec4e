# Shared settings of the project's scripts (sourced, not run).
# Every setting can be overridden from the environment.
PYTHON=${PYTHON:-python3}
ODOO_TEST_DB=${ODOO_TEST_DB:-room_exchange_sync_test}
# The test database of room_exchange_sync_queue (queue_job installed): the main
# suite keeps its own without queue_job, where the sync runs on the cron.
ODOO_QUEUE_TEST_DB=${ODOO_QUEUE_TEST_DB:-${ODOO_TEST_DB}_queue}
ODOO_RUN_DB=${ODOO_RUN_DB:-room_exchange_sync}
ODOO_HOME=${ODOO_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/room_exchange_sync}
ODOO_UPSTREAM_ARCHIVE=${ODOO_UPSTREAM_ARCHIVE:-https://github.com/odoo/odoo/archive/refs/heads/19.0.tar.gz}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONDONTWRITEBYTECODE=1

say() { printf '%s\n' "$*" >&2; }
fail() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

odoo_version() {
    "$PYTHON" -c 'import odoo.release as r; print("%s.%s" % r.version_info[:2])' 2>/dev/null
}

require_odoo() {
    local version
    version=$(odoo_version) || true
    [ -n "$version" ] || fail "Odoo 19 is not importable by $PYTHON. Run 'make setup' first; it installs Odoo from ODOO_SOURCE (an Odoo 19 source directory or archive), e.g. ODOO_SOURCE=~/src/odoo-19.0 make setup."
    [ "$version" = "19.0" ] || fail "$PYTHON imports Odoo $version, but room_exchange_sync needs Odoo 19.0. Point ODOO_SOURCE at an Odoo 19 source and run 'make setup' again, or set PYTHON to an interpreter that has Odoo 19."
}

# The addons path: Odoo's own community addons (beside the odoo package in a source
# checkout), and this repository for room_exchange_sync. Addons installed from PyPI
# (resource_booking) live in the odoo.addons namespace and need no entry.
odoo_addons_path() {
    "$PYTHON" - "$REPO_ROOT" <<'PY'
import os, sys
import odoo.release  # odoo itself is a namespace package without __file__
source = os.path.dirname(os.path.dirname(os.path.abspath(odoo.release.__file__)))
paths = [os.path.join(source, "addons"), sys.argv[1]]
print(",".join(p for p in paths if os.path.isdir(p)))
PY
}

# Run Odoo with the project's addons path, failing on errors in the log.
odoo_cli() {
    local log status
    log=$(mktemp)
    set +e
    "$PYTHON" -m odoo --addons-path="$(odoo_addons_path)" --http-interface=127.0.0.1 \
        --log-level=warn "$@" >"$log" 2>&1
    status=$?
    set -e
    # Log lines are "date time pid LEVEL database logger: message". Any error fails, and
    # so does a warning logged by the addon or about its models and views.
    if [ $status -ne 0 ] || grep -E \
        -e '^[^ ]+ [^ ]+ [0-9]+ (ERROR|CRITICAL) ' \
        -e '^[^ ]+ [^ ]+ [0-9]+ WARNING [^ ]+ ([^ ]*room_exchange_sync[^ ]*:|[^ ]+: .*room[._]exchange)' \
        "$log" >/dev/null; then
        grep -vE 'Running as user|http-interface|__editable__' "$log" | tail -40 >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

check_postgres() {
    "$PYTHON" - <<'PY' || fail "PostgreSQL cannot be reached. Odoo connects like psql does: through the local socket as the current user, or wherever PGHOST, PGPORT, PGUSER and PGPASSWORD point. Start PostgreSQL, or set those variables, and give that role the right to create databases."
import sys
import psycopg2
try:
    psycopg2.connect(dbname="postgres").close()
except psycopg2.Error as error:
    print(str(error).strip(), file=sys.stderr)
    sys.exit(1)
PY
}
