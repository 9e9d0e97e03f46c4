-- Service and proxy tickets no longer reference their session through a cascading foreign key (as
-- SQLite's 0007_service_tickets_by_key.sql): the session index it needs cost an index write for
-- every ticket issued and validated. Taking a ticket checks that its session still exists instead,
-- and a ticket whose session ended goes with the expiry sweep.
ALTER TABLE service_tickets DROP CONSTRAINT IF EXISTS service_tickets_session_id_fkey;
DROP INDEX IF EXISTS service_tickets_session_id;
