-- The referrer index is written in batches of many transactions, and holds only which leads
-- have each trigram.
--
-- FTS5's cost per indexed row falls steeply with the rows written in one statement, and
-- positions and column sizes are much of what it writes (measured with SQLite 3.40 on
-- 35-character referrers: 32 µs a row in statements of 64 rows and 25 µs in statements of 512
-- with them; 18 and 11 µs without them; see docs/benchmarks.md). So:
--
-- - detail=none and columnsize=0: the index keeps each trigram's rowids only. A search ANDs the
--   trigrams of its term, which finds a superset of the leads whose referrer holds the term;
--   every page applies the exact condition itself (storage/sqlite/leads/search.rs).
-- - lead_referrer_pending is no longer emptied at every COMMIT: the writer indexes the pending
--   leads once there are REFERRER_BATCH of them (storage/sqlite/mod.rs), in the transaction that
--   reaches that many. Until then a search finds them by reading the pending leads themselves,
--   so a lead is found from the moment its transaction commits.
DROP TABLE lead_referrer_trigrams;
CREATE VIRTUAL TABLE lead_referrer_trigrams USING fts5 (
    referrer_folded,
    content = 'leads', content_rowid = 'rowid',
    tokenize = 'trigram case_sensitive 1',
    detail = none, columnsize = 0
);
INSERT INTO lead_referrer_trigrams (rowid, referrer_folded)
SELECT rowid, referrer_folded FROM leads
WHERE referrer_folded IS NOT NULL
  AND rowid NOT IN (SELECT lead_rowid FROM lead_referrer_pending);
