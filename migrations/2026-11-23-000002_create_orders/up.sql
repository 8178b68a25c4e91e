-- Orders, their lines, and the idempotency keys of the requests that created them.
CREATE TABLE orders (
    id            uuid          PRIMARY KEY,
    customer_name text          NOT NULL CHECK (char_length(customer_name) BETWEEN 1 AND 120 AND customer_name = btrim(customer_name)),
    waiter_id     uuid          NOT NULL REFERENCES users (id),
    status        text          NOT NULL CHECK (status IN ('open', 'partially_paid', 'paid', 'cancelled')),
    total_price   numeric(15,2) NOT NULL CHECK (total_price > 0 AND total_price <= 1000000000000),
    amount_paid   numeric(15,2) NOT NULL DEFAULT 0 CHECK (amount_paid >= 0 AND amount_paid <= total_price),
    created_at    timestamptz   NOT NULL,
    updated_at    timestamptz   NOT NULL CHECK (updated_at >= created_at),
    -- The stored amounts agree with the status: paid exactly when everything is paid.
    CONSTRAINT orders_status_amounts CHECK (
           (status IN ('open', 'cancelled') AND amount_paid = 0)
        OR (status = 'partially_paid' AND amount_paid > 0 AND amount_paid < total_price)
        OR (status = 'paid' AND amount_paid = total_price)
    )
);

-- The order list, newest first (keyset on created_at, id), unfiltered or by created_* ranges,
-- and the live part of the sales report (orders in a time range).
CREATE INDEX orders_created_at_id_idx ON orders (created_at DESC, id DESC);
-- The order list filtered by waiter, and the report for one waiter.
CREATE INDEX orders_waiter_created_at_idx ON orders (waiter_id, created_at DESC, id DESC);
-- The order list filtered by status.
CREATE INDEX orders_status_created_at_idx ON orders (status, created_at DESC, id DESC);

CREATE TABLE order_items (
    order_id     uuid          NOT NULL REFERENCES orders (id),
    -- The line's position in the order as placed (after merging), from 1.
    line_no      smallint      NOT NULL CHECK (line_no BETWEEN 1 AND 100),
    -- What makes two names the same product (normalized, lower-cased); the report groups by it.
    -- Lower-casing can lengthen a name (U+0130 becomes two characters): up to 3 per character.
    product_key  text          NOT NULL CHECK (char_length(product_key) BETWEEN 1 AND 360),
    product_name text          NOT NULL CHECK (char_length(product_name) BETWEEN 1 AND 120 AND product_name = btrim(product_name)),
    unit_price   numeric(9,2)  NOT NULL CHECK (unit_price > 0 AND unit_price <= 1000000),
    quantity     integer       NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    subtotal     numeric(14,2) NOT NULL CHECK (subtotal = unit_price * quantity),
    -- One line per product in an order: the merge rule, guarded here too.
    PRIMARY KEY (order_id, product_key)
);

CREATE TABLE idempotency_keys (
    user_id     uuid        NOT NULL REFERENCES users (id),
    key         text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 of what the request asked for, after parsing.
    fingerprint bytea       NOT NULL CHECK (length(fingerprint) = 32),
    -- What the first request created (an order or a payment).
    resource_id uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Purging keys older than the retention.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
