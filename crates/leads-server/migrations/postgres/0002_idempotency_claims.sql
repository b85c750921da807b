-- Idempotency keys of lead creates, as SQLite's 0002: which lead a credential's key created,
-- and a fingerprint of the request that created it, written in the lead's own transaction. Kept
-- for 48 hours. lead_id has no foreign key on purpose: erasing a lead keeps its claim, so a late
-- retry is told the lead is gone rather than recording it again. The primary key is also how
-- instances racing on one key agree: the second insert waits for the first to commit.

CREATE TABLE idempotency_claims (
    credential_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   BYTEA NOT NULL,
    lead_id       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (credential_id, key)
);
-- Forgetting old claims reads the oldest first.
CREATE INDEX idempotency_claims_by_age ON idempotency_claims (created_at);
