-- Purge the connection record: every connection row, its watch events and
-- the refusal counts. Kept: the agent's identity (its UUID), its policy
-- history, and its numbering (connection ids and event sequence numbers are
-- never handed out twice, so a console that saw id 41 before never sees
-- another 41). The file is rebuilt and its WAL emptied, so the purged rows
-- are not left in free pages. Run it with the agent stopped (README, "Data
-- and privacy"):
--   systemctl stop redirect-agent
--   sqlite3 /var/lib/redirect-agent/agent.db < /usr/share/redirect-agent/purge.sql
--   systemctl start redirect-agent
.bail on
BEGIN IMMEDIATE;
INSERT INTO agent_meta (key, value)
  SELECT 'pruned_id', max(id) FROM connections WHERE true HAVING max(id) IS NOT NULL
  ON CONFLICT (key) DO UPDATE
  SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER));
-- The export sinks start again after the purged events (nothing to ship).
UPDATE export_cursors
  SET acked_seq = max(acked_seq, (SELECT coalesce(max(seq), 0) FROM connection_events));
DELETE FROM connection_events;
DELETE FROM connections;
DELETE FROM refused_connections;
COMMIT;
VACUUM;
PRAGMA wal_checkpoint(TRUNCATE);
