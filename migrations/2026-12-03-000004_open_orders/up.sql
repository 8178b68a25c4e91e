-- Open orders and the kitchen: lines get an id of their own (their number in the order) and can
-- be voided; new lines go to the kitchen as tickets, numbered per location and business day;
-- every change of a ticket is an event of its location's stream.

-- Lines added by later requests never merge with earlier ones, so a product may now have many
-- lines in one order: a line is known by its number. Voided lines stay on the order, so more
-- lines than the 100 live ones may accumulate (up to 500).
ALTER TABLE order_items DROP CONSTRAINT order_items_pkey;
ALTER TABLE order_items ADD PRIMARY KEY (order_id, line_no);
ALTER TABLE order_items DROP CONSTRAINT order_items_line_no_check;
ALTER TABLE order_items ADD CONSTRAINT order_items_line_no_check CHECK (line_no BETWEEN 1 AND 500);

-- An order whose lines are all voided totals 0.00.
ALTER TABLE orders DROP CONSTRAINT orders_total_price_check;
ALTER TABLE orders ADD CONSTRAINT orders_total_price_check CHECK (total_price >= 0 AND total_price <= 1000000000000);

CREATE TABLE kitchen_tickets (
    id            uuid        PRIMARY KEY,
    order_id      uuid        NOT NULL REFERENCES orders (id),
    location_id   uuid        NOT NULL REFERENCES locations (id),
    -- The location's business day when the ticket was sent: its number counts within it.
    business_date date        NOT NULL,
    number        integer     NOT NULL CHECK (number >= 1),
    status        text        NOT NULL CHECK (status IN ('open', 'ready', 'served')),
    created_at    timestamptz NOT NULL,
    ready_at      timestamptz CHECK (ready_at >= created_at),
    served_at     timestamptz CHECK (served_at >= ready_at),
    CONSTRAINT kitchen_tickets_status_times CHECK (
           (status = 'open' AND ready_at IS NULL AND served_at IS NULL)
        OR (status = 'ready' AND ready_at IS NOT NULL AND served_at IS NULL)
        OR (status = 'served' AND ready_at IS NOT NULL AND served_at IS NOT NULL)
    ),
    CONSTRAINT kitchen_tickets_number_key UNIQUE (location_id, business_date, number)
);

-- The kitchen's queue: a location's tickets of one status, oldest first.
CREATE INDEX kitchen_tickets_queue_idx ON kitchen_tickets (location_id, status, created_at, id);
-- An order's tickets.
CREATE INDEX kitchen_tickets_order_id_idx ON kitchen_tickets (order_id);

-- The last ticket number of each location and business day. Taking a number updates the row,
-- whose lock is held until the ticket commits: numbers are never skipped (a rolled-back ticket
-- gives its number back) nor repeated.
CREATE TABLE kitchen_ticket_numbers (
    location_id   uuid    NOT NULL REFERENCES locations (id),
    business_date date    NOT NULL,
    last_number   integer NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (location_id, business_date)
);

-- Tickets are never deleted (no route does, and this refuses it in the database): it stands in
-- for a foreign key from `order_items.ticket_id`, whose check would run for every line the
-- order writer inserts (PostgreSQL queues a foreign key's check for each inserted row, even
-- one whose key is null). Users are never deleted either, for `voided_by`.
CREATE FUNCTION kitchen_tickets_are_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kitchen tickets are never deleted' USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER kitchen_tickets_never_deleted BEFORE DELETE ON kitchen_tickets
    FOR EACH ROW EXECUTE FUNCTION kitchen_tickets_are_never_deleted();

ALTER TABLE order_items
    -- The order's version that added the line: 1 for the lines placed with the order (the
    -- default, so the order writer's insert does not change), the version after the change for
    -- lines added later.
    ADD COLUMN added_in    integer NOT NULL DEFAULT 1 CHECK (added_in >= 1),
    -- The ticket that took the line to the kitchen (see above: no foreign key).
    ADD COLUMN ticket_id   uuid,
    ADD COLUMN voided_at   timestamptz,
    ADD COLUMN voided_by   uuid,
    ADD COLUMN void_reason text CHECK (char_length(void_reason) BETWEEN 1 AND 200 AND void_reason = btrim(void_reason)),
    ADD CONSTRAINT order_items_void CHECK (
        (voided_at IS NULL AND voided_by IS NULL AND void_reason IS NULL)
        OR (voided_at IS NOT NULL AND voided_by IS NOT NULL AND void_reason IS NOT NULL)
    );

-- The kitchen's events, per location: `id` counts from 1 in each location. The counter row of
-- `kitchen_streams` is updated by every event and locked until its transaction ends, so the
-- events of one location commit in the order of their ids: a reader that has seen id n and
-- finds n + 1 committed can never later find an id below it (no event is skipped).
CREATE TABLE kitchen_streams (
    location_id uuid   PRIMARY KEY REFERENCES locations (id),
    last_event  bigint NOT NULL CHECK (last_event >= 1)
);

CREATE TABLE kitchen_events (
    location_id uuid        NOT NULL,
    id          bigint      NOT NULL CHECK (id >= 1),
    ticket_id   uuid        NOT NULL REFERENCES kitchen_tickets (id),
    kind        text        NOT NULL CHECK (kind IN ('ticket.created', 'ticket.updated')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (location_id, id)
);

-- Forgetting events past their retention.
CREATE INDEX kitchen_events_created_at_idx ON kitchen_events (created_at);

-- Records an event of `ticket` in its location's stream, and wakes the listeners (NOTIFY is
-- delivered at commit, once per transaction).
CREATE FUNCTION kitchen_event(location uuid, ticket uuid, kind text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    next_id bigint;
BEGIN
    INSERT INTO kitchen_streams AS s (location_id, last_event) VALUES (location, 1)
        ON CONFLICT (location_id) DO UPDATE SET last_event = s.last_event + 1
        RETURNING last_event INTO next_id;
    INSERT INTO kitchen_events (location_id, id, ticket_id, kind, created_at)
        VALUES (location, next_id, ticket, kind, clock_timestamp());
    PERFORM pg_notify('kitchen_events', '');
END
$$;

-- Every change of a ticket is an event, whatever statement made it.
CREATE FUNCTION kitchen_ticket_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kitchen_event(NEW.location_id, NEW.id,
        CASE TG_OP WHEN 'INSERT' THEN 'ticket.created' ELSE 'ticket.updated' END);
    RETURN NULL;
END
$$;

CREATE TRIGGER kitchen_ticket_created AFTER INSERT ON kitchen_tickets
    FOR EACH ROW EXECUTE FUNCTION kitchen_ticket_changed();
CREATE TRIGGER kitchen_ticket_updated AFTER UPDATE ON kitchen_tickets
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION kitchen_ticket_changed();

-- A void of a line already on a ticket changes the ticket: one event per ticket and statement.
CREATE FUNCTION kitchen_lines_voided() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed record;
BEGIN
    FOR changed IN
        SELECT DISTINCT t.location_id, t.id
        FROM new_lines n
        JOIN old_lines o ON o.order_id = n.order_id AND o.line_no = n.line_no
        JOIN kitchen_tickets t ON t.id = n.ticket_id
        WHERE o.voided_at IS NULL AND n.voided_at IS NOT NULL
        ORDER BY t.location_id, t.id
    LOOP
        PERFORM kitchen_event(changed.location_id, changed.id, 'ticket.updated');
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER kitchen_lines_voided AFTER UPDATE ON order_items
    REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION kitchen_lines_voided();
