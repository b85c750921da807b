-- Search's trigram indexes keep a short pending list. GIN gathers new entries in an unsorted
-- pending list until it passes gin_pending_list_limit (4 MB by default) or VACUUM runs, and every
-- search reads that whole list: on the 1,000,000-lead benchmark a term that matches nothing took
-- 300 ms at 32 connections until VACUUM, 20 ms after. Without a pending list (fastupdate off)
-- every write goes straight into the trees, and seeding 40,000 leads passed the 10 s statement
-- timeout. 128 kB bounds what a search reads beside the trees to a thirty-second of the default,
-- while writes still reach the trees in sorted batches.
ALTER INDEX user_search_username_trigrams SET (gin_pending_list_limit = 128);
ALTER INDEX user_search_name_trigrams SET (gin_pending_list_limit = 128);
ALTER INDEX user_search_email_trigrams SET (gin_pending_list_limit = 128);
ALTER INDEX leads_referrer_trigrams SET (gin_pending_list_limit = 128);

-- What the pending lists hold now goes into the indexes at once.
SELECT gin_clean_pending_list('user_search_username_trigrams'::regclass);
SELECT gin_clean_pending_list('user_search_name_trigrams'::regclass);
SELECT gin_clean_pending_list('user_search_email_trigrams'::regclass);
SELECT gin_clean_pending_list('leads_referrer_trigrams'::regclass);
