-- Lead statistics: how many leads each company got, and how many of them converted (their user
-- is a member of the company), per bucket of creation time, product and referrer host.
-- level 0 buckets are quarter hours, level 1 buckets UTC days; bucket is the bucket's start in
-- milliseconds. product_id is '' for leads without a product, referrer_host '' for leads without
-- a referrer. Kept up to date in the transaction of every write that changes them (see
-- storage/stats.rs); rows may reach zero and stay. A bucket may be split over several shards
-- (PostgreSQL's concurrent creates each add to their connection's own row, rather than all
-- waiting on one); readers add the shards up. SQLite writes one at a time and uses shard 0.
CREATE TABLE lead_counts (
    company_id    TEXT NOT NULL,
    level         INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    product_id    TEXT NOT NULL,
    referrer_host TEXT NOT NULL,
    leads         INTEGER NOT NULL,
    converted     INTEGER NOT NULL,
    shard         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, level, bucket, product_id, referrer_host, shard)
) WITHOUT ROWID;

-- The leads written before this migration. referrer_host() is the server's own function
-- (registered on the connection that migrates), so hosts are keyed exactly as new leads' are.
INSERT INTO lead_counts (company_id, level, bucket, product_id, referrer_host, leads, converted)
SELECT l.company_id, levels.level, l.created_at - (l.created_at % levels.unit),
       COALESCE(l.product_id, ''), referrer_host(l.referrer), COUNT(*),
       SUM(EXISTS (SELECT 1 FROM members m WHERE m.company_id = l.company_id AND m.user_id = l.user_id))
FROM leads l, (SELECT 0 AS level, 900000 AS unit UNION ALL SELECT 1, 86400000) AS levels
GROUP BY 1, 2, 3, 4, 5;
