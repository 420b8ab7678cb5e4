-- edk-verifier-server: the verifier's state, in the tenant's schema.
-- Single-use values (request handles, state) are stored as base64url SHA-256 digests;
-- times are Unix seconds.

CREATE TABLE oid4vp_query (
    query_id   TEXT PRIMARY KEY,
    query      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE oid4vp_session (
    session_id     TEXT PRIMARY KEY,
    correlation_id TEXT UNIQUE,
    status         TEXT NOT NULL,
    handle_digest  TEXT UNIQUE,
    state_digest   TEXT NOT NULL UNIQUE,
    request        TEXT NOT NULL,
    outcome        TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX oid4vp_session_expiry ON oid4vp_session (expires_at);
