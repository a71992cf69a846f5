-- Area scopes are byte ranges (storage/query.rs, `Sql::in_scope`): a code is below `32.77` when
-- it lies between `32.77.` and `32.77/`. That holds in byte order, not in every locale's (some
-- ignore the dots), so the area columns compare bytewise whatever the database's locale; their
-- indexes are rebuilt in that order and then serve the scopes.
ALTER TABLE visits ALTER COLUMN area TYPE TEXT COLLATE "C";
ALTER TABLE referrals ALTER COLUMN area TYPE TEXT COLLATE "C";
ALTER TABLE outreach ALTER COLUMN area TYPE TEXT COLLATE "C";
