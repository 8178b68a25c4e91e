#!/usr/bin/env bash
# EXPLAIN ANALYZE of the queries the service issues, on a seeded database (the bench's
# bench_10m, say), to see which index serves which query (docs/ARCHITECTURE.md, "Indexes and
# query plans"). Read-only apart from the idempotency purge, which runs in a rolled-back
# transaction.
#
#   scripts/bench/explain.sh postgres://postgres@127.0.0.1:PORT/bench_10m
#
# The queries are the service's, written out by hand with values picked from the data: the
# order 1000 from the newest, a cursor 50,000 orders deep, the first order's waiter.
set -euo pipefail
url="${1:?usage: scripts/bench/explain.sh DATABASE_URL}"
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }
value() { psql -At -c "$1"; }

order=$(value "SELECT id FROM orders ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET 1000")
waiter=$(value "SELECT waiter_id FROM orders WHERE id = '$order'")
location=$(value "SELECT location_id FROM orders WHERE id = '$order'")
IFS='|' read -r cur_at cur_id < <(value "SELECT created_at, id FROM orders ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET 50000")
email=$(value "SELECT email_key FROM users ORDER BY created_at LIMIT 1")
[ -n "$order" ] || { echo "no orders in this database: seed it first (db-admin seed)" >&2; exit 1; }

explain() {
    local title=$1 sql=$2
    echo "### $title"
    echo
    psql -c "SET jit = off" -c "BEGIN" -c "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) $sql" -c "ROLLBACK" \
        | grep -vE '^(SET|BEGIN|ROLLBACK)$' | sed 's/^/    /'
    echo
}

# The rollup's rows of all locations together have the nil uuid for location_id.
all='00000000-0000-0000-0000-000000000000'
live='SELECT i.product_key, min(i.product_name COLLATE "C"), sum(i.quantity)::bigint, sum(i.subtotal)
      FROM orders o JOIN order_items i ON i.order_id = o.id
      WHERE o.created_at >= %s AND o.created_at < %s AND o.status <> '"'cancelled'"' %s
      GROUP BY i.product_key'
rollup='SELECT s.product_key, sum(s.total_quantity)::bigint, sum(s.total_price)
        FROM sales_rollup s WHERE s.grain = %s AND s.location_id = ANY (ARRAY[%s]::uuid[]) AND s.bucket >= %s AND s.bucket < %s
        GROUP BY s.product_key'
business_days='SELECT b.product_key, sum(b.total_quantity)::bigint, sum(b.total_price)
        FROM business_day_sales b WHERE b.location_id = ANY (ARRAY[%s]::uuid[]) AND b.business_date BETWEEN %s AND %s
        GROUP BY b.product_key'
# The report's parts for the last 30 and 365 days, as reports::plan splits them.
day=$(value "SELECT days_until FROM sales_rollup_state")
[ -n "$day" ] || { echo "the rollup is empty: run db-admin rollup first" >&2; exit 1; }

explain "login: a user by email (users_email_key)" \
    "SELECT * FROM users WHERE email_key = '$email'"
explain "get an order: its row (orders_pkey)" \
    "SELECT * FROM orders WHERE id = '$order'"
explain "get an order: its lines (order_items_pkey)" \
    "SELECT * FROM order_items WHERE order_id = ANY (ARRAY['$order']::uuid[])"
explain "get an order: its payments (payments_order_id_created_at_idx)" \
    "SELECT * FROM payments WHERE order_id = '$order' ORDER BY created_at, id"
explain "list orders, first page (orders_created_at_id_idx)" \
    "SELECT * FROM orders ORDER BY created_at DESC, id DESC LIMIT 21"
explain "list orders, a page 50,000 orders deep (orders_created_at_id_idx)" \
    "SELECT * FROM orders WHERE created_at <= '$cur_at' AND (created_at < '$cur_at' OR (created_at = '$cur_at' AND id < '$cur_id'))
     ORDER BY created_at DESC, id DESC LIMIT 21"
explain "list one waiter's orders (orders_waiter_created_at_idx)" \
    "SELECT * FROM orders WHERE waiter_id = '$waiter' ORDER BY created_at DESC, id DESC LIMIT 21"
explain "list one location's orders (orders_location_created_at_idx)" \
    "SELECT * FROM orders WHERE location_id = '$location' ORDER BY created_at DESC, id DESC LIMIT 21"
explain "list open orders (orders_status_created_at_idx)" \
    "SELECT * FROM orders WHERE status = 'open' ORDER BY created_at DESC, id DESC LIMIT 21"
explain "list orders created in a range (orders_created_at_id_idx)" \
    "SELECT * FROM orders WHERE created_at >= '$day'::timestamptz - interval '3 days' AND created_at <= '$day'::timestamptz - interval '2 days'
     ORDER BY created_at DESC, id DESC LIMIT 21"
explain "report, 365 days: the whole days (sales_rollup_pkey, index only)" \
    "$(printf "$rollup" "'day'" "'$all'" "'$day'::timestamptz - interval '365 days'" "'$day'")"
explain "report, 30 days: the whole days (sales_rollup_pkey, index only)" \
    "$(printf "$rollup" "'day'" "'$all'" "'$day'::timestamptz - interval '30 days'" "'$day'")"
explain "report of one location, 30 days: the whole days (sales_rollup_pkey, index only)" \
    "$(printf "$rollup" "'day'" "'$location'" "'$day'::timestamptz - interval '30 days'" "'$day'")"
explain "report by business dates, 30 days, all locations (business_day_sales_pkey, index only)" \
    "$(printf "$business_days" "'$all'" "'$day'::date - 31" "'$day'::date - 2")"
explain "report: a live edge of 50 minutes (orders_created_at_id_idx, order_items_pkey)" \
    "$(printf "$live" "'$day'::timestamptz - interval '50 minutes'" "'$day'" "")"
explain "report for one waiter, 30 days, all live (orders_waiter_created_at_idx, order_items_pkey)" \
    "$(printf "$live" "'$day'::timestamptz - interval '30 days'" "'$day'" "AND o.waiter_id = '$waiter'")"
explain "purge idempotency keys older than 48 hours (idempotency_keys_created_at_idx)" \
    "DELETE FROM idempotency_keys WHERE created_at < now() - interval '48 hours'"
