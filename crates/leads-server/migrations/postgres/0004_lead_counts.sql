-- Lead statistics: the same table as SQLite's 0004_lead_counts.sql (see there).
CREATE TABLE lead_counts (
    company_id    TEXT NOT NULL,
    level         SMALLINT NOT NULL,
    bucket        BIGINT NOT NULL,
    product_id    TEXT NOT NULL,
    referrer_host TEXT NOT NULL,
    leads         BIGINT NOT NULL,
    converted     BIGINT NOT NULL,
    shard         SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, level, bucket, product_id, referrer_host, shard)
);

-- The leads written before this migration. The host is found as storage::stats::referrer_host
-- finds it: drop a scheme, cut the authority at / ? #, drop user info and port, trim, lowercase.
INSERT INTO lead_counts (company_id, level, bucket, product_id, referrer_host, leads, converted)
SELECT l.company_id, levels.level, l.created_at - (l.created_at % levels.unit),
       COALESCE(l.product_id, ''),
       CASE
         WHEN l.referrer IS NULL THEN ''
         ELSE COALESCE(NULLIF(lower(regexp_replace(
           CASE WHEN h.authority LIKE '[%' THEN COALESCE(substring(h.authority FROM '^[^\]]*\]'), h.authority)
                ELSE substring(h.authority FROM '^[^:]*') END,
           '^\s+|\s+$', '', 'g')), ''), 'unknown')
       END,
       COUNT(*),
       COUNT(*) FILTER (WHERE EXISTS (
         SELECT 1 FROM members m WHERE m.company_id = l.company_id AND m.user_id = l.user_id))
FROM leads l
CROSS JOIN LATERAL (SELECT regexp_replace(
    substring(regexp_replace(COALESCE(l.referrer, ''), '^[A-Za-z0-9+.-]*://', '') FROM '^[^/?#]*'),
    '^.*@', '') AS authority) AS h
CROSS JOIN (VALUES (0::smallint, 900000::bigint), (1::smallint, 86400000::bigint)) AS levels (level, unit)
GROUP BY 1, 2, 3, 4, 5;
