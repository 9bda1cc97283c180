-- Sign-in attempts (issue #16), counted in the database so that every process of a cluster
-- shares one limit, and counted before the password is checked so that parallel attempts cannot
-- slip past it (storage/queries.py begin_login_attempt). An attempt is one row per limit it
-- counts against (`key`: the account, the account from one address, the address); a sign-in
-- that succeeds deletes its own rows and the failures of its account from its address.
CREATE TABLE login_attempts (
    id bigserial PRIMARY KEY,
    attempt text NOT NULL,
    key text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX login_attempts_key_at ON login_attempts (key, at);
CREATE INDEX login_attempts_attempt ON login_attempts (attempt);
