-- Idempotency keys of lead creates: which lead a credential's key created, and a fingerprint of
-- the request that created it, written in the lead's own transaction. Kept for 48 hours.
-- lead_id has no foreign key on purpose: erasing a lead keeps its claim, so a late retry is told
-- the lead is gone rather than recording it again.

CREATE TABLE idempotency_claims (
    credential_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   BLOB NOT NULL,
    lead_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (credential_id, key)
) WITHOUT ROWID;
-- Forgetting old claims reads the oldest first.
CREATE INDEX idempotency_claims_by_age ON idempotency_claims (created_at);
