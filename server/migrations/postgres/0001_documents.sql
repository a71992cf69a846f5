-- Documents are stored as chunks: change chunks appended as they arrive, and snapshots that
-- compaction writes in place of the chunks they cover.
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE chunks (
    id          BIGSERIAL   PRIMARY KEY,
    document_id TEXT        NOT NULL,
    -- 1 = change chunk(s), 2 = snapshot
    kind        SMALLINT    NOT NULL,
    data        BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX chunks_by_document ON chunks (document_id, id);

-- Sync state per (document, peer storage id), so that a phone reconnecting with the same
-- storage starts from shared heads.
CREATE TABLE sync_states (
    document_id TEXT        NOT NULL,
    storage_id  TEXT        NOT NULL,
    state       BYTEA       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, storage_id)
);
