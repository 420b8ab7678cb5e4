-- edk-oid4vci: deferred issuance transactions (OpenID4VCI 1.0 §9). A transaction is
-- `pending` until the operator completes it (`ready`, with the signed credentials) or fails
-- it (`failed`); the wallet then takes it once. `transaction_hash` is the base64url SHA-256
-- digest of the `transaction_id`; `holders` the proven keys, `result` the outcome, as JSON.

CREATE TABLE oid4vci_transaction (
    transaction_hash TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL,
    configuration_id TEXT NOT NULL,
    state            TEXT NOT NULL,
    holders          TEXT NOT NULL,
    result           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);

CREATE INDEX oid4vci_transaction_session ON oid4vci_transaction (session_id);
CREATE INDEX oid4vci_transaction_expiry ON oid4vci_transaction (expires_at);
