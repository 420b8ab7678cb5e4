-- edk-verifier-server: HMAC-signed webhooks. A session made with a webhook_url records a
-- pending delivery in the transaction that settles it (verified, failed, expired); the
-- delivery is attempted at once, then retried by the webhook job until delivered or
-- abandoned. claimed_until is the lease of the replica sending an attempt. The tenant's
-- HMAC key is stored only sealed (a compact JWE to its KMS key).

ALTER TABLE oid4vp_session ADD COLUMN webhook_url TEXT;

CREATE TABLE oid4vp_webhook_delivery (
    event_id        TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL,
    correlation_id  TEXT,
    status          TEXT NOT NULL,
    url             TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);

CREATE INDEX oid4vp_webhook_delivery_due ON oid4vp_webhook_delivery (state, next_attempt_at);

CREATE TABLE oid4vp_webhook_secret (
    singleton  BIGINT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
