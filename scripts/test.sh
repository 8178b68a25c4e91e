#!/usr/bin/env bash
# Runs everything CI runs: formatting, clippy with warnings denied, the whole test suite against
# a real PostgreSQL (a throwaway cluster under target/test-pg unless TEST_DATABASE_URL names a
# server), and schemathesis fuzzing of the API from its OpenAPI document; installs the system
# packages where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_system_packages
ensure_rust_components

target="${CARGO_TARGET_DIR:-target}"
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    trap 'stop_cluster "$target/test-pg"' EXIT
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "cargo test --workspace"
cargo test --workspace --quiet
say "fuzzing the API from its OpenAPI document (scripts/fuzz.sh)"
scripts/fuzz.sh
say "all checks passed"
