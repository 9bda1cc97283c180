-- Rating (issue 17): what the visitor thought of a solved chat, 1 to 5 and an optional comment;
-- one per conversation (rating again replaces it), deleted with the conversation.
CREATE TABLE conversation_ratings (
    conversation_id  text PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    score            smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment          text CHECK (length(comment) <= 1000),
    rated_at         timestamptz NOT NULL
);
