-- Several processes on one database (issue #14): who owns which actors, fenced.
--
-- Every actor lives in one of a fixed number of shards (engine/placement.py: crc32 of its id,
-- modulo the rows below). A process owns a shard while it holds that shard's lease: ``owner`` is
-- its node id, ``expires_at`` is set from this server's clock only (now() + the lease time) and
-- ``epoch`` goes up by one every time the lease changes hands. Every write an actor makes runs,
-- in its own transaction, ``SELECT ... FOR SHARE`` on its shard's row with the epoch it holds:
-- a takeover (an UPDATE of that row) waits for such a commit to end, and a commit after a
-- takeover finds another epoch and changes nothing. Two owners can never both commit.
CREATE TABLE IF NOT EXISTS shard_leases (
    shard integer PRIMARY KEY,
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);

INSERT INTO shard_leases (shard)
SELECT s FROM generate_series(0, 63) AS s
ON CONFLICT (shard) DO NOTHING;

-- The processes of the cluster, each renewing its row with its leases: how many are alive
-- decides each one's fair share of the shards.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now(),
    address text
);
