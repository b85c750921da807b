-- The other three kinds of credential besides company API keys, as SQLite's 0003: apps and
-- their installations and keys, user tokens, and companies' teams. Secrets exist only as
-- SHA-256 hashes; permissions and scopes are comma-separated names.

CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE app_installs (
    app_id      TEXT NOT NULL REFERENCES apps (id),
    company_id  TEXT NOT NULL REFERENCES companies (id),
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, company_id)
);

CREATE TABLE app_keys (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps (id),
    secret_hash BYTEA NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX app_keys_by_app ON app_keys (app_id);

CREATE TABLE user_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    secret_hash BYTEA NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX user_tokens_by_user ON user_tokens (user_id);

CREATE TABLE team_members (
    company_id TEXT NOT NULL REFERENCES companies (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (company_id, user_id)
);

-- A user token lists only its own leads in a company whose team it is not on: one range of
-- this index, however many leads the company has.
CREATE INDEX leads_by_user_company_time ON leads (user_id, company_id, created_at, id);
