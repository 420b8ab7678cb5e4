-- edk-oid4vci: offers with the authorization code grant. `issuer_state_digest` is the SHA-256
-- (base64url) of the offer's `issuer_state`, by which the authorization server's grant finds
-- the session; `subject` is the end user who logged in for the session, `login_claims` the
-- claims of that login (JSON), which a claims endpoint may use at credential time.
ALTER TABLE oid4vci_session ADD COLUMN issuer_state_digest TEXT;
ALTER TABLE oid4vci_session ADD COLUMN subject TEXT;
ALTER TABLE oid4vci_session ADD COLUMN login_claims TEXT;

CREATE UNIQUE INDEX oid4vci_session_issuer_state ON oid4vci_session (issuer_state_digest);
