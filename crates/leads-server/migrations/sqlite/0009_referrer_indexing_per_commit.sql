-- New and changed referrers reach the trigram index once per transaction, not once per row.
--
-- The writer commits many requests in one transaction, each inside a SAVEPOINT so that a failed
-- one can be undone alone, and FTS5 writes its pending terms out as a new index segment at every
-- savepoint once it has any: a trigger indexing each lead as it was inserted cost a segment (and
-- the merging of segments) per create, which took creates from 137 to 227 µs of server CPU each
-- (scripts/compare-creates.sh). The triggers now note the leads to index in
-- lead_referrer_pending, and the writer indexes them all with one INSERT ... SELECT just before
-- each COMMIT (storage/sqlite/leads/search.rs, index_pending_referrers), in the same
-- transaction as the leads.
CREATE TABLE lead_referrer_pending (lead_rowid INTEGER PRIMARY KEY);

DROP TRIGGER lead_referrer_indexed;
CREATE TRIGGER lead_referrer_indexed AFTER INSERT ON leads
WHEN new.referrer_folded IS NOT NULL BEGIN
    INSERT OR IGNORE INTO lead_referrer_pending (lead_rowid) VALUES (new.rowid);
END;

-- A lead still pending is not in the index yet: it is indexed as it is at COMMIT.
DROP TRIGGER lead_referrer_changed;
CREATE TRIGGER lead_referrer_changed AFTER UPDATE OF referrer_folded ON leads
WHEN old.referrer_folded IS NOT new.referrer_folded BEGIN
    INSERT INTO lead_referrer_trigrams (lead_referrer_trigrams, rowid, referrer_folded)
    SELECT 'delete', old.rowid, old.referrer_folded
    WHERE old.referrer_folded IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM lead_referrer_pending WHERE lead_rowid = old.rowid);
    INSERT OR IGNORE INTO lead_referrer_pending (lead_rowid) VALUES (new.rowid);
END;

DROP TRIGGER lead_referrer_forgotten;
CREATE TRIGGER lead_referrer_forgotten AFTER DELETE ON leads BEGIN
    INSERT INTO lead_referrer_trigrams (lead_referrer_trigrams, rowid, referrer_folded)
    SELECT 'delete', old.rowid, old.referrer_folded
    WHERE old.referrer_folded IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM lead_referrer_pending WHERE lead_rowid = old.rowid);
    DELETE FROM lead_referrer_pending WHERE lead_rowid = old.rowid;
END;
