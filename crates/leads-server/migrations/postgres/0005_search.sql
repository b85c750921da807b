-- Search (the list's `query` and `email` filters, an extension): folded copies of what a search
-- compares, and the indexes that find them. Folding (Unicode full case folding of the NFC form)
-- is done by the application, in the same transaction as the write it belongs to; the rows of
-- existing users and leads are folded by the application right after this migration.
--
-- The folded columns use the "C" collation: byte order, so a prefix is a plain range of the
-- btree, as on SQLite. Substrings go through pg_trgm's GIN trigram indexes (PostgreSQL contrib;
-- CockroachDB has trigram indexes since 22.2).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A user's username, name and email, folded. One row per user.
CREATE TABLE user_search (
    user_id  TEXT PRIMARY KEY REFERENCES users (id),
    username TEXT COLLATE "C" NOT NULL,
    name     TEXT COLLATE "C",
    email    TEXT COLLATE "C"
);
-- Terms of one or two characters match a prefix of these; `email` also matches whole.
CREATE INDEX user_search_by_username ON user_search (username);
CREATE INDEX user_search_by_name ON user_search (name);
CREATE INDEX user_search_by_email ON user_search (email);
-- Terms of three or more characters: any substring. One index a column (not one over all
-- three), as CockroachDB's inverted indexes take one inverted column each.
CREATE INDEX user_search_username_trigrams ON user_search USING gin (username gin_trgm_ops);
CREATE INDEX user_search_name_trigrams ON user_search USING gin (name gin_trgm_ops);
CREATE INDEX user_search_email_trigrams ON user_search USING gin (email gin_trgm_ops);

-- A lead's referrer, folded; NULL when it has none.
ALTER TABLE leads ADD COLUMN referrer_folded TEXT COLLATE "C";
CREATE INDEX leads_referrer_trigrams ON leads USING gin (referrer_folded gin_trgm_ops)
    WHERE referrer_folded IS NOT NULL;
