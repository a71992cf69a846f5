-- One-time enrollment codes: an administrator or coordinator makes one for a user, and the
-- field app exchanges it once for a device token of that user. Only the code's SHA-256 is
-- stored. Times are milliseconds since the Unix epoch.
CREATE TABLE enrollment_codes (
    code_hash  TEXT   PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id),
    -- who made it (a user id)
    made_by    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- set once, when the code is exchanged; a used code never works again
    used_at    BIGINT
);
CREATE INDEX enrollment_codes_by_user ON enrollment_codes (user_id);
