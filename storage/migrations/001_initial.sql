-- Curbe Chat: initial schema. Every timestamp is timestamptz, assigned by the server, in UTC.

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          text NOT NULL,
    name           text NOT NULL,
    avatar_url     text,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agents_email ON agents (lower(email));
CREATE INDEX agents_tenant ON agents (tenant_id);

-- Bearer tokens and session cookies of agents (only a SHA-256 of the token is stored).
CREATE TABLE agent_sessions (
    token_hash  bytea PRIMARY KEY,
    agent_id    text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE TABLE widgets (
    id                    text PRIMARY KEY,
    tenant_id             text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    domains               text[] NOT NULL DEFAULT '{}',
    wait_timeout_seconds  integer NOT NULL DEFAULT 60 CHECK (wait_timeout_seconds > 0),
    settings              jsonb NOT NULL DEFAULT '{}',
    last_seen_at          timestamptz,
    last_seen_domain      text,
    last_seen_url         text,
    last_refused_at       timestamptz,
    last_refused_domain   text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX widgets_tenant ON widgets (tenant_id);

-- One contact per visitor of a tenant. phone is only ever what a person typed.
CREATE TABLE contacts (
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    visitor_id   text NOT NULL,
    name         text,
    email        text,
    phone        text,
    ip           text,
    user_agent   text,
    current_url  text,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, visitor_id)
);

-- A visitor's browser session: identity (token) and presence (heartbeats).
CREATE TABLE visitor_sessions (
    visitor_id      text PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    widget_id       text NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    current_url     text,
    current_domain  text,
    page_title      text,
    referrer        text,
    ip              text,
    user_agent      text,
    location        text,
    conversation_id text
);
CREATE INDEX visitor_sessions_live ON visitor_sessions (tenant_id, last_seen_at);

CREATE TABLE conversations (
    id              text PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    widget_id       text NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    visitor_id      text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('live_chat', 'offline_message')),
    status          text NOT NULL CHECK (status IN ('WAITING', 'OPEN', 'SOLVED')),
    assignee_id     text REFERENCES agents (id) ON DELETE SET NULL,
    assignee_name   text,
    assignee_avatar text,
    last_seq        integer NOT NULL,
    wait_deadline   timestamptz,
    wait_timed_out  boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    solved_at       timestamptz
);
CREATE INDEX conversations_tenant_status ON conversations (tenant_id, status, updated_at DESC);
CREATE INDEX conversations_visitor ON conversations (visitor_id, created_at DESC);
CREATE INDEX conversations_wait_pending ON conversations (wait_deadline)
    WHERE status = 'WAITING' AND wait_deadline IS NOT NULL AND NOT wait_timed_out;

CREATE TABLE messages (
    id                 text PRIMARY KEY,
    conversation_id    text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id          text NOT NULL,
    seq                integer NOT NULL,
    sender_type        text NOT NULL CHECK (sender_type IN ('visitor', 'agent')),
    sender_id          text NOT NULL,
    sender_name        text,
    text               text NOT NULL,
    client_message_id  text,
    client_timestamp   text,
    created_at         timestamptz NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client_id
    ON messages (conversation_id, sender_type, sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;

-- Every conversation event with its seq: what `resume afterSeq` replays.
CREATE TABLE conversation_events (
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              integer NOT NULL,
    tenant_id        text NOT NULL,
    type             text NOT NULL,
    at               timestamptz NOT NULL,
    data             jsonb NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- The last snapshot of each actor's state, for rehydration and for operators.
CREATE TABLE actor_snapshots (
    kind        text NOT NULL,
    id          text NOT NULL,
    tenant_id   text,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, id)
);
