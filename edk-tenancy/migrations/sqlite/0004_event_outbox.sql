-- The transactional outbox: a domain event is written here in the transaction that makes the
-- change, and a relay publishes it afterwards. `origin` is the bus of the process that
-- appended it (which delivered it in process at commit), `tenant_id` orders the events of one
-- tenant, and `delivered_at` is set once the relay has published it; delivered rows are
-- purged after a retention period. Times are RFC 3339 UTC text, which sorts chronologically.

CREATE TABLE event_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BLOB NOT NULL UNIQUE,
    origin BLOB NOT NULL,
    tenant_id BLOB,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    delivered_at TEXT
);

CREATE INDEX event_outbox_pending ON event_outbox (id) WHERE delivered_at IS NULL;
CREATE INDEX event_outbox_delivered ON event_outbox (delivered_at) WHERE delivered_at IS NOT NULL;
