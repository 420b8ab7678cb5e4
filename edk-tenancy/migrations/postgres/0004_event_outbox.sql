-- The transactional outbox: a domain event is written here in the transaction that makes the
-- change, and a relay (one replica at a time) publishes it to the other replicas afterwards.
-- `origin` is the bus of the process that appended it (which delivered it in process at
-- commit), `tenant_id` orders the events of one tenant, and `delivered_at` is set once the
-- relay has published it; delivered rows are purged after a retention period.

CREATE TABLE event_outbox (
    id BIGSERIAL PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    origin UUID NOT NULL,
    tenant_id UUID,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    delivered_at TIMESTAMPTZ
);

CREATE INDEX event_outbox_pending ON event_outbox (id) WHERE delivered_at IS NULL;
CREATE INDEX event_outbox_delivered ON event_outbox (delivered_at) WHERE delivered_at IS NOT NULL;
