-- Single logout: how each service hears of a logout, and the persisted delivery queue. A session's
-- entered services move into the queue in the same transaction that ends the session, so a crash
-- cannot lose a notification; deliveries are claimed with a lease, so one node sends each.

ALTER TABLE services ADD COLUMN logout_type TEXT NOT NULL DEFAULT 'back';

CREATE TABLE slo_queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT NOT NULL,
    username      TEXT NOT NULL,
    service       TEXT NOT NULL,
    ticket        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX slo_queue_due_at ON slo_queue (due_at);
