-- Query tables derived from field documents (server/src/projection.rs). Each is rewritten in
-- the transaction that stores the change producing it; `fieldsync reindex` rebuilds them.
-- Times are milliseconds since the Unix epoch (UTC).

-- The chunk each document's rows were computed from: a rebuild never overwrites rows that a
-- newer change already wrote.
CREATE TABLE projection_sources (
    document_id TEXT   PRIMARY KEY,
    chunk_id    BIGINT NOT NULL
);

CREATE TABLE visits (
    document_id   TEXT    PRIMARY KEY,
    area          TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    schema        BIGINT  NOT NULL,
    nik           TEXT    NOT NULL,
    kk            TEXT,
    name          TEXT    NOT NULL,
    -- PPKS slugs as |a|b|
    ppks          TEXT    NOT NULL,
    visited_at    BIGINT  NOT NULL,
    purpose       TEXT,
    follow_up_on  TEXT,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    notes_excerpt TEXT    NOT NULL
);
CREATE INDEX visits_by_area ON visits (area, visited_at);
CREATE INDEX visits_by_worker ON visits (created_by, visited_at);
CREATE INDEX visits_by_nik ON visits (nik);

CREATE TABLE referrals (
    document_id         TEXT    PRIMARY KEY,
    area                TEXT    NOT NULL,
    created_by          TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    schema              BIGINT  NOT NULL,
    nik                 TEXT    NOT NULL,
    kk                  TEXT,
    name                TEXT    NOT NULL,
    ppks                TEXT    NOT NULL,
    program             TEXT    NOT NULL,
    -- derived from the events by the documented rule, never written by a phone
    status              TEXT    NOT NULL,
    visit_id            TEXT,
    consent_given       BOOLEAN NOT NULL,
    doc_ktp             BOOLEAN NOT NULL,
    doc_kk              BOOLEAN NOT NULL,
    doc_sktm            BOOLEAN NOT NULL,
    doc_surat_puskesmas BOOLEAN NOT NULL,
    reason_excerpt      TEXT    NOT NULL,
    submitted_at        BIGINT,
    decided_at          BIGINT,
    last_event_at       BIGINT
);
CREATE INDEX referrals_by_status ON referrals (status, submitted_at);
CREATE INDEX referrals_by_area ON referrals (area, created_at);
CREATE INDEX referrals_by_nik ON referrals (nik);

CREATE TABLE referral_events (
    document_id TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    by_user     TEXT    NOT NULL,
    note        TEXT,
    applied     BOOLEAN NOT NULL,
    PRIMARY KEY (document_id, seq)
);

CREATE TABLE outreach (
    document_id   TEXT    PRIMARY KEY,
    area          TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    schema        BIGINT  NOT NULL,
    topic         TEXT    NOT NULL,
    held_at       BIGINT  NOT NULL,
    place         TEXT    NOT NULL,
    attendees     BIGINT  NOT NULL,
    notes_excerpt TEXT    NOT NULL
);
CREATE INDEX outreach_by_area ON outreach (area, held_at);
