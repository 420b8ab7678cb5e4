-- Pending logins at a tenant's upstream OpenID Provider, one row per authorization request
-- sent there, consumed (deleted) by the callback that carries its state.
CREATE TABLE oauth_federation_login (
    state_hash    TEXT PRIMARY KEY,   -- base64url(SHA-256(state)); the state itself is not kept
    issuer        TEXT NOT NULL,      -- the provider the request went to
    nonce         TEXT NOT NULL,
    code_verifier TEXT NOT NULL,      -- PKCE (RFC 7636), needed once at the token endpoint
    redirect_uri  TEXT NOT NULL,
    transaction_id TEXT NOT NULL,     -- the AS's pending authorization request (AuthnTransaction)
    created_at    INTEGER NOT NULL,   -- seconds since the epoch
    expires_at    INTEGER NOT NULL
);
CREATE INDEX oauth_federation_login_expires_at ON oauth_federation_login (expires_at);
