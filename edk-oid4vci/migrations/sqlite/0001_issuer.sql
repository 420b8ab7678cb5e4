-- edk-oid4vci: the credential issuer's state, in the tenant's schema.
-- Single-use values (nonces, offer references) are stored as base64url SHA-256 digests;
-- times are Unix seconds.

CREATE TABLE oid4vci_configuration (
    configuration_id TEXT PRIMARY KEY,
    configuration    TEXT NOT NULL,
    settings         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE oid4vci_nonce (
    nonce_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX oid4vci_nonce_expiry ON oid4vci_nonce (expires_at);

CREATE TABLE oid4vci_offer_reference (
    handle_hash TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    offer       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX oid4vci_offer_reference_expiry ON oid4vci_offer_reference (expires_at);

CREATE TABLE oid4vci_session (
    session_id     TEXT PRIMARY KEY,
    correlation_id TEXT UNIQUE,
    status         TEXT NOT NULL,
    data           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX oid4vci_session_expiry ON oid4vci_session (expires_at);
