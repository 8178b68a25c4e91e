#!/usr/bin/env bash
# Checks that crates/infrastructure/src/schema.rs is what `diesel print-schema` (diesel.toml)
# makes of the migrations, on a fresh database of the test server (TEST_DATABASE_URL, or the
# test cluster under target/test-pg, which `cargo test` leaves running). Installs diesel_cli
# (PostgreSQL only) when it is missing. With --write, rewrites the file instead.
#   scripts/check-schema.sh [--write]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

diesel_version="2.3.4"
if ! diesel --version 2>/dev/null | grep -q "$diesel_version"; then
    say "installing diesel_cli $diesel_version (PostgreSQL only) with cargo install"
    cargo install --quiet --locked diesel_cli --version "$diesel_version" --no-default-features --features postgres ||
        die "cargo install diesel_cli failed"
fi
target="${CARGO_TARGET_DIR:-target}"
admin="$target/debug/db-admin"
[ -x "$admin" ] || cargo build --quiet --bin db-admin
server="${TEST_DATABASE_URL:-$("$admin" local-postgres url "$target/test-pg")}"
url="${server%/*}/comanda_schema_check"
DATABASE_URL="$url" "$admin" init >/dev/null
DATABASE_URL="$url" "$admin" reset --yes >/dev/null
generated="$target/schema-check.rs"
diesel print-schema --database-url "$url" >"$generated"
if [ "${1:-}" = "--write" ]; then
    cp "$generated" crates/infrastructure/src/schema.rs
    say "wrote crates/infrastructure/src/schema.rs"
elif ! diff -u crates/infrastructure/src/schema.rs "$generated"; then
    die "crates/infrastructure/src/schema.rs is not what the migrations make; run scripts/check-schema.sh --write"
fi
