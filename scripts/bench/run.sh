#!/usr/bin/env bash
# Comanda's benchmark. The driver is Rust (crates/xtask/src/bench, `cargo xtask bench`), where it
# calls the service's own code; this script only makes sure the system packages are there
# (PostgreSQL with pgbench, libpq, pkg-config, wrk) and hands its arguments over to a release
# build of it.
#
#   scripts/bench/run.sh                          # the full run (1M and 10M order lines, 5 s + 20 s per run)
#   scripts/bench/run.sh --quick                  # a smoke run: tiny seeds, 1 s + 3 s per run
#   scripts/bench/run.sh --only W2,W3 --against main   # two builds side by side, selected workloads
#   scripts/bench/run.sh --help
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. scripts/lib.sh
case " $* " in
    *" -h "* | *" --help "*) ;;
    *) ensure_system_packages wrk:wrk ;;
esac
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs"
# The driver as a release build (`cargo xtask bench` is a debug one): W6's 1000 stream clients
# are its own code and share the cores with the server, so they must cost it little.
exec cargo run --release --quiet --package xtask -- bench "$@"
