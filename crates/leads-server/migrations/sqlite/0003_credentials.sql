-- The other three kinds of credential besides company API keys, and what they may act for.
-- Secrets exist only as SHA-256 hashes; permissions and scopes are comma-separated names.

-- Apps: third parties that companies install. An app's keys act for exactly the companies it
-- is installed on, with the intersection of the key's and the installation's permissions.
CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE app_installs (
    app_id      TEXT NOT NULL REFERENCES apps (id),
    company_id  TEXT NOT NULL REFERENCES companies (id),
    permissions TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, company_id)
) WITHOUT ROWID;

CREATE TABLE app_keys (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps (id),
    secret_hash BLOB NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX app_keys_by_app ON app_keys (app_id);

-- User OAuth tokens: act as one user, within their scopes, until they expire or are revoked.
CREATE TABLE user_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    secret_hash BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX user_tokens_by_user ON user_tokens (user_id);

-- A company's team: users who may act for it with their own tokens.
CREATE TABLE team_members (
    company_id TEXT NOT NULL REFERENCES companies (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (company_id, user_id)
) WITHOUT ROWID;

-- A user token lists only its own leads in a company whose team it is not on: one range of
-- this index, however many leads the company has.
CREATE INDEX leads_by_user_company_time ON leads (user_id, company_id, created_at, id);
