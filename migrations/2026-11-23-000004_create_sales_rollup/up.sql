-- Sales per product per closed hour and per closed day, kept outside the write path: a
-- background job adds each hour and day once it is over (plus a safety lag), and cancelling
-- an order of an aggregated period recomputes that period's rows for the order's products.
-- The report reads whole days and hours from here and only the open tail from the orders.
CREATE TABLE sales_rollup (
    grain          text          NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket         timestamptz   NOT NULL CHECK (bucket = date_trunc(grain, bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    product_key    text          NOT NULL CHECK (char_length(product_key) BETWEEN 1 AND 360),
    -- The smallest spelling (byte order) of the product's lines in the bucket.
    product_name   text          NOT NULL CHECK (char_length(product_name) BETWEEN 1 AND 120),
    total_quantity bigint        NOT NULL CHECK (total_quantity > 0),
    total_price    numeric(20,2) NOT NULL CHECK (total_price > 0),
    -- Covering: a report reads a range of buckets with an index-only scan, never the heap.
    PRIMARY KEY (grain, bucket, product_key) INCLUDE (product_name, total_quantity, total_price)
);

-- How far each grain is aggregated: every bucket before the mark is in sales_rollup.
CREATE TABLE sales_rollup_state (
    id          boolean     PRIMARY KEY DEFAULT true CHECK (id),
    hours_until timestamptz CHECK (hours_until = date_trunc('hour', hours_until AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    days_until  timestamptz CHECK (days_until = date_trunc('day', days_until AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    CHECK (days_until IS NULL OR (hours_until IS NOT NULL AND days_until <= hours_until))
);

INSERT INTO sales_rollup_state (id) VALUES (true);
