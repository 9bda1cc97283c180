-- The keys that sign visitor tokens, by key id (web/auth.py VisitorTokens): the newest key not
-- retired signs, every key not retired verifies, so a key can be rotated without logging any
-- visitor out, then retired once the tokens it signed have been renewed.
CREATE TABLE visitor_token_keys (
    kid         text PRIMARY KEY CHECK (kid ~ '^[a-z0-9]{1,16}$'),
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

-- The key that signed every token so far (vt1: no key id, no expiry) becomes key v1: it still
-- verifies those tokens, and signs the first expiring ones, so the upgrade logs no visitor out.
INSERT INTO visitor_token_keys (kid, secret, created_at)
SELECT 'v1', value, created_at FROM server_secrets WHERE name = 'visitor_token_key';
