-- edk-oauth: every piece of authorization server state, in the tenant's schema.
-- Bearer values are stored as base64url SHA-256 digests; times are Unix seconds.

CREATE TABLE oauth_client (
    client_id   TEXT PRIMARY KEY,
    metadata    TEXT NOT NULL,
    secret_hash TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE oauth_par (
    handle_hash TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    request     TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE oauth_transaction (
    transaction_id TEXT PRIMARY KEY,
    request        TEXT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE TABLE oauth_code (
    code_hash   TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    family_id   TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    dpop_jkt    TEXT,
    grant_data  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT
);

CREATE TABLE oauth_pre_auth_code (
    code_hash       TEXT PRIMARY KEY,
    tx_code_hash    TEXT,
    grant_data      TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    consumed_at     BIGINT,
    revoked_at      BIGINT
);

CREATE TABLE oauth_refresh_token (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    dpop_jkt   TEXT,
    grant_data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_refresh_token_family ON oauth_refresh_token (family_id);

CREATE TABLE oauth_access_token (
    jti        TEXT PRIMARY KEY,
    family_id  TEXT,
    client_id  TEXT,
    claims     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oauth_access_token_family ON oauth_access_token (family_id);

CREATE TABLE oauth_jti (
    scope      TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
);

CREATE TABLE oauth_dpop_nonce (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_dpop_nonce_expiry ON oauth_dpop_nonce (expires_at);
