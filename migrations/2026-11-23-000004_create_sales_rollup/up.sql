-- Sales per product per closed ten minutes, hour and day, kept outside the write path: a
-- background job adds each period once it is over (plus a safety lag), and cancelling an order
-- of an aggregated period recomputes that period's rows for the order's products. The report
-- reads whole days, hours and ten-minute periods from here and only the open tail (a few
-- minutes) and the range's ragged edges from the orders.
CREATE TABLE sales_rollup (
    grain          text          NOT NULL CHECK (grain IN ('minute10', 'hour', 'day')),
    bucket         timestamptz   NOT NULL CHECK (bucket = CASE grain
                       WHEN 'minute10' THEN date_bin('10 minutes', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                       ELSE date_trunc(grain, bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END),
    product_key    text          NOT NULL CHECK (char_length(product_key) BETWEEN 1 AND 360),
    -- The smallest spelling (byte order) of the product's lines in the bucket.
    product_name   text          NOT NULL CHECK (char_length(product_name) BETWEEN 1 AND 120),
    total_quantity bigint        NOT NULL CHECK (total_quantity > 0),
    total_price    numeric(20,2) NOT NULL CHECK (total_price > 0),
    -- Covering: a report reads a range of buckets with an index-only scan, never the heap.
    PRIMARY KEY (grain, bucket, product_key) INCLUDE (product_name, total_quantity, total_price)
)
-- Index-only scans need the visibility map: vacuum soon after each batch of new rows.
WITH (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.01);

-- How far each grain is aggregated: every bucket before its mark is in sales_rollup. Coarser
-- grains are built from finer ones, so their marks never pass the finer marks.
CREATE TABLE sales_rollup_state (
    id            boolean     PRIMARY KEY DEFAULT true CHECK (id),
    minutes_until timestamptz CHECK (minutes_until = date_bin('10 minutes', minutes_until, TIMESTAMPTZ '2000-01-01 00:00:00+00')),
    hours_until   timestamptz CHECK (hours_until = date_trunc('hour', hours_until AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    days_until    timestamptz CHECK (days_until = date_trunc('day', days_until AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    CHECK (hours_until IS NULL OR (minutes_until IS NOT NULL AND hours_until <= minutes_until)),
    CHECK (days_until IS NULL OR (hours_until IS NOT NULL AND days_until <= hours_until))
);

INSERT INTO sales_rollup_state (id) VALUES (true);
