-- One writer per invariant, with the database as backstop (issue #11). Safe to run again.

-- A visitor has at most one live chat that is not SOLVED. The visitor-session actor keeps the
-- rule (start chat and agent-started chat are its commands); the index below refuses whatever
-- slips past it (a reopen racing a start). Before this release a race could leave two: the
-- older ones are solved now, the newest kept, each with the conversation_status_changed event
-- a client resuming by seq needs to learn it.
CREATE TEMPORARY TABLE curbe_006_duplicates ON COMMIT DROP AS
SELECT c.id, c.status AS was, now() AS at
  FROM conversations c
 WHERE c.kind = 'live_chat' AND c.status <> 'SOLVED'
   AND EXISTS (
       SELECT 1 FROM conversations d
        WHERE d.tenant_id = c.tenant_id AND d.visitor_id = c.visitor_id
          AND d.kind = 'live_chat' AND d.status <> 'SOLVED'
          AND (d.created_at, d.id) > (c.created_at, c.id));

UPDATE conversations c
   SET status = 'SOLVED', solved_at = d.at, updated_at = d.at, wait_deadline = NULL,
       last_seq = c.last_seq + 1
  FROM curbe_006_duplicates d
 WHERE c.id = d.id;

INSERT INTO conversation_events (conversation_id, seq, tenant_id, type, at, data)
SELECT c.id, c.last_seq, c.tenant_id, 'conversation_status_changed', d.at,
       jsonb_build_object(
           'from', d.was,
           'to', 'SOLVED',
           'conversation', jsonb_build_object(
               'id', c.id, 'tenantId', c.tenant_id, 'widgetId', c.widget_id,
               'visitorId', c.visitor_id, 'kind', c.kind, 'status', c.status,
               'assignee', CASE WHEN c.assignee_id IS NULL THEN NULL ELSE jsonb_build_object(
                   'id', c.assignee_id, 'name', c.assignee_name,
                   'avatarUrl', c.assignee_avatar) END,
               'createdAt', to_char(c.created_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'updatedAt', to_char(c.updated_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'solvedAt', to_char(c.solved_at AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'waitDeadline', NULL,
               'waitTimedOut', c.wait_timed_out,
               'lastSeq', c.last_seq))
  FROM conversations c JOIN curbe_006_duplicates d ON d.id = c.id;

CREATE UNIQUE INDEX IF NOT EXISTS conversations_one_active_live_chat
    ON conversations (tenant_id, visitor_id)
    WHERE kind = 'live_chat' AND status <> 'SOLVED';

-- visitor_sessions.conversation_id is the visitor's active live chat, written only by the
-- conversation commits that start, reopen or solve it: point every session at its active chat,
-- or at none.
UPDATE visitor_sessions v
   SET conversation_id = (
       SELECT c.id FROM conversations c
        WHERE c.tenant_id = v.tenant_id AND c.visitor_id = v.visitor_id
          AND c.kind = 'live_chat' AND c.status <> 'SOLVED')
 WHERE conversation_id IS DISTINCT FROM (
       SELECT c.id FROM conversations c
        WHERE c.tenant_id = v.tenant_id AND c.visitor_id = v.visitor_id
          AND c.kind = 'live_chat' AND c.status <> 'SOLVED');

-- actor_snapshots was never written: an actor's state is its rows (docs/architecture.md).
DROP TABLE IF EXISTS actor_snapshots;
