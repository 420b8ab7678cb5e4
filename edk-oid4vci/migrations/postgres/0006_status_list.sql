-- edk-oid4vci: Token Status Lists. A list serves one credential configuration and purpose;
-- `allocated` counts the indices handed out, in the order of a permutation keyed by
-- `permutation_key` (base64url); `version` grows with every status change and
-- `published_version` is the version of the newest token. Issued credentials are recorded
-- with their index and status, never their claims. Tokens are kept for historical
-- resolution, the CWT form as base64url.
CREATE TABLE oid4vci_status_list (
    list_id           TEXT PRIMARY KEY,
    uri               TEXT NOT NULL,
    issuer            TEXT NOT NULL,
    configuration_id  TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    bits              BIGINT NOT NULL,
    size              BIGINT NOT NULL,
    allocated         BIGINT NOT NULL,
    permutation_key   TEXT NOT NULL,
    version           BIGINT NOT NULL,
    published_version BIGINT,
    published_iat     BIGINT,
    published_exp     BIGINT,
    created_at        BIGINT NOT NULL
);

-- At most one open list per configuration, purpose and shape: concurrent issuers share it.
CREATE UNIQUE INDEX oid4vci_status_list_open
    ON oid4vci_status_list (configuration_id, purpose, bits, size, issuer)
    WHERE allocated < size;

CREATE TABLE oid4vci_issued_credential (
    credential_id    TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL,
    correlation_id   TEXT,
    configuration_id TEXT NOT NULL,
    list_id          TEXT NOT NULL REFERENCES oid4vci_status_list (list_id),
    status_index     BIGINT NOT NULL,
    status           TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT,
    updated_at       BIGINT NOT NULL,
    UNIQUE (list_id, status_index)
);

CREATE INDEX oid4vci_issued_credential_session ON oid4vci_issued_credential (session_id);
CREATE INDEX oid4vci_issued_credential_correlation
    ON oid4vci_issued_credential (correlation_id);
CREATE INDEX oid4vci_issued_credential_changed
    ON oid4vci_issued_credential (list_id, status);

CREATE TABLE oid4vci_status_list_token (
    list_id TEXT NOT NULL REFERENCES oid4vci_status_list (list_id),
    version BIGINT NOT NULL,
    iat     BIGINT NOT NULL,
    exp     BIGINT NOT NULL,
    ttl     BIGINT NOT NULL,
    jwt     TEXT NOT NULL,
    cwt     TEXT NOT NULL,
    PRIMARY KEY (list_id, iat, version)
);
