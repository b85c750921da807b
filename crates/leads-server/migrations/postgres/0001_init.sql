-- The leads schema for PostgreSQL: the same tables and indexes as SQLite's 0001_init.sql.
-- Timestamps are milliseconds since the Unix epoch (UTC). Ids are made by the application.
--
-- leads.id is compared and ordered (it breaks created_at ties in the list order and in cursors),
-- so it uses the "C" collation: byte order, as SQLite and the cursors compare, whatever the
-- database's default collation is. The other ids are only ever compared for equality.
-- metadata is TEXT holding validated JSON, because the API answers it verbatim.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE companies (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE products (
    id         TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies (id),
    title      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX products_by_company ON products (company_id);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    username   TEXT NOT NULL UNIQUE,
    email      TEXT,
    name       TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    id         TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    UNIQUE (company_id, user_id)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies (id),
    secret_hash BYTEA NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_company ON api_keys (company_id);

CREATE TABLE leads (
    id         TEXT COLLATE "C" PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    product_id TEXT REFERENCES products (id),
    referrer   TEXT,
    metadata   TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- The list order, for every company; cursors seek into it.
CREATE INDEX leads_by_company_time ON leads (company_id, created_at, id);
-- The same order within one product, for the product_ids filter.
CREATE INDEX leads_by_company_product_time ON leads (company_id, product_id, created_at, id);
