-- When the server first received each record (milliseconds since the Unix epoch): the
-- projection writes the server's time when a document's row is first written and keeps it on
-- every later rewrite (and through `fieldsync reindex`), so the activity feed can order by
-- arrival and the workbench can find records that arrived days after their own date.
-- Rows written before this migration take their `created_at`, the best time known.
ALTER TABLE visits ADD COLUMN received_at BIGINT;
ALTER TABLE referrals ADD COLUMN received_at BIGINT;
ALTER TABLE outreach ADD COLUMN received_at BIGINT;
UPDATE visits SET received_at = created_at;
UPDATE referrals SET received_at = created_at;
UPDATE outreach SET received_at = created_at;
CREATE INDEX visits_by_received ON visits (received_at, document_id);
CREATE INDEX referrals_by_received ON referrals (received_at, document_id);
CREATE INDEX outreach_by_received ON outreach (received_at, document_id);
