#!/usr/bin/env bash
# Set up a development machine: system packages, Python dependencies, Odoo 19,
# OCA resource_booking and a fresh test database with room_exchange_sync installed.
#
#   ODOO_SOURCE=/path/to/odoo-19.0 (a directory, a .tar.gz/.zip archive or its URL)
#   make setup
#
# Without ODOO_SOURCE, an importable Odoo 19 is kept as it is; otherwise the official
# upstream 19.0 source archive is downloaded.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
    || fail "Odoo 19 needs Python 3.10 or newer; set PYTHON to such an interpreter."

install_system_packages() {
    [ "${SKIP_SYSTEM_PACKAGES:-0}" = 1 ] && return
    local wanted=()
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null || wanted+=(chromium)
    command -v psql >/dev/null || wanted+=(postgresql-client)
    [ ${#wanted[@]} -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        say "setup: please install ${wanted[*]} (browser tests need headless Chromium); continuing."
        return
    fi
    say "setup: installing ${wanted[*]} with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
}

pip_install() {
    "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@"
}

unpack_odoo_source() {
    local source=$1 archive target
    target="$ODOO_HOME/odoo-19.0"
    case "$source" in
        http://*|https://*)
            archive="$ODOO_HOME/odoo-19.0-source.${source##*.}"
            mkdir -p "$ODOO_HOME"
            say "setup: downloading $source"
            curl -fsSL --retry 2 -o "$archive" "$source" >&2 || return 1
            ;;
        *) archive=$source ;;
    esac
    rm -rf "$target.tmp" && mkdir -p "$target.tmp"
    case "$archive" in
        *.zip) "$PYTHON" -m zipfile -e "$archive" "$target.tmp" ;;
        *) tar -xf "$archive" -C "$target.tmp" ;;
    esac || fail "Could not unpack the Odoo archive $archive."
    local release
    release=$(find "$target.tmp" -maxdepth 3 -path '*/odoo/release.py' | head -n1)
    [ -n "$release" ] || fail "$source holds no Odoo source (no odoo/release.py inside)."
    rm -rf "$target" && mv "$(dirname "$(dirname "$release")")" "$target" && rm -rf "$target.tmp"
    echo "$target"
}

install_odoo() {
    local source="${ODOO_SOURCE:-}" src
    if [ -z "$source" ] && [ "$(odoo_version)" = "19.0" ]; then
        say "setup: Odoo 19 is already importable by $PYTHON; keeping it"
        return
    fi
    if [ -z "$source" ]; then
        src=$(unpack_odoo_source "$ODOO_UPSTREAM_ARCHIVE") || fail "Odoo 19 is not installed and the upstream source could not be downloaded from $ODOO_UPSTREAM_ARCHIVE. Set ODOO_SOURCE to an Odoo 19 source directory or archive, e.g. ODOO_SOURCE=~/src/odoo-19.0 make setup."
    elif [ -d "$source" ]; then
        src=$(cd "$source" && pwd)
    elif [ -f "$source" ] || [[ "$source" == http*://* ]]; then
        src=$(unpack_odoo_source "$source") || fail "Could not download ODOO_SOURCE=$source."
    else
        fail "ODOO_SOURCE=$source is neither a directory, an archive nor a URL."
    fi
    [ -f "$src/odoo/release.py" ] || fail "ODOO_SOURCE=$source is not an Odoo source tree (no odoo/release.py)."
    local version
    version=$(cd "$src/odoo" && "$PYTHON" -c 'exec(open("release.py").read()); print("%s.%s" % version_info[:2])')
    [ "$version" = "19.0" ] || fail "ODOO_SOURCE=$source is Odoo $version; room_exchange_sync needs Odoo 19.0."
    say "setup: installing Odoo 19 from $src"
    pip_install packaging
    "$PYTHON" scripts/odoo_requirements.py "$src" >"$ODOO_HOME.requirements.txt" 2>/dev/null \
        || { mkdir -p "$(dirname "$ODOO_HOME")"; "$PYTHON" scripts/odoo_requirements.py "$src" >"$ODOO_HOME.requirements.txt"; }
    pip_install -r "$ODOO_HOME.requirements.txt"
    pip_install --no-deps -e "$src"
}

install_system_packages
mkdir -p "$(dirname "$ODOO_HOME")"
install_odoo
require_odoo
say "setup: installing Python dependencies"
pip_install -r requirements.txt -r requirements-test.txt "odoo-addon-resource_booking==19.0.*" \
    "odoo-addon-queue_job==19.0.*"
check_postgres
drop_database() {
    "$PYTHON" -c "import psycopg2; c = psycopg2.connect(dbname='postgres'); c.autocommit = True; c.cursor().execute('DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)')"
}
say "setup: creating the test database $ODOO_TEST_DB"
drop_database "$ODOO_TEST_DB"
odoo_cli -d "$ODOO_TEST_DB" -i room_exchange_sync --without-demo=1 --stop-after-init \
    || fail "Installing room_exchange_sync into $ODOO_TEST_DB failed (log above)."
# OCA queue_job brings room_exchange_sync_queue (auto_install) in a database of its own.
say "setup: creating the test database $ODOO_QUEUE_TEST_DB (with queue_job)"
drop_database "$ODOO_QUEUE_TEST_DB"
odoo_cli -d "$ODOO_QUEUE_TEST_DB" -i room_exchange_sync,queue_job --without-demo=1 \
    --stop-after-init \
    || fail "Installing room_exchange_sync and queue_job into $ODOO_QUEUE_TEST_DB failed (log above)."
"$PYTHON" -c "
import psycopg2
cr = psycopg2.connect(dbname='$ODOO_QUEUE_TEST_DB').cursor()
cr.execute(\"SELECT state FROM ir_module_module WHERE name = 'room_exchange_sync_queue'\")
assert cr.fetchone() == ('installed',)
" || fail "room_exchange_sync_queue was not installed with queue_job in $ODOO_QUEUE_TEST_DB."
say "setup: done. Run the tests with: make test"
