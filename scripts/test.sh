#!/usr/bin/env bash
# Runs userd's whole test suite: unit, property, repository-contract (SQLite and
# PostgreSQL), HTTP-route and end-to-end tests.
#
# PostgreSQL tests use the server at USERD_TEST_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/postgres) and create a database per test.
#   USERD_TEST_POSTGRES=require  never skip them (CI): an unreachable server fails the run
#   USERD_TEST_POSTGRES=skip     do not run them
#   (unset)                      run them when the server answers, else skip them loudly
# The e-mail/SMS delivery tests need Python's aiosmtpd; USERD_TEST_NOTIFY=require|skip
# likewise (unset: run them when it is installed, else skip them loudly).
# Extra arguments go to the test runner (cargo nextest run, or cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

url="${USERD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
mode="${USERD_TEST_POSTGRES:-auto}"

postgres_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -d "$url" -t 3
        return
    fi
    # Without the client tools, at least check that something listens there.
    local hostport host port
    hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
    host="${hostport%%:*}"; port="${hostport##*:}"
    [ "$port" = "$hostport" ] && port=5432
    timeout 3 bash -c ">/dev/tcp/${host:-127.0.0.1}/${port}" 2>/dev/null
}

banner() {
    printf '\n%s\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    printf '!!! %s\n' "$@" >&2
    printf '%s\n\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}

case "$mode" in
    skip)
        banner "PostgreSQL tests were NOT run (USERD_TEST_POSTGRES=skip)."
        ;;
    require)
        postgres_answers || { echo "PostgreSQL at $url does not answer, and USERD_TEST_POSTGRES=require" >&2; exit 1; }
        echo "PostgreSQL tests run against $url"
        ;;
    *)
        if postgres_answers; then
            echo "PostgreSQL tests run against $url"
            mode=require
        else
            banner "PostgreSQL at $url does not answer:" \
                   "PostgreSQL tests were NOT run. Start PostgreSQL or set USERD_TEST_POSTGRES_URL."
            mode=skip
        fi
        ;;
esac
export USERD_TEST_POSTGRES="$mode"

# The delivery tests need a real SMTP server: Python's aiosmtpd (scripts/notify_sink.py).
notify_mode="${USERD_TEST_NOTIFY:-auto}"
if [ "$notify_mode" = auto ]; then
    if python3 -c "import aiosmtpd" >/dev/null 2>&1; then
        notify_mode=require
    else
        banner "aiosmtpd is missing: the e-mail/SMS delivery tests were NOT run." \
               "pip install -r scripts/requirements-api-test.txt"
        notify_mode=skip
    fi
fi
export USERD_TEST_NOTIFY="$notify_mode"
export USERD_TEST_POSTGRES_URL="$url"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi

# The property-based API test (schemathesis against /openapi.json).
if command -v schemathesis >/dev/null 2>&1; then
    ./scripts/schemathesis.sh
else
    banner "The schemathesis API test was NOT run: pip install -r scripts/requirements-api-test.txt"
fi

# ZITADEL's official Python SDK driving the v2 user lifecycle over Connect.
if python3 -c "import zitadel_client" >/dev/null 2>&1; then
    ./scripts/sdk-test.sh
else
    banner "The ZITADEL Python SDK test was NOT run: pip install -r scripts/requirements-api-test.txt"
fi

if [ "$mode" = skip ]; then
    banner "Reminder: PostgreSQL tests were NOT run."
fi
if [ "$notify_mode" = skip ]; then
    banner "Reminder: the e-mail/SMS delivery tests were NOT run (aiosmtpd is missing)."
fi
