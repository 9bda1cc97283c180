-- Unread is per agent: the highest seq each agent has seen of each conversation.
CREATE TABLE conversation_reads (
    agent_id         text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    last_read_seq    integer NOT NULL CHECK (last_read_seq >= 0),
    read_at          timestamptz NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
);
