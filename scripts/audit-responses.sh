#!/usr/bin/env bash
# Searches every response body the test suite and the fuzzer received (collected through
# RESPONSE_AUDIT_DIR) for secrets, password hashes and internal error text. Called by
# scripts/test.sh after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

dir="${1:?usage: audit-responses.sh DIR}"
files=$(find "$dir" -name 'responses-*.log' 2>/dev/null | wc -l)
[ "$files" -gt 0 ] || die "no responses were collected in $dir"
count=$(cat "$dir"/responses-*.log | grep -c -E '^(GET|POST|PUT|DELETE|PATCH|OPTIONS|HEAD) ' || true)
[ "$count" -gt 1000 ] || die "only $count responses were collected in $dir; the audit would mean nothing"

# What must never reach a client: hashes, the suite's secrets and passwords, and the words of
# internal errors (Rust panics and paths, diesel and PostgreSQL messages, backtraces).
patterns=(
    '\$argon2'
    'test-secret-test-secret' 'fuzz-secret-fuzz-secret' 'browser-secret-'
    'correct horse battery' 'fuzz admin password' 'fuzz waiter password' 'browser waiter password'
    'panicked at' 'stack backtrace' 'RUST_BACKTRACE' '\.rs:[0-9]+'
    'SQLSTATE' 'duplicate key value' 'violates (check|foreign key|unique|not-null)' 'syntax error at or near'
    'relation "' 'DatabaseError' 'diesel::' 'r2d2' 'ConnectionManager' 'tokio::' 'actix_'
)
found=0
for pattern in "${patterns[@]}"; do
    if hits=$(grep -h -E -- "$pattern" "$dir"/responses-*.log | head -3) && [ -n "$hits" ]; then
        printf 'a response contains %s:\n%s\n' "$pattern" "$hits" >&2
        found=1
    fi
done
[ $found -eq 0 ] || die "responses leak secrets or internals (see above)"
say "searched $count responses: no secret, hash or internal error text"
