-- Writing a webhook message no longer locks its endpoint's row.
--
-- A foreign key makes every insert of a message (one in each create, update, conversion and
-- erase with a subscribed endpoint) lock the referenced webhooks row FOR KEY SHARE. All of a
-- company's events name the same few endpoints, so concurrent writes all lock one row: each new
-- locker makes a new MultiXact of every current one, and writes the row's lock and the
-- MultiXact to the WAL, under an exclusive lock of that row's page. Deliveries, recorded in
-- batches, did the same; and a batch recording an attempt whose endpoint had just been deleted
-- failed whole, so every attempt in it was sent again.
--
-- What the keys guarded is kept without them: deleting an endpoint deletes its messages and
-- deliveries in its own transaction (as it already did). A message written by a change that
-- commits after that deletion is never leased (the lease joins webhooks) and is removed by the
-- worker's periodic clean-up. webhook_messages_by_webhook stays: deleting an endpoint and
-- dropping a disabled endpoint's queue find its messages through it.
ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_webhook_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_webhook_id_fkey;
