-- People signing in on the web (coordinators, supervisors): passwords, sessions, API tokens.
-- Times are milliseconds since the Unix epoch.

-- One password per user; the user id is the username.
CREATE TABLE web_credentials (
    user_id       TEXT   PRIMARY KEY REFERENCES users (id),
    -- argon2id, PHC string format
    password_hash TEXT   NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- failed sign-ins in a row, and until when the account is locked after too many
    failures      BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT
);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE web_sessions (
    token_hash   TEXT   PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id),
    -- echoed by every form and by API calls made with the cookie
    csrf_token   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);

-- Tokens for scripts calling /api/ (Authorization: Bearer fsa_…); stored as SHA-256.
CREATE TABLE api_tokens (
    id          TEXT   PRIMARY KEY,
    user_id     TEXT   NOT NULL REFERENCES users (id),
    label       TEXT   NOT NULL,
    token_hash  TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
