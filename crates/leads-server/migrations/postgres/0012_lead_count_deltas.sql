-- A create no longer adds to `lead_counts` itself: it appends one row here, in the same
-- statement as the lead, and `lead_counts` takes these rows in batches (`leads serve` folds
-- them every second: StatsStore::fold_lead_counts). Readers sum both, in one
-- snapshot, so the counts stay exact and in step with the leads.
--
-- Why: adding to a `lead_counts` row is an INSERT ... ON CONFLICT DO UPDATE of a hot row (an
-- index probe, a tuple lock, a new row version and the pruning of old ones), which cost a
-- PostgreSQL create about a fifth more backend CPU, and 12 to 14% of creates/s where #16
-- allows 10%. Appending a row to a table without indexes costs about 1%.
--
-- Each row is one lead: its company, the starts of its quarter-hour and UTC-day buckets (in
-- milliseconds), its product ('' for none), its referrer's host ('' for none) and whether its
-- user was a member when it was written (under the conversion lock, migration 11). Conversions,
-- erasures and referrer changes still write `lead_counts` directly; counts are sums, so a
-- lead's row here and a later change there add up.
CREATE TABLE lead_count_deltas (
    company_id    TEXT NOT NULL,
    quarter       BIGINT NOT NULL,
    day           BIGINT NOT NULL,
    product_id    TEXT NOT NULL,
    referrer_host TEXT NOT NULL,
    converted     BOOLEAN NOT NULL
);

-- Folding deletes every row within about a second of its insert, and the fold vacuums the table
-- every 20,000 rows it moves (autovacuum looks only once a minute), so that readers and folds,
-- which scan all of it, walk few dead rows. Without truncation, that vacuum never takes the
-- lock that would hold up the creates appending to the table.
ALTER TABLE lead_count_deltas SET (vacuum_truncate = false);
