-- One writer per invariant, with the database as backstop (issue #11).

-- A visitor has at most one live chat that is not SOLVED. The visitor-session actor keeps the
-- rule (start chat and agent-started chat are its commands); this index refuses whatever slips
-- past it (a reopen racing a start). Before this release a race could leave two: the older ones
-- are solved first, the newest kept.
UPDATE conversations c
   SET status = 'SOLVED', solved_at = now(), updated_at = now(), wait_deadline = NULL
 WHERE c.kind = 'live_chat' AND c.status <> 'SOLVED'
   AND EXISTS (
       SELECT 1 FROM conversations d
        WHERE d.tenant_id = c.tenant_id AND d.visitor_id = c.visitor_id
          AND d.kind = 'live_chat' AND d.status <> 'SOLVED'
          AND (d.created_at, d.id) > (c.created_at, c.id));
CREATE UNIQUE INDEX conversations_one_active_live_chat
    ON conversations (tenant_id, visitor_id)
    WHERE kind = 'live_chat' AND status <> 'SOLVED';

-- visitor_sessions.conversation_id is the visitor's active live chat, written only by the
-- conversation commits that start, reopen or solve it; clear the links that point at a chat
-- no longer active.
UPDATE visitor_sessions v SET conversation_id = NULL
 WHERE conversation_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM conversations c
                    WHERE c.id = v.conversation_id AND c.status <> 'SOLVED');

-- actor_snapshots was never written: an actor's state is its rows (docs/architecture.md).
DROP TABLE actor_snapshots;
