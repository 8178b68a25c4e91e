-- Payments: immutable records of money received for an order.
CREATE TABLE payments (
    id          uuid          PRIMARY KEY,
    order_id    uuid          NOT NULL REFERENCES orders (id),
    amount      numeric(15,2) NOT NULL CHECK (amount > 0 AND amount <= 1000000000000),
    method      text          NOT NULL CHECK (method IN ('cash', 'card', 'other')),
    recorded_by uuid          NOT NULL REFERENCES users (id),
    created_at  timestamptz   NOT NULL
);

-- An order's payments, oldest first.
CREATE INDEX payments_order_id_created_at_idx ON payments (order_id, created_at, id);
