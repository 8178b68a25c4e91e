#!/usr/bin/env bash
# Runs everything CI runs: formatting, clippy with warnings denied, the whole test suite against
# a real PostgreSQL (a throwaway cluster under target/test-pg unless TEST_DATABASE_URL names a
# server), and schemathesis fuzzing of the API from its OpenAPI document; installs the system
# packages where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The tests of shared rate limits start their own Redis.
ensure_system_packages redis-server:redis-server localedef:locales
ensure_rust_components

target="${CARGO_TARGET_DIR:-target}"
# Every answer of the suite is kept here and searched for leaks at the end.
export RESPONSE_AUDIT_DIR="$PWD/$target/response-audit"
rm -rf "$RESPONSE_AUDIT_DIR"
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    trap 'stop_cluster "$target/test-pg"' EXIT
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The api crate as production builds it (without the test-only response audit).
cargo clippy --package api --lib --bin comanda-api --quiet -- -D warnings
say "cargo test --workspace"
cargo test --workspace --quiet
say "schema.rs is what the migrations make (scripts/check-schema.sh)"
scripts/check-schema.sh
say "fuzzing the API from its OpenAPI document (scripts/fuzz.sh)"
scripts/fuzz.sh
say "Swagger UI in a real browser (scripts/browser-test.sh)"
scripts/browser-test.sh
say "three replicas behind nginx (scripts/cluster/test.sh)"
scripts/cluster/test.sh
say "searching every response for secrets and internal errors"
scripts/audit-responses.sh "$RESPONSE_AUDIT_DIR"
say "all checks passed"
