-- edk-oid4vci: session data retention. `minimized_at` is when the retention policy
-- `minimize` dropped a session's claims and offer, keeping its status.

ALTER TABLE oid4vci_session ADD COLUMN minimized_at BIGINT;

CREATE INDEX oid4vci_session_status ON oid4vci_session (status, expires_at);
