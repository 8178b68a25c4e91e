-- Which version of the application's key functions the stored keys were made with: the
-- product keys of order lines (and of the sales rollup) and the email keys of users. Those
-- functions are Unicode normalization, case folding and confusable data that SQL does not
-- have, so the application itself rewrites the keys after the migrations whenever its version
-- is newer than this one (crates/infrastructure/src/text_keys.rs). Version 1: lower-casing.
CREATE TABLE text_keys (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version integer NOT NULL CHECK (version >= 1)
);

INSERT INTO text_keys (version) VALUES (1);
