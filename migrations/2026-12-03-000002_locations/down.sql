-- Back to one dining room. Refused while users hold the roles this migration brought, rather
-- than changing what they may do behind anyone's back.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE role IN ('manager', 'kitchen')) THEN
        RAISE EXCEPTION 'users with the role manager or kitchen exist: change or remove them before rolling back locations';
    END IF;
END
$$;

DROP TABLE product_names;
DROP TABLE business_day_sales;
DROP TABLE sales_rollup;
UPDATE sales_rollup_state SET minutes_until = NULL, hours_until = NULL, days_until = NULL;
CREATE TABLE sales_rollup (
    grain          text          NOT NULL CHECK (grain IN ('minute10', 'hour', 'day')),
    bucket         timestamptz   NOT NULL CHECK (bucket = CASE grain
                       WHEN 'minute10' THEN date_bin('10 minutes', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                       ELSE date_trunc(grain, bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END),
    product_key    text          NOT NULL CHECK (char_length(product_key) BETWEEN 1 AND 360),
    product_name   text          NOT NULL CHECK (char_length(product_name) BETWEEN 1 AND 120),
    total_quantity bigint        NOT NULL CHECK (total_quantity > 0),
    total_price    numeric(20,2) NOT NULL CHECK (total_price > 0),
    PRIMARY KEY (grain, bucket, product_key) INCLUDE (product_name, total_quantity, total_price)
)
WITH (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.01);

DROP INDEX orders_location_created_at_idx;
ALTER TABLE orders DROP COLUMN version, DROP COLUMN business_date, DROP COLUMN location_id;

DROP TRIGGER users_changed ON users;
DROP TRIGGER user_locations_changed ON user_locations;
DROP TRIGGER locations_changed ON locations;
DROP FUNCTION staff_directory_changed();
DROP TABLE staff_directory;

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'waiter'));

DROP TABLE user_locations;
DROP TABLE locations;
