-- A lead is counted converted exactly once, whichever commits first: the lead's write or its
-- user becoming a member. Under READ COMMITTED each statement reads the rows committed when it
-- began, so a lead written while its user's membership was being recorded counted itself
-- unconverted (the member was not yet there to see) and the conversion missed it too (the lead
-- was not yet there to see): on 60 such races about half the leads stayed unconverted.
--
-- The two now take one advisory lock per company and user: a membership holds it alone for its
-- transaction, taken before it reads the user's leads; a lead's write holds it shared and only
-- then reads the membership, from a fresh snapshot (a VOLATILE function's statements get their
-- own). Writes of leads never wait for each other; they wait only for a membership of the same
-- user being recorded, and it for them.

-- The lock's key: the company and the user (ids have no control characters, so the newline
-- cannot be part of either).
CREATE FUNCTION leads_conversion_key(company text, member_user text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended(company || E'\n' || member_user, 0) $$;

-- Whether the user is a member of the company, read after any membership of theirs being
-- recorded has committed; holds the lock shared until the calling transaction ends.
CREATE FUNCTION leads_user_is_member(company text, member_user text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(leads_conversion_key(company, member_user));
    RETURN EXISTS (SELECT 1 FROM members m WHERE m.company_id = company AND m.user_id = member_user);
END
$$;
