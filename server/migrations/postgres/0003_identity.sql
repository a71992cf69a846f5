-- People, their devices, and what each device did. Times are milliseconds since the Unix epoch.

CREATE TABLE users (
    id          TEXT   PRIMARY KEY,
    name        TEXT   NOT NULL,
    -- peksos | coordinator | supervisor | admin
    role        TEXT   NOT NULL,
    -- area scopes: Kemendagri code prefixes, comma-separated
    areas       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE devices (
    id           TEXT   PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id),
    label        TEXT   NOT NULL,
    -- SHA-256 of the bearer token, hex; the token itself is never stored
    token_hash   TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    rotated_at   BIGINT,
    revoked_at   BIGINT,
    last_seen_at BIGINT
);
CREATE INDEX devices_by_user ON devices (user_id);

-- Automerge actor ids, bound to the device that first wrote under them.
CREATE TABLE device_actors (
    actor_id      TEXT   PRIMARY KEY,
    device_id     TEXT   NOT NULL,
    first_seen_at BIGINT NOT NULL
);

-- Administrative changes a running server must act on (revocations, disabled users).
CREATE TABLE security_events (
    seq     BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    subject TEXT   NOT NULL
);

-- Append-only: who read (was sent) or changed which document, when, from which device.
CREATE TABLE audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    device_id   TEXT   NOT NULL,
    user_id     TEXT   NOT NULL,
    document_id TEXT   NOT NULL,
    -- read | write | refused
    action      TEXT   NOT NULL,
    detail      TEXT   NOT NULL
);
CREATE INDEX audit_by_device ON audit_log (device_id, at);
CREATE INDEX audit_by_document ON audit_log (document_id, at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
