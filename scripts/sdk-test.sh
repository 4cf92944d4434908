#!/usr/bin/env bash
# ZITADEL's official Python SDK (PyPI `zitadel-client`) against the real binary: the v2
# user lifecycle over Connect, on SQLite and, when PostgreSQL answers (or
# USERD_TEST_POSTGRES=require), on PostgreSQL.
#
#   ./scripts/sdk-test.sh
#
# Needs `zitadel-client` (pip install -r scripts/requirements-api-test.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p userd
pg_url="${USERD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
dir="$(mktemp -d)"
pid=""
database=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$database" ] && psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT

# Runs the SDK script against userd on the database at $1.
against() {
    local url="$1" log="$dir/userd-$2.log" rpc=""
    USERD_CONFIG_DIR="$PWD/config" \
    USERD__SERVER__PORT=0 \
    USERD__SERVER__RPC_PORT=0 \
    USERD__DATABASE__URL="$url" \
    USERD__BOOTSTRAP__ADMIN_PAT_PATH="$dir/admin-$2.pat" \
    USERD__LOG__FORMAT=json \
        target/debug/userd >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do
        rpc="$(grep -o '"rpc_address":"[^"]*"' "$log" | head -n1 | cut -d'"' -f4 || true)"
        [ -n "$rpc" ] && [ -s "$dir/admin-$2.pat" ] && break
        sleep 0.1
    done
    [ -n "$rpc" ] || { cat "$log"; echo "userd did not start" >&2; exit 1; }
    echo "== the Python SDK against userd on $2"
    python3 -W ignore scripts/sdk_v2_lifecycle.py "http://$rpc" "$(cat "$dir/admin-$2.pat")"
    kill "$pid" && wait "$pid" || true
    pid=""
}

against "sqlite://$dir/userd.db" sqlite

if [ "${USERD_TEST_POSTGRES:-auto}" != skip ] && pg_isready -q -d "$pg_url" -t 3 2>/dev/null; then
    database="userd_sdk_$$"
    psql -q "$pg_url" -c "CREATE DATABASE $database" >/dev/null
    against "${pg_url%/*}/$database" postgresql
elif [ "${USERD_TEST_POSTGRES:-auto}" = require ]; then
    echo "PostgreSQL at $pg_url does not answer, and USERD_TEST_POSTGRES=require" >&2
    exit 1
else
    echo "!!! The Python SDK test was NOT run on PostgreSQL (it does not answer)." >&2
fi
