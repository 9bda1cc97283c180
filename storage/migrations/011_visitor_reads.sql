-- Seen (issue 17): the visitor's read mark of each conversation, beside the agents'
-- (conversation_reads, 004). A seq like theirs: it only moves forward (GREATEST), is compared
-- with a message's seq directly, and is deleted with the conversation.
CREATE TABLE visitor_reads (
    conversation_id  text PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    last_read_seq    integer NOT NULL CHECK (last_read_seq >= 0),
    read_at          timestamptz NOT NULL
);
