-- Area scopes are byte ranges (storage/query.rs, `Sql::in_scope`). SQLite compares text bytewise
-- already; PostgreSQL's area columns are made to (its migration 12). Nothing changes here: the
-- number is kept so that both backends share one schema version.
SELECT 1;
