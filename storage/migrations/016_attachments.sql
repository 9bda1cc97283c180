-- Files and images (issue 17). A message's files are part of it: their description (the wire
-- form of engine.values.Attachment: id, name, contentType, size, width, height, thumbnail) is
-- a column of the message, NULL when it has none, and their bytes live in the file store under
-- the attachment's id (storage/files.py), reached through the conversation's routes only.
ALTER TABLE messages ADD COLUMN attachments jsonb;

-- Files the janitor (web/janitor.py) removes from the store once due. An upload is recorded
-- here, due an hour later, before its bytes are written; the commit of its message removes
-- the row in the same transaction, so a file whose message never got stored (a crash, a
-- refusal) is removed at the latest an hour later. A message deleted (its conversation
-- or workspace deleted: cascades included) records its files here, due at once.
CREATE TABLE file_deletions (
    attachment_id  text PRIMARY KEY,
    tenant_id      text NOT NULL,
    due_at         timestamptz NOT NULL
);
CREATE INDEX file_deletions_due ON file_deletions (due_at);

CREATE OR REPLACE FUNCTION curbe_message_files_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO file_deletions (attachment_id, tenant_id, due_at)
    SELECT a->>'id', OLD.tenant_id, now() FROM jsonb_array_elements(OLD.attachments) AS a
    ON CONFLICT (attachment_id) DO UPDATE SET due_at = EXCLUDED.due_at;
    RETURN OLD;
END
$$;

CREATE TRIGGER messages_files_deleted AFTER DELETE ON messages
    FOR EACH ROW WHEN (OLD.attachments IS NOT NULL)
    EXECUTE FUNCTION curbe_message_files_deleted();
