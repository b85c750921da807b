-- Exports: the same table and indexes as SQLite's 0007_exports.sql.
-- id is compared and ordered (it breaks created_at ties in the list order), so it uses "C".
CREATE TABLE exports (
    id               TEXT COLLATE "C" PRIMARY KEY,
    company_id       TEXT NOT NULL REFERENCES companies (id),
    resource         TEXT NOT NULL,
    status           TEXT NOT NULL,
    spec             TEXT NOT NULL,
    progress_percent INTEGER NOT NULL DEFAULT 0,
    failure_reason   TEXT,
    file_name        TEXT,
    row_count        BIGINT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX exports_by_company_time ON exports (company_id, created_at, id);
CREATE INDEX exports_by_status ON exports (status, created_at);
CREATE INDEX exports_by_expiry ON exports (expires_at) WHERE status IN ('completed', 'failed');
