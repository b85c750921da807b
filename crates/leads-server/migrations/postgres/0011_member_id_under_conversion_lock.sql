-- The membership a lead's write reads under the conversion lock (migration 10), answered as the
-- member's id (NULL when the user is not a member of the company) instead of a yes or no: the
-- create statement reads the membership once, after the lock and from a fresh snapshot, for its
-- statistics (converted or not), its answer (`member`) and its `lead.created` event, instead of
-- reading it again from the statement's own snapshot for the last two.
--
-- The membership is read by the statement after the one that takes the lock, so from a
-- snapshot taken once the lock is held, as in migration 10.
--
-- leads_user_is_member stays for instances of the previous version during a rolling upgrade.
CREATE FUNCTION leads_member_under_lock(company text, member_user text) RETURNS text
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    found_id text;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(leads_conversion_key(company, member_user));
    SELECT m.id INTO found_id FROM members m WHERE m.company_id = company AND m.user_id = member_user;
    RETURN found_id;
END
$$;
