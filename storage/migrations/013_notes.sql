-- Internal notes (issue 17): what agents write in a conversation for each other. Kept apart from
-- messages and from the conversation's event log on purpose: a note takes no seq (a visitor's
-- stream would otherwise hold a hole it can never fill) and no visitor path reads this table.
CREATE TABLE conversation_notes (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    author_id        text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    author_name      text NOT NULL,
    text             text NOT NULL CHECK (length(text) BETWEEN 1 AND 5000),
    client_note_id   text,
    created_at       timestamptz NOT NULL,
    UNIQUE (author_id, client_note_id)
);
CREATE INDEX conversation_notes_conversation ON conversation_notes (conversation_id, created_at);

-- A colleague named in a note (@Ana Ruiz, or @Ana when no other agent is called Ana).
CREATE TABLE note_mentions (
    note_id   text NOT NULL REFERENCES conversation_notes (id) ON DELETE CASCADE,
    agent_id  text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (note_id, agent_id)
);
CREATE INDEX note_mentions_agent ON note_mentions (agent_id);
