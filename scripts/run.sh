#!/usr/bin/env bash
# Starts Comanda. With no configuration it runs its own PostgreSQL under .data/ (installing the
# system packages where missing). Settings come from the environment and .env (see .env.example).
#   scripts/run.sh                 build (release) and serve on http://127.0.0.1:8000
#   scripts/run.sh --debug         a faster build, slower server
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

profile=--release
[ "${1:-}" = "--debug" ] && profile=

ensure_system_packages
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs"
say "building comanda-api and db-admin${profile:+ (release)}"
cargo build $profile --bin comanda-api --bin db-admin
bin=target/$([ -n "$profile" ] && echo release || echo debug)
# First run: the database and the first admin (prints a generated password once).
"$bin/db-admin" init
say "serving; Swagger UI at http://${HOST:-127.0.0.1}:${PORT:-8000}/docs/ (Ctrl-C stops)"
exec "$bin/comanda-api"
