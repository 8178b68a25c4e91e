#!/usr/bin/env bash
# Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis, in a
# venv under target/), authenticated as an admin and as a waiter: no 5xx, and every response
# conforms to the documented status codes, headers and schemas (problem+json included).
# The server runs with no DATABASE_URL, so it starts its own PostgreSQL under target/fuzz.
# Called by scripts/test.sh; FUZZ_EXAMPLES sets the examples per operation (default 100).
# One worker: CPython 3.11 raises "AST constructor recursion depth mismatch" inside
# schemathesis when two workers parse source at once.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

target="${CARGO_TARGET_DIR:-target}"
work="$target/fuzz"
venv="$target/venv"
examples="${FUZZ_EXAMPLES:-100}"
schemathesis_version="4.32.5"

if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$schemathesis_version"; then
    # A minimal Debian has python3 without venv's ensurepip (the python3-venv package).
    ensure_system_packages python3:python3 py:ensurepip:python3-venv
    say "installing schemathesis $schemathesis_version into $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version" || die "pip install schemathesis failed"
fi

build_test_binaries
# The last run's cluster, wherever it lives (as root it may live outside target/), then its files.
remove_cluster "$work/data"
rm -rf "$work"
mkdir -p "$work"
export DATA_DIR="$work/data" HOST=127.0.0.1 \
    ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 RATE_LIMIT_PER_MINUTE=0 RATE_LIMIT_LOGIN_PER_MINUTE=0 REPORT_ROLLUP_INTERVAL_SECONDS=5 \
    JWT_SECRET="fuzz-secret-fuzz-secret-fuzz-secret-0123456789" \
    ADMIN_EMAIL="admin@fuzz.example" ADMIN_PASSWORD="fuzz admin password" LOG_FORMAT=json RUST_LOG=warn
unset DATABASE_URL
"$target/debug/db-admin" init >/dev/null
FUZZ_WAITER_ID="$(NEW_USER_PASSWORD="fuzz waiter password" "$target/debug/db-admin" create-user --email waiter@fuzz.example --name "Fuzz Waiter" |
    sed -n 's/.*(\(.*\))$/\1/p')"
export FUZZ_WAITER_ID

server=""
trap '[ -z "$server" ] || { kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }' EXIT
# Kitchen streams never end by themselves: each one the fuzzer opens ends after a second.
KITCHEN_STREAM_MAX_SECONDS=1 start_test_server "$work/server.log"

token() {
    curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
admin_token="$(token admin@fuzz.example "fuzz admin password")"
waiter_token="$(token waiter@fuzz.example "fuzz waiter password")"
FUZZ_ORDER_ID="$(curl -fsS -X POST "$base/api/v1/orders" -H "authorization: Bearer $waiter_token" -H 'content-type: application/json' \
    -d '{"customer_name":"Mesa fuzz","items":[{"product_name":"Pan","unit_price":"1000.00","quantity":10000}]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
export FUZZ_ORDER_ID
FUZZ_LOCATION_ID="$(curl -fsS "$base/api/v1/locations" -H "authorization: Bearer $admin_token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["items"][-1]["id"])')"
export FUZZ_LOCATION_ID
FUZZ_CATEGORY_ID="$(curl -fsS -X POST "$base/api/v1/menu/categories" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' -d '{"name":"Fuzz"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
FUZZ_MENU_ITEM_ID="$(curl -fsS -X POST "$base/api/v1/menu/items" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' -d "{\"name\":\"Fuzz item\",\"category_id\":\"$FUZZ_CATEGORY_ID\",\"price\":\"2.50\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
export FUZZ_CATEGORY_ID FUZZ_MENU_ITEM_ID
# A kitchen ticket: an order placed with "send" (the only ticket, so the queue's first).
curl -fsS -o /dev/null -X POST "$base/api/v1/orders" -H "authorization: Bearer $waiter_token" -H 'content-type: application/json' \
    -d '{"customer_name":"Mesa cocina","items":[{"product_name":"Sopa","unit_price":"4.00","quantity":1}],"send":true}'
FUZZ_TICKET_ID="$(curl -fsS "$base/api/v1/kitchen/tickets?status=open&limit=1" -H "authorization: Bearer $waiter_token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["items"][0]["id"])')"
export FUZZ_TICKET_ID

status=0
for who in admin waiter; do
    tok="${who}_token"
    say "schemathesis as the $who ($examples examples per operation)"
    "$venv/bin/st" --config-file scripts/fuzz/schemathesis.toml run "$base/api-docs/openapi.json" \
        --checks all --max-examples "$examples" --workers 1 --no-color \
        -H "Authorization: Bearer ${!tok}" \
        --report junit --report-dir "$work/report-$who" \
        >"$work/schemathesis-$who.log" 2>&1 || status=1
    tail -n 25 "$work/schemathesis-$who.log"
    # The admin's run may have moved the waiter to other locations (or to none): back to the
    # first, for the waiter's run.
    curl -fsS -o /dev/null -X PUT "$base/api/v1/users/$FUZZ_WAITER_ID/locations" -H "authorization: Bearer $admin_token" \
        -H 'content-type: application/json' -d "{\"location_ids\":[\"$FUZZ_LOCATION_ID\"]}"
done
# Errors in the server's log, except the HTTP layer's note that a client sent a malformed
# request head (answered 400 by the framework before any of our code runs).
errors="$(grep '"level":"ERROR"' "$work/server.log" | grep -v '"message":"stream error: request parse error' || true)"
if [ -n "$errors" ]; then
    say "the server logged errors during fuzzing:"
    echo "$errors" | head -20
    status=1
fi
[ $status -eq 0 ] || die "fuzzing found problems; the logs are in $work"
say "fuzzing passed"
