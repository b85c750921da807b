-- Dashboard sessions, as SQLite's 0008: the cookie's token and the credential exist only as
-- SHA-256 hashes, so every request re-checks the credential.
CREATE TABLE dashboard_sessions (
    id_hash         BYTEA PRIMARY KEY,
    credential_kind TEXT NOT NULL,
    credential_hash BYTEA NOT NULL,
    company_id      TEXT REFERENCES companies (id),
    csrf_token      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_credential ON dashboard_sessions (credential_hash);
CREATE INDEX dashboard_sessions_by_last_seen ON dashboard_sessions (last_seen_at);
