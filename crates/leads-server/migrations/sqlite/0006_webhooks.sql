-- Webhooks: a company's endpoints, the outbox of messages to send them, and the log of every
-- delivery attempt. Times are milliseconds since the epoch.
--
-- events is the subscribed event types as ',lead.created,lead.updated,' (commas around each), so
-- "is this endpoint subscribed to X" is one instr() on the row the company index finds.
-- show_email records whether the credential that made the endpoint held member:email:read:
-- events show user.email exactly as that credential's reads would.
CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY,
    company_id            TEXT NOT NULL REFERENCES companies (id),
    url                   TEXT NOT NULL,
    secret                TEXT NOT NULL,
    events                TEXT NOT NULL,
    enabled               INTEGER NOT NULL,
    api_version           TEXT NOT NULL,
    child_resource_events INTEGER NOT NULL,
    show_email            INTEGER NOT NULL,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    failing_since         INTEGER,
    last_failure_at       INTEGER,
    disabled_at           INTEGER,
    disabled_reason       TEXT,
    created_at            INTEGER NOT NULL
);
CREATE INDEX webhooks_by_company ON webhooks (company_id, created_at, id);

-- The outbox. A row is written in the transaction of the change it reports, one per subscribed
-- endpoint. message_id is the webhook-id every attempt carries when it is not the row's own id
-- (a replay that keeps an earlier message's); NULL means id. data is the event's data object as JSON text; the envelope around it is made at
-- send time. next_attempt_at is NULL once the message is delivered or given up; while a worker
-- holds the message, next_attempt_at is its lease's end and lease its holder's token.
CREATE TABLE webhook_messages (
    id              TEXT PRIMARY KEY,
    message_id      TEXT,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    company_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    data            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease           TEXT,
    replayed_from   TEXT
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_messages_by_webhook ON webhook_messages (webhook_id);

-- Every attempt, kept 30 days. message_row is the outbox row it sent, for replays of a window.
CREATE TABLE webhook_deliveries (
    id            TEXT PRIMARY KEY,
    webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    message_id    TEXT NOT NULL,
    message_row   TEXT,
    event_type    TEXT NOT NULL,
    request_body  TEXT NOT NULL,
    response_code INTEGER NOT NULL,
    response_body TEXT,
    total_time_ms INTEGER NOT NULL,
    sent_at       INTEGER NOT NULL,
    success       INTEGER NOT NULL,
    replayed_from TEXT
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, sent_at, id);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (sent_at);
