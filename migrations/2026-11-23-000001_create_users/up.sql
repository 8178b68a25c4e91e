-- Staff users. Never updated, except that a login may replace a password hash by a stronger
-- hash of the same password.
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND email = btrim(email)),
    -- The email lower-cased by the application (Unicode-aware, unlike lower() under the C
    -- locale): what makes emails unique and what a login looks up.
    email_key     text        NOT NULL CHECK (char_length(email_key) BETWEEN 3 AND 254),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 2 AND 100 AND name = btrim(name)),
    role          text        NOT NULL CHECK (role IN ('admin', 'waiter')),
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL
);

-- Emails are unique without regard to case.
CREATE UNIQUE INDEX users_email_key ON users (email_key);
-- The user list: newest first, keyset pagination.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);
