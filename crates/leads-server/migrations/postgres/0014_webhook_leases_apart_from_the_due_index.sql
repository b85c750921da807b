-- A webhook delivery writes less: leasing a message no longer touches an indexed column, and a
-- delivered message is deleted rather than updated.
--
-- A lease used to move next_attempt_at (the key of webhook_messages_due) to the lease's end,
-- and a success to set it NULL: two updates of an indexed column, each a new row version with
-- new entries in every index of the table. A lease now stamps leased_until, which no index has,
-- so PostgreSQL can update the row in place on its page (a HOT update, given room: hence the
-- fillfactor); a message is due when next_attempt_at has come and no lease holds it. A success
-- deletes the row (its delivery keeps the exact body sent, which is what a replay of the window
-- sends again). A failed attempt still sets next_attempt_at to the retry's time.
--
-- During a rolling upgrade an instance of the earlier version does not see these leases and may
-- send a message a newer instance holds: at least once still holds, exactly once never did.
ALTER TABLE webhook_messages ADD COLUMN leased_until BIGINT;
ALTER TABLE webhook_messages SET (fillfactor = 80);
