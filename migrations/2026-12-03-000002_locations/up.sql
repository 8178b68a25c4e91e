-- Locations (the restaurants of the group), the staff who work in each, and the orders'
-- location, business date and version. The sales rollup gains the location and the business
-- date, and is rebuilt from the orders.

CREATE TABLE locations (
    id                 uuid         PRIMARY KEY,
    name               text         NOT NULL CHECK (char_length(name) BETWEEN 1 AND 120 AND name = btrim(name)),
    -- The name case folded by the application: what makes names unique.
    name_key           text         NOT NULL CHECK (char_length(name_key) BETWEEN 1 AND 360),
    -- An IANA name; the application checks it against its own copy of the database (chrono-tz).
    time_zone          text         NOT NULL CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    -- Local time of day at which a business day starts, in whole minutes.
    business_day_start time         NOT NULL DEFAULT '00:00' CHECK (extract(second FROM business_day_start) = 0),
    tax_rate           numeric(6,3) NOT NULL DEFAULT 0 CHECK (tax_rate BETWEEN 0 AND 100),
    prices_include_tax boolean      NOT NULL DEFAULT true,
    created_at         timestamptz  NOT NULL,
    updated_at         timestamptz  NOT NULL CHECK (updated_at >= created_at)
);

CREATE UNIQUE INDEX locations_name_key ON locations (name_key);
-- The location list: newest first, keyset pagination.
CREATE INDEX locations_created_at_id_idx ON locations (created_at DESC, id DESC);

-- Who works where (admins work everywhere and have no rows).
CREATE TABLE user_locations (
    user_id     uuid NOT NULL REFERENCES users (id),
    location_id uuid NOT NULL REFERENCES locations (id),
    PRIMARY KEY (user_id, location_id)
);

CREATE INDEX user_locations_location_id_idx ON user_locations (location_id);

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'manager', 'waiter', 'kitchen'));

-- The version of the staff directory: every change to locations, to who works where and to
-- users moves it. Each process keeps the directory in memory, and an order's insert statement
-- checks that the version it was placed with is still this one.
CREATE TABLE staff_directory (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint  NOT NULL CHECK (version >= 1)
);

INSERT INTO staff_directory (version) VALUES (1);

CREATE FUNCTION staff_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE staff_directory SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER locations_changed AFTER INSERT OR UPDATE OR DELETE ON locations
    FOR EACH STATEMENT EXECUTE FUNCTION staff_directory_changed();
CREATE TRIGGER user_locations_changed AFTER INSERT OR UPDATE OR DELETE ON user_locations
    FOR EACH STATEMENT EXECUTE FUNCTION staff_directory_changed();
CREATE TRIGGER users_changed AFTER INSERT OR DELETE OR UPDATE OF role ON users
    FOR EACH STATEMENT EXECUTE FUNCTION staff_directory_changed();

-- The first location, named and placed by whoever runs the migrations (db-admin passes
-- DEFAULT_LOCATION_NAME and DEFAULT_TIME_ZONE through these settings; Main and UTC otherwise).
-- Every order so far belongs to it, and every user but the admins works in it. Its id is a
-- version 7 UUID like every other (the random bits of a version 4, a millisecond timestamp in
-- front, the version bits set to 7).
DO $$
DECLARE
    first_id   uuid := encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1), 'hex')::uuid;
    first_name text := coalesce(nullif(current_setting('comanda.first_location_name', true), ''), 'Main');
    first_key  text := coalesce(nullif(current_setting('comanda.first_location_key', true), ''), 'main');
    first_zone text := coalesce(nullif(current_setting('comanda.first_location_time_zone', true), ''), 'UTC');
BEGIN
    INSERT INTO locations (id, name, name_key, time_zone, created_at, updated_at)
    VALUES (first_id, first_name, first_key, first_zone, now(), now());
    INSERT INTO user_locations (user_id, location_id) SELECT id, first_id FROM users WHERE role <> 'admin';
    -- A constant default fills the existing rows without rewriting the table.
    EXECUTE format('ALTER TABLE orders ADD COLUMN location_id uuid NOT NULL DEFAULT %L REFERENCES locations (id)', first_id);
    ALTER TABLE orders ALTER COLUMN location_id DROP DEFAULT;
    -- Business dates of the orders so far: their date in the first location's zone, whose
    -- business day starts at midnight.
    ALTER TABLE orders ADD COLUMN business_date date;
    EXECUTE format('UPDATE orders SET business_date = (created_at AT TIME ZONE %L)::date', first_zone);
    ALTER TABLE orders ALTER COLUMN business_date SET NOT NULL;
END
$$;

ALTER TABLE orders ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- The order list of one location, newest first (every non-admin's list is scoped to their
-- locations).
CREATE INDEX orders_location_created_at_idx ON orders (location_id, created_at DESC, id DESC);

-- The rollup, again, by location. Each bucket has a row per location and product, and a row
-- per product for all locations together (location_id all zeros), so that a report of every
-- location reads as few rows as before. Cancelling an aggregated order subtracts it from the
-- rows it was added to (a row that falls to zero is deleted), so a product's name is no longer
-- kept per row: `product_names` holds one spelling per product.
DROP TABLE sales_rollup;
UPDATE sales_rollup_state SET minutes_until = NULL, hours_until = NULL, days_until = NULL;

CREATE TABLE sales_rollup (
    grain          text          NOT NULL CHECK (grain IN ('minute10', 'hour', 'day')),
    location_id    uuid          NOT NULL,
    bucket         timestamptz   NOT NULL CHECK (bucket = CASE grain
                       WHEN 'minute10' THEN date_bin('10 minutes', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                       ELSE date_trunc(grain, bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END),
    product_key    text          NOT NULL CHECK (char_length(product_key) BETWEEN 1 AND 360),
    total_quantity bigint        NOT NULL CHECK (total_quantity >= 0),
    total_price    numeric(20,2) NOT NULL CHECK (total_price >= 0),
    -- Covering: a report reads a range of buckets of one location with an index-only scan.
    PRIMARY KEY (grain, location_id, bucket, product_key) INCLUDE (total_quantity, total_price)
)
WITH (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.01);

-- Sales per business date, location (and all locations together, as above) and product, for
-- reports by business date: every order created before the rollup's ten-minute mark is in
-- here, whatever its business date.
CREATE TABLE business_day_sales (
    location_id    uuid          NOT NULL,
    business_date  date          NOT NULL,
    product_key    text          NOT NULL CHECK (char_length(product_key) BETWEEN 1 AND 360),
    total_quantity bigint        NOT NULL CHECK (total_quantity >= 0),
    total_price    numeric(20,2) NOT NULL CHECK (total_price >= 0),
    PRIMARY KEY (location_id, business_date, product_key) INCLUDE (total_quantity, total_price)
)
WITH (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.01);

-- The spelling a report shows for each product: the smallest (byte order) among the lines of
-- the first aggregated period that had the product. Written once, by the rollup.
CREATE TABLE product_names (
    product_key  text PRIMARY KEY CHECK (char_length(product_key) BETWEEN 1 AND 360),
    product_name text NOT NULL CHECK (char_length(product_name) BETWEEN 1 AND 120)
);
