-- Canned replies (issue 17): a workspace's saved answers, found in the composer by typing "/"
-- and their shortcut or words of their text. A shortcut is unique in its workspace whatever its
-- case; the text holds {{visitor.name}}-style variables that the inbox fills in (never the server).
CREATE TABLE canned_replies (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    shortcut    text NOT NULL CHECK (shortcut ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'),
    text        text NOT NULL CHECK (length(text) BETWEEN 1 AND 5000),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX canned_replies_shortcut ON canned_replies (tenant_id, lower(shortcut));
