-- The menu: categories, items, each item's prices over time, and what each location has sold
-- out ("86"). Order lines gain the menu item they were ordered from (with its category as it
-- was then) and a note for the kitchen.

CREATE TABLE menu_categories (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 120 AND name = btrim(name)),
    -- The name folded by the application (as product names are): what makes names unique.
    name_key   text        NOT NULL UNIQUE CHECK (char_length(name_key) BETWEEN 1 AND 360),
    -- Where the category comes in a menu: smallest first, then by name.
    position   integer     NOT NULL DEFAULT 0 CHECK (position BETWEEN 0 AND 10000),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= created_at)
);

-- Items are never deleted: a retired item is `active = false`. Its current price is the open
-- row of `menu_item_prices`.
CREATE TABLE menu_items (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 120 AND name = btrim(name)),
    name_key    text        NOT NULL CHECK (char_length(name_key) BETWEEN 1 AND 360),
    category_id uuid        NOT NULL REFERENCES menu_categories (id),
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL CHECK (updated_at >= created_at)
);

-- Names are unique, ignoring case, among the active items only: a retired name may be reused.
CREATE UNIQUE INDEX menu_items_active_name_key ON menu_items (name_key) WHERE active;
CREATE INDEX menu_items_category_id_idx ON menu_items (category_id);

-- Every price an item has had: from `valid_from` until `valid_to` (exclusive; null for the
-- current price). A change closes the open row and opens the next at the same instant.
CREATE TABLE menu_item_prices (
    menu_item_id uuid         NOT NULL REFERENCES menu_items (id),
    price        numeric(9,2) NOT NULL CHECK (price > 0 AND price <= 1000000),
    valid_from   timestamptz  NOT NULL,
    valid_to     timestamptz  CHECK (valid_to > valid_from),
    PRIMARY KEY (menu_item_id, valid_from)
);

-- One current price per item.
CREATE UNIQUE INDEX menu_item_prices_current ON menu_item_prices (menu_item_id) WHERE valid_to IS NULL;

-- Sold out ("86") in one location, until a manager clears it.
CREATE TABLE sold_out_items (
    location_id  uuid        NOT NULL REFERENCES locations (id),
    menu_item_id uuid        NOT NULL REFERENCES menu_items (id),
    marked_by    uuid        NOT NULL REFERENCES users (id),
    since        timestamptz NOT NULL,
    PRIMARY KEY (location_id, menu_item_id)
);

-- The version of the menu: every change to categories, items, prices and sold-out flags moves
-- it. Each process keeps the menu in memory to price new lines, and an order's insert statement
-- checks that the version it was priced with is still this one (as with `staff_directory`).
CREATE TABLE menu_version (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint  NOT NULL CHECK (version >= 1)
);

INSERT INTO menu_version (version) VALUES (1);

CREATE FUNCTION menu_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE menu_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER menu_categories_changed AFTER INSERT OR UPDATE OR DELETE ON menu_categories
    FOR EACH STATEMENT EXECUTE FUNCTION menu_changed();
CREATE TRIGGER menu_items_changed AFTER INSERT OR UPDATE OR DELETE ON menu_items
    FOR EACH STATEMENT EXECUTE FUNCTION menu_changed();
CREATE TRIGGER menu_item_prices_changed AFTER INSERT OR UPDATE OR DELETE ON menu_item_prices
    FOR EACH STATEMENT EXECUTE FUNCTION menu_changed();
CREATE TRIGGER sold_out_items_changed AFTER INSERT OR UPDATE OR DELETE ON sold_out_items
    FOR EACH STATEMENT EXECUTE FUNCTION menu_changed();

-- Items and categories are never deleted (no route deletes them, and order lines point to
-- them): refused here too. This stands in for foreign keys from `order_items`, whose checks
-- would lock the referenced item and category rows for every line inserted (`FOR KEY SHARE`:
-- concurrent orders of one popular item then share those locks through multixacts), a cost
-- measured on the order writer's statement; see docs/ARCHITECTURE.md.
CREATE FUNCTION menu_rows_are_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'menu items and categories are never deleted (retire an item with active = false)'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER menu_items_never_deleted BEFORE DELETE ON menu_items
    FOR EACH ROW EXECUTE FUNCTION menu_rows_are_never_deleted();
CREATE TRIGGER menu_categories_never_deleted BEFORE DELETE ON menu_categories
    FOR EACH ROW EXECUTE FUNCTION menu_rows_are_never_deleted();

-- A menu line: the item, its category and the category's name as they were when the line was
-- added (the name and price are the line's own columns). Its product key is `MENU:` and the
-- item's id: a folded name never holds a capital letter, so no open line's key can look like
-- one, and the report and the rollup count the item's lines together whatever it was called.
-- The ids come from the menu the order was priced from, whose version the order's statement
-- checks; the rows they name are never deleted (above).
ALTER TABLE order_items
    ADD COLUMN menu_item_id uuid,
    ADD COLUMN category_id  uuid,
    ADD COLUMN category     text CHECK (char_length(category) BETWEEN 1 AND 120),
    -- What the kitchen should know (no onions); counted in characters after the text rule.
    ADD COLUMN note         text CHECK (char_length(note) BETWEEN 1 AND 200 AND note = btrim(note)),
    ADD CONSTRAINT order_items_menu_line CHECK (
        CASE WHEN menu_item_id IS NULL
             THEN category_id IS NULL AND category IS NULL AND product_key !~ '^MENU:'
             ELSE category_id IS NOT NULL AND category IS NOT NULL AND product_key = 'MENU:' || menu_item_id::text
        END) NOT VALID;

ALTER TABLE order_items VALIDATE CONSTRAINT order_items_menu_line;
