-- edk-oid4vci: notifications (OpenID4VCI 1.0 §11). Each credential response names a
-- `notification_id` (stored as its base64url SHA-256 digest) valid until `expires_at`;
-- the events wallets send about the credentials are kept per session, oldest first.

CREATE TABLE oid4vci_notification (
    notification_hash TEXT PRIMARY KEY,
    session_id        TEXT NOT NULL,
    expires_at        BIGINT NOT NULL
);

CREATE INDEX oid4vci_notification_expiry ON oid4vci_notification (expires_at);

CREATE TABLE oid4vci_session_event (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL
);

CREATE INDEX oid4vci_session_event_session ON oid4vci_session_event (session_id);
