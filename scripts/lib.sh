# Shared by scripts/run.sh and scripts/test.sh. Sourced, not run.

# The Debian packages the build and the local database need.
REQUIRED_PACKAGES="postgresql libpq-dev pkg-config"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The directory of PostgreSQL's server programs, or nothing.
pg_bin_dir() {
    if [ -n "${PG_BIN_DIR:-}" ] && [ -x "$PG_BIN_DIR/initdb" ]; then echo "$PG_BIN_DIR"; return; fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
    fi
}

# Installs what is missing, as root; otherwise says exactly what to run. Arguments name more
# programs to have, as command:package pairs (e.g. redis-server:redis-server), or Python modules
# as py:module:package (py:ensurepip:python3-venv).
ensure_system_packages() {
    local missing="" pair
    for pair in "$@"; do
        case "$pair" in
            # py:MODULE:PACKAGE, a Python module the package brings (ensurepip: python3-venv)
            py:*)
                pair="${pair#py:}"
                python3 -c "import ${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
                ;;
            *) command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}" ;;
        esac
    done
    [ -n "$(pg_bin_dir)" ] || missing="$missing postgresql"
    if ! pkg-config --exists libpq 2>/dev/null; then
        command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
        missing="$missing libpq-dev"
    fi
    [ -z "$missing" ] && return 0
    missing="$(echo "$missing" | xargs)"
    if [ "$(id -u)" -eq 0 ]; then
        say "installing the system packages this needs: $missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null || die "apt-get update failed"
        apt-get install -y -qq $missing >/dev/null || die "apt-get install $missing failed"
    else
        die "these system packages are missing: $missing
       installing them needs root; run:
           sudo apt-get update && sudo apt-get install -y $missing
       and then this script again."
    fi
}

ensure_rust_components() {
    command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs"
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || die "cargo fmt and cargo clippy are needed (rustup component add rustfmt clippy)"
        say "adding the rustfmt and clippy components"
        rustup component add rustfmt clippy >/dev/null || die "rustup component add rustfmt clippy failed"
    fi
}

# The debug binaries the test steps run, with the response audit (RESPONSE_AUDIT_DIR) built in.
build_test_binaries() {
    cargo build --quiet --bin comanda-api --bin db-admin --features api/response-audit
}

# Starts the debug comanda-api (its settings from the environment) on a port it picks itself
# (PORT=0), logging JSON lines to $1; once it is ready, sets `server` (its pid) and `base` (its
# URL, read from its "listening" line).
start_test_server() {
    local log="$1" target="${CARGO_TARGET_DIR:-target}"
    PORT=0 LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn},api::startup=info" "$target/debug/comanda-api" >"$log" 2>&1 &
    server=$!
    base=""
    for _ in $(seq 1 240); do
        [ -n "$base" ] || base="$( (grep -o '"address":"[^"]*"' "$log" 2>/dev/null || true) | head -n1 | cut -d'"' -f4)"
        if [ -n "$base" ] && curl -fsS "$base/health/ready" >/dev/null 2>&1; then return 0; fi
        kill -0 "$server" 2>/dev/null || die "the server stopped; see $log"
        sleep 0.5
    done
    die "the server did not become ready; see $log"
}

# Stops the local cluster of $1 (a DATA_DIR-like folder) if one runs, wherever it lives: db-admin
# knows where (as root, a folder the postgres user cannot reach has its cluster elsewhere).
stop_cluster() {
    local admin="${CARGO_TARGET_DIR:-target}/debug/db-admin"
    [ -x "$admin" ] || return 0
    "$admin" local-postgres stop "$1" >/dev/null 2>&1 || true
}

# Stops and deletes the local cluster of $1, wherever it lives.
remove_cluster() {
    local admin="${CARGO_TARGET_DIR:-target}/debug/db-admin"
    [ -x "$admin" ] || return 0
    "$admin" local-postgres remove "$1" >/dev/null 2>&1 || true
}
