#!/usr/bin/env bash
# Comanda's benchmark: one command that prepares two seeded databases in a throwaway PostgreSQL
# cluster of its own, starts the release build against each, runs the workloads with wrk and the
# SQL baselines with pgbench, and prints one table. Loopback only; every run has a fixed
# duration. See scripts/bench/README.md.
#
#   scripts/bench/run.sh            # the full run (1M and 10M order lines, 5 s + 20 s per run)
#   scripts/bench/run.sh --quick    # a smoke run: tiny seeds, 1 s + 3 s per run
#   scripts/bench/run.sh --help
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LUA_DIR="$REPO/scripts/bench/lua"
BENCH_ROOT="$REPO/target/bench"

usage() {
    cat <<'EOF'
usage: scripts/bench/run.sh [options]

  --quick               smoke run: 20k/60k lines, warm-up 1 s, runs of 3 s (not a measurement)
  --lines-small N       order lines of the small database (default 1000000)
  --lines-large N       order lines of the large database (default 10000000)
  --duration S          seconds measured per workload (default 20)
  --warmup S            seconds of warm-up before each measured run (default 5)
  --pool N              DATABASE_POOL_SIZE of the service = pgbench clients (default 16)
  --conns-high N        the "thousand waiters" concurrency of W2 (default 1000)
  --conns-low N         the low concurrency of W2 (default: the pool size)
  --timeout S           wrk's request timeout in seconds (default 2; wrk's own default)
  --days D              seeded days, ending at seeding time (default 365)
  --waiters W           seeded waiters (default 50); all log in, tokens rotate per thread
  --products P          seeded menu size (default 300)
  --pg-option K=V       extra postgresql.conf setting for the bench cluster (repeatable)
  --server-env K=V      extra environment variable for comanda-api (repeatable)
  --skip-build          use the existing target/release binaries
  --reseed              drop and seed the databases again even if they match
  -h, --help            this text

Everything raw goes to target/bench/<timestamp>/, the table to its summary.md. The cluster lives
in target/bench/pg-<major>/ and keeps its seeded databases for the next run (they are reused
when their seeded line count matches).
EOF
}

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------
# Options

QUICK=0 SKIP_BUILD=0 RESEED=0
LINES_SMALL="" LINES_LARGE="" DURATION="" WARMUP="" POOL=16 CONNS_HIGH=1000 CONNS_LOW=""
WRK_TIMEOUT=2 DAYS=365 WAITERS=50 PRODUCTS=300
PG_OPTIONS=() SERVER_ENV=()
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
num_arg() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "${3:-1}" ] || die "$1 must be a whole number >= ${3:-1}, not '$2'"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --lines-small) need_arg "$@"; num_arg "$1" "$2" 100; LINES_SMALL="$2"; shift ;;
        --lines-large) need_arg "$@"; num_arg "$1" "$2" 100; LINES_LARGE="$2"; shift ;;
        --duration) need_arg "$@"; num_arg "$1" "$2" 1; DURATION="$2"; shift ;;
        --warmup) need_arg "$@"; num_arg "$1" "$2" 0; WARMUP="$2"; shift ;;
        --pool) need_arg "$@"; num_arg "$1" "$2" 1; POOL="$2"; shift ;;
        --conns-high) need_arg "$@"; num_arg "$1" "$2" 2; CONNS_HIGH="$2"; shift ;;
        --conns-low) need_arg "$@"; num_arg "$1" "$2" 1; CONNS_LOW="$2"; shift ;;
        --timeout) need_arg "$@"; num_arg "$1" "$2" 1; WRK_TIMEOUT="$2"; shift ;;
        --days) need_arg "$@"; num_arg "$1" "$2" 1; DAYS="$2"; shift ;;
        --waiters) need_arg "$@"; num_arg "$1" "$2" 1; WAITERS="$2"; shift ;;
        --products) need_arg "$@"; num_arg "$1" "$2" 20; PRODUCTS="$2"; shift ;;
        --pg-option) need_arg "$@"; [[ "$2" == *=* ]] || die "--pg-option takes KEY=VALUE"; PG_OPTIONS+=("$2"); shift ;;
        --server-env) need_arg "$@"; [[ "$2" == *=* ]] || die "--server-env takes KEY=VALUE"; SERVER_ENV+=("$2"); shift ;;
        --skip-build) SKIP_BUILD=1 ;;
        --reseed) RESEED=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    : "${LINES_SMALL:=20000}" "${LINES_LARGE:=60000}" "${DURATION:=3}" "${WARMUP:=1}"
    FSYNC_SECS=1
else
    : "${LINES_SMALL:=1000000}" "${LINES_LARGE:=10000000}" "${DURATION:=20}" "${WARMUP:=5}"
    FSYNC_SECS=2
fi
: "${CONNS_LOW:=$POOL}"
[ "$LINES_LARGE" -gt "$LINES_SMALL" ] || die "--lines-large must be more than --lines-small"

# Fixed parameters of the workloads.
CONNS_HEALTH=64       # W0
CONNS_LOGIN=16        # W1 (well below HASH_QUEUE + HASH_WORKERS: no 503 by design)
CONNS_RATE=4          # W1b: 4 connections ...
RATE_DELAY_MS=20      # ... each waiting 20 ms after a response: about 190 requests/s
CONNS_REPORT=1        # W3: one client, so p50 is the service time, not queueing
CONNS_MIX=64          # W4
MIX_LINES=4           # W4's orders
LINES_SET=(1 5 20)    # W2 and the baselines
SEED_PASSWORD="seed-password"
ADMIN_EMAIL="admin@bench.comanda.local"
ADMIN_PASSWORD="bench-admin-password"
JWT_SECRET="comanda-bench-fixed-jwt-secret-0123456789abcdef"
LINES_PER_ORDER="3.6"  # db-admin seed's mean (1 to 8 lines, weighted)

# ------------------------------------------------------------------------------------------------
# Helpers

is_root() { [ "$(id -u)" -eq 0 ]; }
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

human() { # 1000000 -> 1m, 20000 -> 20k, 1500000 -> 1500k
    local n=$1
    if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))m"
    elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}
label() { human "$1" | tr 'mk' 'MK'; }

# A loopback port nobody listens on and no socket uses, below the kernel's ephemeral range
# (an outgoing connection's local port there would make the bind fail).
free_port() {
    local lo=10000 hi=32767 eph p i
    eph="$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    [ "$eph" -gt 12000 ] && hi=$((eph - 1))
    for i in $(seq 1 200); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        if command -v ss >/dev/null 2>&1 && ss -Htan 2>/dev/null | awk '{ print $4 }' | grep -q ":$p\$"; then continue; fi
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

pg_bin_dir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && [ -x "$dir/pgbench" ]; then
            echo "$dir"; return 0
        fi
    done
    return 1
}

# psql against the bench cluster (TCP, trust authentication, superuser postgres).
q() { local db=$1; shift; PGTZ=UTC "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$db" "$@"; }

fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { if (v == "" || v == "-") print "-"; else printf "%.*f", d, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.3f", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }

# ------------------------------------------------------------------------------------------------
# Cleanup: only what this script started.

SERVER_PID="" STORM_PID="" CLUSTER_UP=0 WORK_TMP="" WORK_COPY=0
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            warn "comanda-api (pid $SERVER_PID) did not stop within 15 s of SIGTERM; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
stop_cluster() {
    [ "$CLUSTER_UP" = 1 ] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 || warn "could not stop the bench cluster in $PGDATA"
    CLUSTER_UP=0
}
cleanup() {
    local rc=$?
    set +e
    if [ -n "$STORM_PID" ] && kill -0 "$STORM_PID" 2>/dev/null; then kill -TERM "$STORM_PID" 2>/dev/null; wait "$STORM_PID" 2>/dev/null; fi
    stop_server
    if [ "$WORK_COPY" = 1 ] && [ "$CLUSTER_UP" = 1 ]; then
        q postgres -c "DROP DATABASE IF EXISTS $DB_WORK WITH (FORCE)" >/dev/null 2>&1 || warn "could not drop $DB_WORK"
    fi
    stop_cluster
    [ -n "$WORK_TMP" ] && rm -rf "$WORK_TMP"
    if [ "$rc" -ne 0 ]; then
        printf 'error: the benchmark stopped (exit %s); the server and the bench cluster are stopped. Raw output: %s\n' \
            "$rc" "${RUN:-none}" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------------------------
# Tools

for tool in curl awk sed sort flock; do command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"; done
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs"
if ! command -v wrk >/dev/null 2>&1; then
    if is_root; then
        say "installing wrk (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; } \
            || die "apt-get install wrk failed"
    else
        die "wrk is missing; run: sudo apt-get update && sudo apt-get install -y wrk"
    fi
fi
PGBIN="$(pg_bin_dir)" || die "PostgreSQL's server programs are missing (/usr/lib/postgresql/*/bin); run: sudo apt-get install -y postgresql"
for tool in psql pg_test_fsync; do [ -x "$PGBIN/$tool" ] || die "$PGBIN/$tool is missing"; done
if is_root; then id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (PostgreSQL refuses to run as root)"; fi
PG_MAJOR="$("$PGBIN/postgres" --version | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p')"

# 1000 connections need more than the usual 1024 descriptors (wrk and the server inherit this).
want_fds=$((CONNS_HIGH * 2 + 512))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$want_fds" ] \
        || warn "open files limit is $(ulimit -n), below the $want_fds that $CONNS_HIGH connections need"
fi

mkdir -p "$BENCH_ROOT"
exec 9>"$BENCH_ROOT/.lock"
flock -n 9 || die "another scripts/bench/run.sh is running (lock $BENCH_ROOT/.lock)"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RUN="$BENCH_ROOT/$STAMP"
RAW="$RUN/raw"
mkdir -p "$RAW"
WORK_TMP="$(mktemp -d /tmp/comanda-bench.XXXXXX)" # the binaries' working directory: no .env
chmod 755 "$WORK_TMP"
exec > >(tee -a "$RUN/run.log") 2>&1
say "raw output in $RUN"
[ "$QUICK" = 1 ] && say "quick mode: a smoke run of the tooling, NOT a measurement"
[ -f "$REPO/.env" ] && say "note: $REPO/.env is ignored; the binaries run in $WORK_TMP with an explicit environment"

# ------------------------------------------------------------------------------------------------
# Build

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
API_BIN="$TARGET_DIR/release/comanda-api"
ADMIN_BIN="$TARGET_DIR/release/db-admin"
if [ "$SKIP_BUILD" = 0 ]; then
    say "building the release binaries (cargo build --release --bin comanda-api --bin db-admin --example hash_time)"
    (cd "$REPO" && cargo build --release --bin comanda-api --bin db-admin --example hash_time) >"$RAW/build.log" 2>&1 \
        || { tail -n 30 "$RAW/build.log" >&2; die "the release build failed (full log: $RAW/build.log)"; }
fi
HASH_BIN="$TARGET_DIR/release/examples/hash_time"
[ -x "$API_BIN" ] && [ -x "$ADMIN_BIN" ] && [ -x "$HASH_BIN" ] \
    || die "missing $API_BIN, $ADMIN_BIN or $HASH_BIN (build them, or drop --skip-build)"
# db-admin is still growing: use what this build has.
HAS_ROLLUP=0 SEED_EXTRA=()
ADMIN_HELP="$("$ADMIN_BIN" --help 2>&1 || true)"
SEED_HELP="$("$ADMIN_BIN" seed --help 2>&1 || true)"
if grep -qE '^ +rollup' <<<"$ADMIN_HELP"; then HAS_ROLLUP=1; fi
if grep -q -- '--skip-fk-checks' <<<"$SEED_HELP"; then SEED_EXTRA+=(--skip-fk-checks); fi

# The binaries run with exactly this environment (the defaults of every other setting apply,
# e.g. Argon2id m=19456 KiB t=2 p=1, HTTP and hash workers = cores).
base_env() {
    printf '%s\n' "PATH=$PATH" "HOME=${HOME:-/root}" "LOG_FORMAT=json" "RUST_LOG=warn" \
        "ADMIN_EMAIL=$ADMIN_EMAIL" "ADMIN_PASSWORD=$ADMIN_PASSWORD"
}
db_admin() { # DB args...
    local db=$1; shift
    local envs; mapfile -t envs < <(base_env)
    (cd "$WORK_TMP" && env -i "${envs[@]}" "DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/$db" "$ADMIN_BIN" "$@")
}

# ------------------------------------------------------------------------------------------------
# The bench cluster: initdb once into target/bench/pg-<major>, started on a free loopback port.

PGROOT="$BENCH_ROOT/pg-$PG_MAJOR"
PGDATA="$PGROOT/data"
PGRUNDIR="$PGROOT/run"
mkdir -p "$PGROOT" "$PGRUNDIR"
if is_root; then
    chown postgres: "$PGROOT" "$PGRUNDIR"
    runuser -u postgres -- test -w "$PGROOT" \
        || die "the postgres user cannot reach $PGROOT (a parent folder is not traversable); move the repository or fix the permissions"
fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    say "initdb $PGDATA (PostgreSQL $PG_MAJOR)"
    locale_opt="--no-locale"
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale_opt="--locale=C.UTF-8"; fi
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 "$locale_opt" >"$RAW/initdb.log" 2>&1 \
        || { cat "$RAW/initdb.log" >&2; die "initdb failed"; }
    printf "\n# scripts/bench/run.sh writes the port and the run's options here\ninclude_if_exists = 'bench.conf'\n" \
        | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
fi
if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    say "the bench cluster was left running by an earlier run: stopping it first"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
PGPORT="$(free_port)" || die "no free loopback port for PostgreSQL"
{
    echo "port = $PGPORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$PGRUNDIR'"
    echo "max_connections = $((POOL * 2 + 40))"
    for opt in "${PG_OPTIONS[@]}"; do echo "${opt%%=*} = '${opt#*=}'"; done
} | as_pg tee "$PGDATA/bench.conf" >/dev/null
say "starting the bench cluster on 127.0.0.1:$PGPORT"
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/postgresql.log" -w -t 120 start >/dev/null \
    || { tail -n 20 "$PGROOT/postgresql.log" >&2; die "the bench cluster did not start"; }
CLUSTER_UP=1

PG_VERSION_FULL="$(q postgres -c 'SHOW server_version')"
pg_setting() { q postgres -c "SHOW $1"; }
declare -A PGSET
for s in shared_buffers synchronous_commit fsync full_page_writes wal_sync_method max_connections work_mem \
    checkpoint_timeout max_wal_size; do
    PGSET[$s]="$(pg_setting "$s")"
done

say "measuring the fsync cost (pg_test_fsync -s $FSYNC_SECS)"
as_pg "$PGBIN/pg_test_fsync" -s "$FSYNC_SECS" -f "$PGROOT/pg_test_fsync.tmp" >"$RAW/pg_test_fsync.txt" 2>&1 \
    || warn "pg_test_fsync failed (see $RAW/pg_test_fsync.txt)"
as_pg rm -f "$PGROOT/pg_test_fsync.tmp" 2>/dev/null || true
FSYNC_LINE="$(awk '/one 8kB write/ { s = 1 } s && $1 == "fdatasync" { $1 = ""; sub(/^ +/, ""); print; exit }' "$RAW/pg_test_fsync.txt")"
: "${FSYNC_LINE:=n/a}"

# ------------------------------------------------------------------------------------------------
# Seeded databases, reused when they match.

declare -A SEEDINFO
# Migrations may be edited in place before a release: a database made with other migration
# files is seeded again rather than reused.
MIGRATIONS_SUM="$(cd "$REPO" && find migrations -type f -name '*.sql' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
ensure_seeded() { # LINES -> sets DB_<label> facts in SEEDINFO
    local lines=$1 db marker orders
    db="bench_$(human "$lines")"
    marker="$PGROOT/seeded-$db.env"
    orders=$(awk -v l="$lines" -v r="$LINES_PER_ORDER" 'BEGIN { o = int(l / r + 0.5); if (o < 1) o = 1; print o }')
    local exists
    exists="$(q postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")"
    if [ "$RESEED" = 0 ] && [ "$exists" = 1 ] && [ -f "$marker" ]; then
        local M_LINES="" M_DAYS="" M_WAITERS="" M_PRODUCTS="" M_SEED_END="" M_SEEDED_AT="" M_SEEDED_LINES="" M_MIGRATIONS=""
        # shellcheck disable=SC1090
        . "$marker"
        if [ "$M_LINES" = "$lines" ] && [ "$M_DAYS" = "$DAYS" ] && [ "$M_WAITERS" = "$WAITERS" ] \
            && [ "$M_PRODUCTS" = "$PRODUCTS" ] && [ -n "$M_SEED_END" ] && [ "$M_MIGRATIONS" = "$MIGRATIONS_SUM" ]; then
            local count=""
            if db_admin "$db" init >"$RAW/init-$db.log" 2>&1; then
                remove_later_orders "$db" "$M_SEED_END"
                count="$(q "$db" -c 'SELECT count(*) FROM order_items')"
            else
                say "db-admin init fails on the existing $db ($(tail -n1 "$RAW/init-$db.log")): seeding it again"
            fi
            if [ -n "$count" ] && [ "$count" = "$M_SEEDED_LINES" ]; then
                run_rollup "$db"
                say "reusing $db from an earlier run: $count order lines seeded at $M_SEEDED_AT (saves the seeding)"
                SEEDINFO[$db]="reused: $count lines in $(q "$db" -c 'SELECT count(*) FROM orders') orders, seeded $M_SEEDED_AT over $M_DAYS days"
                return 0
            fi
            [ -n "$count" ] && say "$db has $count order lines, not the $M_SEEDED_LINES seeded: seeding it again"
        else
            say "$db was seeded with other parameters or other migration files: seeding it again"
        fi
    fi
    if [ "$exists" = 1 ]; then q postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null; fi
    rm -f "$marker"
    say "creating $db: db-admin init, then db-admin seed --orders $orders --days $DAYS --waiters $WAITERS --products $PRODUCTS (about $lines lines)"
    db_admin "$db" init >"$RAW/init-$db.log" 2>&1 || { cat "$RAW/init-$db.log" >&2; die "db-admin init failed on $db"; }
    local t0=$SECONDS
    db_admin "$db" seed --orders "$orders" --days "$DAYS" --waiters "$WAITERS" --products "$PRODUCTS" \
        --password "$SEED_PASSWORD" "${SEED_EXTRA[@]}" >"$RAW/seed-$db.log" 2>&1 \
        || { tail -n 20 "$RAW/seed-$db.log" >&2; die "db-admin seed failed on $db"; }
    local seed_secs=$((SECONDS - t0))
    say "seeded $db in $seed_secs s; VACUUM ANALYZE and CHECKPOINT (stable plans and hint bits)"
    q "$db" -c 'VACUUM (ANALYZE) users, orders, order_items, payments' >/dev/null
    q "$db" -c 'CHECKPOINT' >/dev/null
    run_rollup "$db"
    local seeded_lines seed_end
    seeded_lines="$(q "$db" -c 'SELECT count(*) FROM order_items')"
    seed_end="$(q "$db" -c "SELECT to_char(max(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM orders")"
    cat >"$marker" <<EOF
M_LINES=$lines
M_DAYS=$DAYS
M_WAITERS=$WAITERS
M_PRODUCTS=$PRODUCTS
M_SEEDED_LINES=$seeded_lines
M_SEED_END=$seed_end
M_SEEDED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
M_MIGRATIONS=$MIGRATIONS_SUM
EOF
    SEEDINFO[$db]="seeded now: $seeded_lines lines in $orders orders over $DAYS days, in $seed_secs s"
}

# Brings the sales rollup up to date with `db-admin rollup` (when this build has it), so the
# server's first roll-up tick finds little to do; the time it took is one of the facts.
declare -A ROLLUP_BUILD
run_rollup() { # DB
    local db=$1 t0=$SECONDS
    [ "$HAS_ROLLUP" = 1 ] || return 0
    db_admin "$db" rollup >>"$RAW/rollup-$db.log" 2>&1 || { tail -n 20 "$RAW/rollup-$db.log" >&2; die "db-admin rollup failed on $db"; }
    ROLLUP_BUILD[$db]=$((SECONDS - t0))
    say "$db: db-admin rollup took ${ROLLUP_BUILD[$db]} s"
}

# Orders written by earlier runs' workloads (after the seed's last order) would make the
# database bigger than its name: remove them, and forget the rollup from that day on (the
# service rebuilds it from the remaining orders; every bucket before its marks stays exact).
remove_later_orders() { # DB SEED_END
    local db=$1 end=$2 n
    n="$(q "$db" -c "SELECT count(*) FROM orders WHERE created_at > '$end'")"
    [ "$n" -gt 0 ] || return 0
    say "$db: removing $n orders left by earlier runs' workloads (created after the seed's end $end)"
    q "$db" >/dev/null <<SQL
BEGIN;
CREATE TEMP TABLE later ON COMMIT DROP AS SELECT id FROM orders WHERE created_at > '$end';
DELETE FROM payments WHERE order_id IN (SELECT id FROM later);
DELETE FROM idempotency_keys WHERE created_at > '$end';
DELETE FROM order_items WHERE order_id IN (SELECT id FROM later);
DELETE FROM orders WHERE id IN (SELECT id FROM later);
DELETE FROM sales_rollup WHERE bucket >= date_trunc('day', '$end'::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
UPDATE sales_rollup_state SET
    hours_until = CASE WHEN hours_until IS NULL THEN NULL
                       ELSE least(hours_until, date_trunc('day', '$end'::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') END,
    days_until  = CASE WHEN days_until IS NULL THEN NULL
                       ELSE least(days_until, date_trunc('day', '$end'::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') END;
COMMIT;
VACUUM (ANALYZE) orders, order_items, payments, idempotency_keys;
CHECKPOINT;
SQL
}

DB_SMALL="bench_$(human "$LINES_SMALL")"
DB_LARGE="bench_$(human "$LINES_LARGE")"
ensure_seeded "$LINES_SMALL"
ensure_seeded "$LINES_LARGE"

# Phase 1 writes (W2, W4, the baselines) go to a copy of the small database made for this run
# and dropped at the end: the seeded database stays as seeded, and the next run reuses it as is.
DB_WORK="${DB_SMALL}_work"
copy_strategy=""
[ "$PG_MAJOR" -ge 15 ] && copy_strategy=" STRATEGY = FILE_COPY"
t0=$SECONDS
q postgres -c "DROP DATABASE IF EXISTS $DB_WORK WITH (FORCE)" >/dev/null
WORK_COPY=1
q postgres -c "CREATE DATABASE $DB_WORK TEMPLATE $DB_SMALL$copy_strategy" >/dev/null
say "working copy $DB_WORK of $DB_SMALL made in $((SECONDS - t0)) s (dropped at the end)"

# ------------------------------------------------------------------------------------------------
# The service

PORT="" URL=""
start_server() { # DB [ATTEMPT]
    local db=$1
    PORT="$(free_port)" || die "no free loopback port for comanda-api"
    URL="http://127.0.0.1:$PORT"
    local envs; mapfile -t envs < <(base_env)
    envs+=("DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/$db" "HOST=127.0.0.1" "PORT=$PORT"
        "JWT_SECRET=$JWT_SECRET" "JWT_TTL_SECONDS=7200" "DATABASE_POOL_SIZE=$POOL"
        "RATE_LIMIT_LOGIN_PER_MINUTE=0" "RATE_LIMIT_PER_MINUTE=0" "${SERVER_ENV[@]}")
    printf '%s\n' "${envs[@]}" | grep -v -e '^PATH=' -e '^HOME=' -e '^JWT_SECRET=' -e '^ADMIN_PASSWORD=' >"$RAW/server-env-$db.txt"
    say "starting comanda-api on $URL against $db (pool $POOL)"
    (cd "$WORK_TMP" && exec env -i "${envs[@]}" "$API_BIN") >"$RAW/server-$db.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            if grep -q 'Address already in use' "$RAW/server-$db.log" && [ "${2:-0}" -lt 3 ]; then
                warn "port $PORT was taken meanwhile; trying another"
                start_server "$db" $(( ${2:-0} + 1 ))
                return
            fi
            tail -n 20 "$RAW/server-$db.log" >&2; die "comanda-api exited at start"
        fi
        if curl -fsS --max-time 2 "$URL/health/ready" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "comanda-api did not become ready within 60 s"
}

# The server aggregates the sales rollup at start (first tick) and then every interval; the
# report must be measured on a caught-up rollup, as in production.
wait_rollup() { # DB
    local db=$1 t0=$SECONDS ok
    for _ in $(seq 1 1800); do
        # Caught up: hours aggregated to within the lag (5 min by default; 3 h of slack for
        # longer lags or an hour that just turned), and days to the last whole day of those.
        ok="$(q "$db" -c "SELECT coalesce(hours_until >= date_trunc('hour', now()) - interval '3 hours'
                              AND days_until = date_trunc('day', hours_until), false) FROM sales_rollup_state")"
        if [ "$ok" = t ]; then
            ROLLUP_SECS[$db]=$((SECONDS - t0))
            say "$db: sales rollup caught up ($((SECONDS - t0)) s after ready)"
            return 0
        fi
        sleep 1
    done
    die "$db: the sales rollup did not catch up within 30 minutes (sales_rollup_state: $(q "$db" -c 'SELECT * FROM sales_rollup_state'))"
}
declare -A ROLLUP_SECS

login_token() { # EMAIL PASSWORD
    curl -sS --max-time 30 -H 'Content-Type: application/json' \
        -d "{\"email\":\"$1\",\"password\":\"$2\"}" "$URL/api/v1/auth/login" \
        | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

PID_STATUS_OK=1
reset_hwm() { echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || PID_STATUS_OK=0; }
read_hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo ""; }

# Before each write workload and each baseline: vacuum what earlier runs wrote and checkpoint,
# so that every run starts from the same state (no autovacuum or checkpoint left over from the
# previous run).
quiesce() {
    q "$DB_WORK" -c 'VACUUM (ANALYZE) orders, order_items, idempotency_keys' -c 'CHECKPOINT' >/dev/null
}

# ------------------------------------------------------------------------------------------------
# wrk runs

declare -A R   # R[name.field]: parsed RESULT fields, plus conns, rss_mb, label
ORDER=()       # row order
threads_for() { if [ "$1" -ge 2 ]; then echo 2; else echo 1; fi; }

parse_result() { # NAME FILE
    local name=$1 file=$2 line kv
    line="$(grep -m1 '^RESULT ' "$file" || true)"
    [ -n "$line" ] || { tail -n 20 "$file" >&2; die "$name: wrk printed no RESULT line (see $file)"; }
    for kv in ${line#RESULT }; do R[$name.${kv%%=*}]="${kv#*=}"; done
}

# wrk_run NAME LABEL CONNS SCRIPT SECONDS [VAR=VALUE ...]: one wrk run, output to raw/NAME.txt.
wrk_run() {
    local name=$1 conns=$2 script=$3 secs=$4; shift 4
    local t; t=$(threads_for "$conns")
    env BENCH_LUA_DIR="$LUA_DIR" BENCH_THREADS="$t" "$@" \
        wrk -t"$t" -c"$conns" -d"${secs}s" --timeout "${WRK_TIMEOUT}s" --latency -s "$LUA_DIR/$script" "$URL" \
        >"$RAW/$name.txt" 2>&1 || { tail -n 20 "$RAW/$name.txt" >&2; die "wrk failed for $name (see $RAW/$name.txt)"; }
}

# workload NAME LABEL CONNS SCRIPT [VAR=VALUE ...]: warm-up, reset the peak RSS, measure.
workload() {
    local name=$1 lbl=$2 conns=$3 script=$4; shift 4
    say "$lbl: $conns connections, ${WARMUP}s warm-up + ${DURATION}s"
    if [ "$WARMUP" -gt 0 ]; then wrk_run "$name.warmup" "$conns" "$script" "$WARMUP" "$@"; fi
    reset_hwm
    wrk_run "$name" "$conns" "$script" "$DURATION" "$@"
    parse_result "$name" "$RAW/$name.txt"
    R[$name.rss_mb]="$(read_hwm_mb)"
    R[$name.conns]=$conns
    R[$name.label]=$lbl
    ORDER+=("$name")
}

# ------------------------------------------------------------------------------------------------
# pgbench baselines

declare -A PB
pgbench_run() { # NAME LABEL SCRIPT [pgbench -D options...]
    local name=$1 lbl=$2 script=$3; shift 3
    local dir="$RAW/pgbench"
    say "$lbl: pgbench -M prepared -c $POOL -j 2, ${WARMUP}s warm-up + ${DURATION}s"
    local common=(-n -M prepared -c "$POOL" -j 2 -h 127.0.0.1 -p "$PGPORT" -U postgres -f "$script" "$@")
    quiesce
    if [ "$WARMUP" -gt 0 ]; then
        as_pg "$PGBIN/pgbench" "${common[@]}" -T "$WARMUP" "$DB_WORK" >"$dir/$name.warmup.txt" 2>&1 \
            || { tail -n 20 "$dir/$name.warmup.txt" >&2; die "pgbench failed for $name (see $dir/$name.warmup.txt)"; }
    fi
    local rc=0
    (cd "$dir" && as_pg "$PGBIN/pgbench" "${common[@]}" -T "$DURATION" -l --log-prefix="$dir/$name.log" "$DB_WORK") \
        >"$dir/$name.txt" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || { tail -n 20 "$dir/$name.txt" >&2; die "pgbench failed for $name (see $dir/$name.txt)"; }
    local tps failed
    tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir/$name.txt" | head -n1)"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/$name.txt" | head -n1)"
    [ -n "$tps" ] || die "pgbench printed no tps for $name (see $dir/$name.txt)"
    local aborted=0
    [ "$rc" -eq 2 ] && aborted=1
    # Latency percentiles from the per-transaction log (third field: microseconds).
    local pcts
    pcts="$(cat "$dir/$name.log".* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n | awk '
        { v[NR] = $1 }
        function p(q,  i) { i = int(q * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1000 }
        END { if (NR == 0) print "- - -"; else printf "%.3f %.3f %.3f\n", p(0.50), p(0.99), p(0.999) }')"
    rm -f "$dir/$name.log".*
    read -r PB[$name.p50_ms] PB[$name.p99_ms] PB[$name.p999_ms] <<<"$pcts"
    PB[$name.tps]=$tps
    PB[$name.errors]=$(( ${failed:-0} + aborted ))
    PB[$name.label]=$lbl
}

# ------------------------------------------------------------------------------------------------
# Baselines on the same database and cluster: (a) the service's own statement, (b) the smallest
# single statement that does the same write. Each pair runs right before W2 at the pool's
# concurrency with the same number of lines (the service idle meanwhile), so both see the same
# tables.

PGB="$RAW/pgbench"

# (a) below is a copy of InsertOrders::walk_ast (crates/infrastructure/src/order_writer.rs) for
# one order. When that text is no longer in the service's source, (a) is no longer "the very SQL
# the service issues": say so loudly rather than print a stale baseline as if it were current.
A_STALE=0
for fragment in 'WITH input AS (SELECT * FROM unnest(' \
    'allowed AS (SELECT input.* FROM input WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = input.waiter_id)), ' \
    'ORDER BY waiter_id, key ON CONFLICT (user_id, key) DO NOTHING RETURNING resource_id), ' \
    'WHERE l.order_id IN (SELECT id FROM new_orders) RETURNING 1) '; do
    grep -rqF -- "$fragment" "$REPO/crates/infrastructure/src" || A_STALE=1
done
[ "$A_STALE" = 0 ] || warn "baseline (a) copies InsertOrders::walk_ast, and the service's create-order SQL in crates/infrastructure/src has changed since: (a) is marked STALE in the table; update run_baselines in scripts/bench/run.sh"

sql_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
arr_elem() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

# A time-ordered (version 7) uuid from the statement's now() and two random pgbench integers,
# as the service makes them: the id is a bind in the service, an expression of binds here.
UUID_EXPR="(lpad(to_hex(floor(extract(epoch FROM now()) * 1000)::bigint), 12, '0') || to_hex(:r1::bigint) || to_hex(:r2::bigint))::uuid"
WAITER_EXPR="(:waiters::uuid[])[:w]"

run_baselines() { # LINES
    local n=$1 keys=() names=() prices=() qtys=() subs=() values=() total_cents=0 i=0 key name cents qty sub price subtotal total
    local uuid_vars=$'\\set r1 random(28672, 32767)\n\\set r2 random(-9223372036854775807, -4611686018427387905)\n\\set w random(1, '"$WAITER_COUNT"$')\n'
    mkdir -p "$PGB"
    if is_root; then chown postgres: "$PGB"; fi
    while IFS=$'\t' read -r key name; do
        i=$((i + 1))
        [ "$i" -le "$n" ] || break
        cents=$((250 + (i * 137) % 1800)); qty=$((1 + i % 3)); sub=$((cents * qty))
        total_cents=$((total_cents + sub))
        price="$((cents / 100)).$(printf '%02d' $((cents % 100)))"; subtotal="$((sub / 100)).$(printf '%02d' $((sub % 100)))"
        keys+=("$(arr_elem "$key")"); names+=("$(arr_elem "$name")"); prices+=("$price"); qtys+=("$qty"); subs+=("$subtotal")
        values+=("($i, $(sql_quote "$key"), $(sql_quote "$name"), $price, $qty, $subtotal)")
    done <"$RUN/products.tsv"
    join() { local IFS=,; echo "$*"; }
    total="$((total_cents / 100)).$(printf '%02d' $((total_cents % 100)))"
    DEFS=(-D "waiters=$WAITER_IDS" -D "customer=Table 7" -D "total=$total"
        -D "keys={$(join "${keys[@]}")}" -D "names={$(join "${names[@]}")}" -D "prices={$(join "${prices[@]}")}"
        -D "qtys={$(join "${qtys[@]}")}" -D "subs={$(join "${subs[@]}")}")

    # (a) InsertOrders::walk_ast (crates/infrastructure/src/order_writer.rs), word for word, for
    # one order (the service puts several orders in one such statement when they arrive
    # together; W2 shows that effect, (a) does not). Binds replaced: waiter -> one of the seeded
    # waiters, key and fingerprint -> NULL (a request without Idempotency-Key, like W2's), order
    # id -> a v7 uuid, created_at -> now(), the rest -> pgbench variables (-D). Prepared once per
    # connection, like diesel does.
    local nums=() j
    for ((j = 1; j <= n && j <= i; j++)); do nums+=("$j"); done
    DEFS+=(-D "nums={$(join "${nums[@]}")}")
    {
        printf '%s' "$uuid_vars"
        echo "WITH input AS (SELECT * FROM unnest(ARRAY[$UUID_EXPR]::uuid[], ARRAY[:customer::text]::text[], ARRAY[$WAITER_EXPR]::uuid[], ARRAY[:total::numeric]::numeric[], ARRAY[now()]::timestamptz[], ARRAY[NULL::text]::text[], ARRAY[NULL::bytea]::bytea[]) AS t (id, customer_name, waiter_id, total_price, created_at, key, fingerprint)), allowed AS (SELECT input.* FROM input WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = input.waiter_id)), claims AS (INSERT INTO idempotency_keys (user_id, key, fingerprint, resource_id, created_at) SELECT waiter_id, key, fingerprint, id, created_at FROM allowed WHERE key IS NOT NULL ORDER BY waiter_id, key ON CONFLICT (user_id, key) DO NOTHING RETURNING resource_id), new_orders AS (INSERT INTO orders (id, customer_name, waiter_id, status, total_price, amount_paid, created_at, updated_at) SELECT id, customer_name, waiter_id, 'open', total_price, 0, created_at, created_at FROM allowed WHERE key IS NULL OR id IN (SELECT resource_id FROM claims) RETURNING id), new_lines AS (INSERT INTO order_items (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal) SELECT l.order_id, l.line_no, l.product_key, l.product_name, l.unit_price, l.quantity, l.subtotal FROM unnest(array_fill($UUID_EXPR, ARRAY[${#nums[@]}])::uuid[], :nums::int2[]::int2[], :keys::text[]::text[], :names::text[]::text[], :prices::numeric[]::numeric[], :qtys::int4[]::int4[], :subs::numeric[]::numeric[]) AS l (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal) WHERE l.order_id IN (SELECT id FROM new_orders) RETURNING 1) SELECT input.id, input.id IN (SELECT id FROM allowed), input.id IN (SELECT id FROM new_orders) FROM input;"
    } >"$PGB/a_service_$n.sql"
    # (b) the fastest SQL for the same write: one statement, one round trip, one commit.
    {
        printf '%s' "$uuid_vars"
        echo "WITH o AS (INSERT INTO orders (id, customer_name, waiter_id, status, total_price, amount_paid, created_at, updated_at) VALUES ($UUID_EXPR, :customer::text, $WAITER_EXPR, 'open', :total::numeric, 0, now(), now()) RETURNING id) INSERT INTO order_items (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal) SELECT o.id, v.n, v.k, v.name, v.price, v.qty, v.sub FROM o, (VALUES $(join "${values[@]}")) AS v (n, k, name, price, qty, sub);"
    } >"$PGB/b_minimal_$n.sql"
    printf '%q ' "${DEFS[@]}" >"$PGB/defines_$n.txt"
    pgbench_run "a_$n" "(a) service SQL$([ "$A_STALE" = 1 ] && echo ' (STALE copy)'), $n line(s)" "$PGB/a_service_$n.sql" "${DEFS[@]}"
    pgbench_run "b_$n" "(b) minimal CTE, $n line(s)" "$PGB/b_minimal_$n.sql" "${DEFS[@]}"
}

# ================================================================================================
# Phase 1: the small database

start_server "$DB_WORK"
wait_rollup "$DB_WORK"

RSS_READY="$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")"
say "logging the $WAITERS seeded waiters and the admin in"
: >"$RUN/emails.txt"; : >"$RUN/tokens.txt"
for i in $(seq 1 "$WAITERS"); do
    email="waiter$i@seed.comanda.local"
    echo "$email" >>"$RUN/emails.txt"
    tok="$(login_token "$email" "$SEED_PASSWORD")"
    [ -n "$tok" ] || die "could not log $email in with the seed password (was $DB_SMALL seeded by an older db-admin?)"
    echo "$tok" >>"$RUN/tokens.txt"
done
ADMIN_TOKEN="$(login_token "$ADMIN_EMAIL" "$ADMIN_PASSWORD")"
[ -n "$ADMIN_TOKEN" ] || die "could not log the admin $ADMIN_EMAIL in"
FIRST_TOKEN="$(head -n1 "$RUN/tokens.txt")"
RSS_LOGGED_IN="$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")"

say "collecting order ids (GET /api/v1/orders?limit=100, 10 pages)"
: >"$RUN/order_ids.txt"
cursor=""
for page in $(seq 1 10); do
    body="$(curl -sS --max-time 30 -H "Authorization: Bearer $FIRST_TOKEN" "$URL/api/v1/orders?limit=100${cursor:+&cursor=$cursor}")"
    grep -o '"id":"[0-9a-f-]\{36\}"' <<<"$body" | cut -d'"' -f4 >>"$RUN/order_ids.txt" || true
    cursor="$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' <<<"$body")"
    [ -n "$cursor" ] || break
done
[ -s "$RUN/order_ids.txt" ] || die "GET /api/v1/orders returned no order ids"
curl -fsS --max-time 10 -H "Authorization: Bearer $FIRST_TOKEN" "$URL/api/v1/orders/$(head -n1 "$RUN/order_ids.txt")" >/dev/null \
    || die "GET /api/v1/orders/{id} failed for a listed id"

say "taking product names from $DB_SMALL (the most sold products of the seeded menu)"
q "$DB_WORK" -F $'\t' -c "SELECT product_key, min(product_name COLLATE \"C\") FROM order_items
    GROUP BY product_key ORDER BY count(*) DESC, product_key LIMIT 200" >"$RUN/products.tsv"
cut -f2 "$RUN/products.tsv" >"$RUN/products.txt"
[ "$(wc -l <"$RUN/products.txt")" -ge 20 ] || die "fewer than 20 distinct products in $DB_SMALL: W2's 20-line orders need 20"
WAITER_IDS="$(q "$DB_WORK" -c "SELECT '{' || string_agg(id::text, ',' ORDER BY created_at) || '}' FROM users WHERE email LIKE 'waiter%@seed.comanda.local'")"
WAITER_COUNT="$(q "$DB_WORK" -c "SELECT count(*) FROM users WHERE email LIKE 'waiter%@seed.comanda.local'")"

TODAY="$(date -u +%F)"
report_path() { echo "/api/v1/orders/report?start_date=$(date -u -d "$TODAY - $(($1 - 1)) days" +%F)&end_date=$TODAY"; }
for d in 30 365; do
    curl -fsS --max-time 60 -H "Authorization: Bearer $ADMIN_TOKEN" "$URL$(report_path "$d")" >"$RAW/report-$DB_SMALL-${d}d.json" \
        || die "the ${d}-day report failed on $DB_SMALL"
done

REPORT_ENV=(BENCH_ADMIN_TOKEN="$ADMIN_TOKEN")
ORDERS_ENV=(BENCH_TOKENS="$RUN/tokens.txt" BENCH_ORDER_IDS="$RUN/order_ids.txt" BENCH_PRODUCTS="$RUN/products.txt")

LS="$(label "$LINES_SMALL")" LL="$(label "$LINES_LARGE")"
# W3 first, on the database as seeded (the write workloads below add orders to it).
workload "w3_small_30" "W3 report 30 days, $LS lines" "$CONNS_REPORT" report.lua "${REPORT_ENV[@]}" BENCH_REPORT_PATH="$(report_path 30)"
workload "w3_small_365" "W3 report 365 days, $LS lines" "$CONNS_REPORT" report.lua "${REPORT_ENV[@]}" BENCH_REPORT_PATH="$(report_path 365)"

workload "w0" "W0 GET /health/live" "$CONNS_HEALTH" health.lua
workload "w1" "W1 login storm" "$CONNS_LOGIN" login.lua BENCH_EMAILS="$RUN/emails.txt" BENCH_PASSWORD="$SEED_PASSWORD"

# One Argon2id hash at the default parameters, measured in this run while the service is idle:
# the service's own hasher as a hashing thread runs it during a storm, on memory kept from the
# previous hash (crates/infrastructure/examples/hash_time.rs). For comparison, a lone login end
# to end: sequential logins at concurrency 1, where the hashing thread frees its memory after
# each login and faults 19 MiB in again for the next.
say "one Argon2id hash: the service's hasher on kept memory, median of 50"
env -i "$HASH_BIN" 50 >"$RAW/hash_time.txt" 2>&1 || { cat "$RAW/hash_time.txt" >&2; die "$HASH_BIN failed"; }
HASH_MS="$(sed -n 's/^HASH median_ms=\([0-9.]*\) .*/\1/p' "$RAW/hash_time.txt")"
[ -n "$HASH_MS" ] || die "no median in $RAW/hash_time.txt"
HASH_SECS=$(( DURATION < 10 ? DURATION : 10 ))
say "a lone login: sequential logins at concurrency 1 for ${HASH_SECS}s"
wrk_run "hash_c1" 1 login.lua "$HASH_SECS" BENCH_EMAILS="$RUN/emails.txt" BENCH_PASSWORD="$SEED_PASSWORD"
parse_result "hash_c1" "$RAW/hash_c1.txt"
CORES="$(nproc)"
HASH_LIMIT="$(awk -v c="$CORES" -v h="$HASH_MS" 'BEGIN { printf "%.1f", c * 1000 / h }')"

workload "w1b_alone" "W1b get order at ~fixed rate, alone" "$CONNS_RATE" get_order.lua "${ORDERS_ENV[@]}" BENCH_DELAY_MS="$RATE_DELAY_MS"
say "W1b under the W1 login storm (storm: its own wrk in the background)"
storm_secs=$((WARMUP + DURATION + 3))
( exec env BENCH_LUA_DIR="$LUA_DIR" BENCH_THREADS=2 BENCH_EMAILS="$RUN/emails.txt" BENCH_PASSWORD="$SEED_PASSWORD" \
    wrk -t2 -c"$CONNS_LOGIN" -d"${storm_secs}s" --timeout "${WRK_TIMEOUT}s" --latency -s "$LUA_DIR/login.lua" "$URL" ) \
    >"$RAW/w1b_storm_logins.txt" 2>&1 &
STORM_PID=$!
sleep 1
workload "w1b_storm" "W1b get order at ~fixed rate, during W1 storm" "$CONNS_RATE" get_order.lua "${ORDERS_ENV[@]}" BENCH_DELAY_MS="$RATE_DELAY_MS"
wait "$STORM_PID" || die "the background login storm failed (see $RAW/w1b_storm_logins.txt)"
STORM_PID=""
parse_result "w1b_storm_logins" "$RAW/w1b_storm_logins.txt"
R[w1b_storm_logins.conns]=$CONNS_LOGIN
R[w1b_storm_logins.label]="W1 storm running during W1b (whole run)"
ORDER+=("w1b_storm_logins")

for conns in "$CONNS_LOW" "$CONNS_HIGH"; do
    for n in "${LINES_SET[@]}"; do
        if [ "$conns" = "$CONNS_LOW" ]; then run_baselines "$n"; fi
        quiesce
        workload "w2_${n}_c$conns" "W2 create order, $n line(s)" "$conns" create_order.lua "${ORDERS_ENV[@]}" BENCH_LINES="$n"
    done
done
quiesce
workload "w4" "W4 mix 80% get / 15% create / 5% list" "$CONNS_MIX" mix.lua "${ORDERS_ENV[@]}" BENCH_LINES="$MIX_LINES"

[ "$PID_STATUS_OK" = 1 ] || warn "could not reset the peak RSS via /proc/$SERVER_PID/clear_refs: RSS columns are peaks since start"
SERVER_LOG_SMALL_WARNINGS="$(grep -c '"level":"\(WARN\|ERROR\)"' "$RAW/server-$DB_WORK.log" || true)"
stop_server

# ================================================================================================
# Phase 2: the large database (the report only)

start_server "$DB_LARGE"
wait_rollup "$DB_LARGE"
ADMIN_TOKEN="$(login_token "$ADMIN_EMAIL" "$ADMIN_PASSWORD")"
[ -n "$ADMIN_TOKEN" ] || die "could not log the admin in on $DB_LARGE"
REPORT_ENV=(BENCH_ADMIN_TOKEN="$ADMIN_TOKEN")
for d in 30 365; do
    curl -fsS --max-time 60 -H "Authorization: Bearer $ADMIN_TOKEN" "$URL$(report_path "$d")" >"$RAW/report-$DB_LARGE-${d}d.json" \
        || die "the ${d}-day report failed on $DB_LARGE"
done
workload "w3_large_30" "W3 report 30 days, $LL lines" "$CONNS_REPORT" report.lua "${REPORT_ENV[@]}" BENCH_REPORT_PATH="$(report_path 30)"
workload "w3_large_365" "W3 report 365 days, $LL lines" "$CONNS_REPORT" report.lua "${REPORT_ENV[@]}" BENCH_REPORT_PATH="$(report_path 365)"
SERVER_LOG_LARGE_WARNINGS="$(grep -c '"level":"\(WARN\|ERROR\)"' "$RAW/server-$DB_LARGE.log" || true)"
stop_server

# ================================================================================================
# The table

TOTAL_TARGETS=0 PASSED=0
# check VAR COMMAND...: VAR=PASS or FAIL by the command's status, counted (in this shell).
check() {
    local __var=$1; shift
    TOTAL_TARGETS=$((TOTAL_TARGETS + 1))
    if "$@"; then PASSED=$((PASSED + 1)); printf -v "$__var" PASS; else printf -v "$__var" FAIL; fi
}

row() { # NAME TARGET_TEXT
    local n=$1 target=$2
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${R[$n.label]}" "${R[$n.conns]}" "$(fmt "${R[$n.rps]}" 0)" \
        "$(fmt "${R[$n.p50_ms]}" 2)" "$(fmt "${R[$n.p99_ms]}" 2)" "$(fmt "${R[$n.p999_ms]}" 2)" \
        "${R[$n.errors]}$( [ "${R[$n.timeout]:-0}" -gt 0 ] && echo " (${R[$n.timeout]} timeouts)")" \
        "$(fmt "${R[$n.rss_mb]:-}" 1)" "$target"
}

{
    if [ "$QUICK" = 1 ]; then
        echo "# Comanda benchmark — SMOKE RUN (--quick): checks the tooling, NOT a measurement"
    else
        echo "# Comanda benchmark"
    fi
    echo
    echo "Run $STAMP; warm-up ${WARMUP}s then ${DURATION}s measured per workload; wrk -t2 (-t1 at one connection), --timeout ${WRK_TIMEOUT}s; loopback; service pool $POOL."
    echo
    echo "| Workload | Conns | Req/s | p50 ms | p99 ms | p99.9 ms | Errors | Peak RSS MB | Target / ratio |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"

    row w0 ""
    check t ge "${R[w1.rps]}" "$(awk -v l="$HASH_LIMIT" 'BEGIN { print 0.8 * l }')"
    row w1 "$(ratio "${R[w1.rps]}" "$HASH_LIMIT") × hash-bound limit $HASH_LIMIT/s (target ≥ 0.8): $t"
    row w1b_alone "reference for W1b"
    w1b_ratio="$(ratio "${R[w1b_storm.p99_ms]}" "${R[w1b_alone.p99_ms]}")"
    check t le "$w1b_ratio" 2
    row w1b_storm "p99 $w1b_ratio × alone (target ≤ 2): $t"
    row w1b_storm_logins "logins during W1b: $(ratio "${R[w1b_storm_logins.rps]}" "$HASH_LIMIT") × hash-bound limit"
    for conns in "$CONNS_LOW" "$CONNS_HIGH"; do
        for n in "${LINES_SET[@]}"; do
            name="w2_${n}_c$conns"
            if [ "$conns" = "$CONNS_HIGH" ]; then
                e="${R[$name.errors]}"
                check t1 [ "$e" -eq 0 ]
                check t2 le "${R[$name.rss_mb]}" 64
                row "$name" "errors+timeouts = $e (target 0): $t1; RSS ≤ 64 MB: $t2"
            else
                rb="$(ratio "${R[$name.rps]}" "${PB[b_$n.tps]}")"
                ra="$(ratio "${R[$name.rps]}" "${PB[a_$n.tps]}")"
                tag=""
                if [ "$conns" = "$POOL" ]; then check t ge "$rb" 0.8; tag=": $t"; fi
                row "$name" "$rb × (b), $ra × (a) (target ≥ 0.8 × (b))$tag"
            fi
        done
    done
    row w4 ""
    row w3_small_30 "reference for the $LL/$LS ratio"
    row w3_small_365 "reference for the $LL/$LS ratio"
    r30="$(ratio "${R[w3_large_30.p50_ms]}" "${R[w3_small_30.p50_ms]}")"
    r365="$(ratio "${R[w3_large_365.p50_ms]}" "${R[w3_small_365.p50_ms]}")"
    check t1 le "${R[w3_large_30.p50_ms]}" 20; check t2 le "$r30" 1.5
    row w3_large_30 "p50 ≤ 20 ms: $t1; $LL/$LS p50 ratio $r30 (≤ 1.5): $t2"
    check t1 le "${R[w3_large_365.p50_ms]}" 100; check t2 le "$r365" 1.5
    row w3_large_365 "p50 ≤ 100 ms: $t1; $LL/$LS p50 ratio $r365 (≤ 1.5): $t2"
    for n in "${LINES_SET[@]}"; do
        for k in a b; do
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "Baseline ${PB[${k}_$n.label]} (pgbench)" "$POOL" \
                "$(fmt "${PB[${k}_$n.tps]}" 0)" "$(fmt "${PB[${k}_$n.p50_ms]}" 2)" "$(fmt "${PB[${k}_$n.p99_ms]}" 2)" \
                "$(fmt "${PB[${k}_$n.p999_ms]}" 2)" "${PB[${k}_$n.errors]}" "-" \
                "$([ "$k" = a ] && echo "(a)/(b) = $(ratio "${PB[a_$n.tps]}" "${PB[b_$n.tps]}")")"
        done
    done
    echo
    if [ "$A_STALE" = 1 ]; then
        echo "**WARNING: baseline (a) is a copy of InsertOrders::walk_ast that no longer matches the service's create-order SQL, so (a) is not the SQL this build issues. Update run_baselines in scripts/bench/run.sh.**"
        echo
    fi
    echo "Targets met: $PASSED of $TOTAL_TARGETS. Errors = non-2xx/3xx responses + socket errors + timeouts (wrk)."
    echo "Hash-bound login limit = cores × 1000 / one Argon2id hash = $CORES × 1000 / $(fmt "$HASH_MS" 2) ms = $HASH_LIMIT/s;"
    echo "one hash = the median of 50 verifications by the service's hasher on kept memory, as during a storm ($(cut -d' ' -f2- "$RAW/hash_time.txt"));"
    echo "a lone login end to end (concurrency 1, the hashing memory faulted in anew each time): p50 $(fmt "${R[hash_c1.p50_ms]}" 2) ms (${R[hash_c1.requests]} logins in ${HASH_SECS}s)."
    echo "Baselines: pgbench -n -M prepared -c $POOL -j 2 on $DB_WORK (this run's copy of $DB_SMALL), each pair right before W2 at $POOL connections with as many lines, the service idle; req/s column = TPS; latencies from the per-transaction log."
    echo
    echo "## Machine and setup"
    echo
    echo "- CPU: $(nproc) cores (nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); memory $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); kernel $(uname -r)"
    echo "- PostgreSQL $PG_VERSION_FULL ($PGBIN), own cluster $PGDATA on 127.0.0.1:$PGPORT"
    echo "- Settings: shared_buffers=${PGSET[shared_buffers]}, synchronous_commit=${PGSET[synchronous_commit]}, fsync=${PGSET[fsync]}, full_page_writes=${PGSET[full_page_writes]}, wal_sync_method=${PGSET[wal_sync_method]}, max_connections=${PGSET[max_connections]}, work_mem=${PGSET[work_mem]}, checkpoint_timeout=${PGSET[checkpoint_timeout]}, max_wal_size=${PGSET[max_wal_size]}${PG_OPTIONS:+; extra: ${PG_OPTIONS[*]}}"
    echo "- fsync cost (pg_test_fsync -s $FSYNC_SECS, one 8 kB write + fdatasync): $FSYNC_LINE"
    echo "- Databases: $DB_SMALL ${SEEDINFO[$DB_SMALL]}; $DB_LARGE ${SEEDINFO[$DB_LARGE]}; phase 1 (W0-W4 on $LS lines, baselines) ran on $DB_WORK, a copy of $DB_SMALL made for this run and dropped at its end"
    echo "- Sales rollup: db-admin rollup $( [ "$HAS_ROLLUP" = 1 ] && echo "took $DB_SMALL ${ROLLUP_BUILD[$DB_SMALL]:-?} s, $DB_LARGE ${ROLLUP_BUILD[$DB_LARGE]:-?} s" || echo "not in this build" ); caught up after the server was ready: $DB_WORK ${ROLLUP_SECS[$DB_WORK]} s, $DB_LARGE ${ROLLUP_SECS[$DB_LARGE]} s"
    echo "- Service: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' (uncommitted changes)'), release build; env: $(tr '\n' ' ' <"$RAW/server-env-$DB_WORK.txt")"
    echo "- Service RSS on $DB_WORK: $RSS_READY MB when ready, $RSS_LOGGED_IN MB after the $((WAITERS + 1)) sequential logins that fetch the tokens (VmRSS)"
    echo "- Server log warnings/errors: $DB_WORK ${SERVER_LOG_SMALL_WARNINGS:-0}, $DB_LARGE ${SERVER_LOG_LARGE_WARNINGS:-0} (raw/server-*.log)"
    echo "- Tools: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $("$PGBIN/pgbench" --version), $(rustc --version 2>/dev/null || echo rustc ?)"
    echo "- Workloads: W0 $CONNS_HEALTH conns; W1 $CONNS_LOGIN conns over $WAITERS waiters; W1b $CONNS_RATE conns × ${RATE_DELAY_MS} ms delay; W2 $CONNS_LOW and $CONNS_HIGH conns, $WAITERS waiters' tokens; W3 $CONNS_REPORT conn, dates $(report_path 30 | sed 's/.*?//') and $(report_path 365 | sed 's/.*?//'); W4 $CONNS_MIX conns, $MIX_LINES-line orders"
} >"$RUN/summary.md"

echo
cat "$RUN/summary.md"
echo
say "summary: $RUN/summary.md; raw outputs: $RAW"
