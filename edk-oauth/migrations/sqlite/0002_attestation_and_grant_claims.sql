-- edk-oauth: client attestation challenges (attestation-based client authentication §6.3)
-- and the end-user claims of the grant behind each access token that carries any.
-- Challenges are stored as base64url SHA-256 digests; times are Unix seconds.

CREATE TABLE oauth_attestation_challenge (
    challenge_hash TEXT PRIMARY KEY,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX oauth_attestation_challenge_expiry ON oauth_attestation_challenge (expires_at);

CREATE TABLE oauth_grant_claims (
    jti        TEXT PRIMARY KEY,
    claims     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_grant_claims_expiry ON oauth_grant_claims (expires_at);
