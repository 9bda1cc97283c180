-- The fence as one function (issue #14): lock the leases of the shards an actor's write touches
-- (FOR SHARE, in shard order, as the lease keeper locks them, so the two never deadlock) and
-- raise unless this node still holds each with the epoch it wrote under. A takeover updates
-- those rows, so it waits until the write's transaction ends; a write after a takeover raises
-- here and changes nothing.
--
-- A function rather than statements sent by the server, so that a lone write's BEGIN and fence
-- go to PostgreSQL in one round trip (storage/db.py: BEGIN; SELECT curbe_fence(...), the write,
-- COMMIT), where they were two. SQLSTATE CU001 carries the stale shards in its DETAIL.
CREATE OR REPLACE FUNCTION curbe_fence(node text, shards integer[], epochs bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    stale integer[];
BEGIN
    PERFORM 1 FROM shard_leases WHERE shard = ANY(shards) ORDER BY shard FOR SHARE;
    SELECT array_agg(w.shard ORDER BY w.shard) INTO stale
      FROM unnest(shards, epochs) AS w(shard, epoch)
     WHERE NOT EXISTS (
           SELECT 1 FROM shard_leases l
            WHERE l.shard = w.shard AND l.owner = node AND l.epoch = w.epoch);
    IF stale IS NOT NULL THEN
        RAISE EXCEPTION 'stale lease' USING ERRCODE = 'CU001',
            DETAIL = array_to_string(stale, ',');
    END IF;
END
$$;
