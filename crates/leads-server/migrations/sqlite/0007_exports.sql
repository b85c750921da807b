-- Exports: asynchronous jobs that write a company's leads to a file (Whop's /exports resource).
-- Timestamps are milliseconds since the Unix epoch (UTC).
--
-- status is pending, processing, completed, failed or expired. spec is the job's JSON text
-- (columns, filters, time zone, whether emails are shown), fixed when the export is created.
-- A worker that takes a job writes a random lease_token and a lease_until; it renews the lease
-- as it goes, and a job whose lease ran out (its worker died) is taken again by any worker.
CREATE TABLE exports (
    id               TEXT PRIMARY KEY,
    company_id       TEXT NOT NULL REFERENCES companies (id),
    resource         TEXT NOT NULL,
    status           TEXT NOT NULL,
    spec             TEXT NOT NULL,
    progress_percent INTEGER NOT NULL DEFAULT 0,
    failure_reason   TEXT,
    file_name        TEXT,
    row_count        INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) WITHOUT ROWID;
-- A company's exports in list order.
CREATE INDEX exports_by_company_time ON exports (company_id, created_at, id);
-- Jobs waiting or running, oldest first, for the workers; and finished ones by expiry.
CREATE INDEX exports_by_status ON exports (status, created_at);
CREATE INDEX exports_by_expiry ON exports (expires_at) WHERE status IN ('completed', 'failed');
