-- Search (the list's `query` and `email` filters, an extension): folded copies of what a search
-- compares, and the indexes that find them. Folding (Unicode full case folding of the NFC form)
-- is done by the application, in the same transaction as the write it belongs to; the rows of
-- existing users and leads are folded by the application right after this migration.

-- A user's username, name and email, folded. One row per user; rowid is the full-text index's key.
CREATE TABLE user_search (
    rowid    INTEGER PRIMARY KEY,
    user_id  TEXT NOT NULL UNIQUE REFERENCES users (id),
    username TEXT NOT NULL,
    name     TEXT,
    email    TEXT
);
-- Terms of one or two characters match a prefix of these; `email` also matches whole.
CREATE INDEX user_search_by_username ON user_search (username);
CREATE INDEX user_search_by_name ON user_search (name);
CREATE INDEX user_search_by_email ON user_search (email);

-- Terms of three or more characters: any substring, through trigrams. The folding is ours, so
-- the tokenizer compares exactly (case_sensitive 1).
CREATE VIRTUAL TABLE user_search_trigrams USING fts5 (
    username, name, email,
    content = 'user_search', content_rowid = 'rowid',
    tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER user_search_indexed AFTER INSERT ON user_search BEGIN
    INSERT INTO user_search_trigrams (rowid, username, name, email)
    VALUES (new.rowid, new.username, new.name, new.email);
END;
CREATE TRIGGER user_search_forgotten AFTER DELETE ON user_search BEGIN
    INSERT INTO user_search_trigrams (user_search_trigrams, rowid, username, name, email)
    VALUES ('delete', old.rowid, old.username, old.name, old.email);
END;

-- A lead's referrer, folded; NULL when it has none.
ALTER TABLE leads ADD COLUMN referrer_folded TEXT;

-- Referrers by substring, keyed by the lead's rowid, kept in step by triggers.
CREATE VIRTUAL TABLE lead_referrer_trigrams USING fts5 (
    referrer_folded,
    content = 'leads', content_rowid = 'rowid',
    tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER lead_referrer_indexed AFTER INSERT ON leads
WHEN new.referrer_folded IS NOT NULL BEGIN
    INSERT INTO lead_referrer_trigrams (rowid, referrer_folded)
    VALUES (new.rowid, new.referrer_folded);
END;
CREATE TRIGGER lead_referrer_changed AFTER UPDATE OF referrer_folded ON leads
WHEN old.referrer_folded IS NOT new.referrer_folded BEGIN
    INSERT INTO lead_referrer_trigrams (lead_referrer_trigrams, rowid, referrer_folded)
    SELECT 'delete', old.rowid, old.referrer_folded WHERE old.referrer_folded IS NOT NULL;
    INSERT INTO lead_referrer_trigrams (rowid, referrer_folded)
    SELECT new.rowid, new.referrer_folded WHERE new.referrer_folded IS NOT NULL;
END;
CREATE TRIGGER lead_referrer_forgotten AFTER DELETE ON leads
WHEN old.referrer_folded IS NOT NULL BEGIN
    INSERT INTO lead_referrer_trigrams (lead_referrer_trigrams, rowid, referrer_folded)
    VALUES ('delete', old.rowid, old.referrer_folded);
END;
