-- Dashboard sessions: a browser signed in with a credential. The cookie's token exists here only
-- as its SHA-256 hash, and the credential only as the hash its own table keeps, so every request
-- re-checks the credential (a revoked key ends its sessions at once, on every instance).
CREATE TABLE dashboard_sessions (
    id_hash         BLOB PRIMARY KEY,
    -- company_key, app_key or user_token: which table credential_hash is found in.
    credential_kind TEXT NOT NULL,
    credential_hash BLOB NOT NULL,
    -- The company the session acts for; NULL until an app key or user token has chosen one.
    company_id      TEXT REFERENCES companies (id),
    -- Sent back by every form of the session: a request without it is refused.
    csrf_token      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- Milliseconds; a session idle for 12 hours is over.
    last_seen_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dashboard_sessions_by_credential ON dashboard_sessions (credential_hash);
CREATE INDEX dashboard_sessions_by_last_seen ON dashboard_sessions (last_seen_at);
