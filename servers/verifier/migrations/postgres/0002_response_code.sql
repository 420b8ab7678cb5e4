-- edk-verifier-server: same-device flows. The response_code a wallet's redirect carries
-- back to the verifier's frontend, stored as a base64url SHA-256 digest until the backend
-- redeems it (once) to read the session's result.

ALTER TABLE oid4vp_session ADD COLUMN response_code_digest TEXT;
