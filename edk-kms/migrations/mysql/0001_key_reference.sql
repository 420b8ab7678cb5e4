-- Key aliases, their versions (key_reference), rotations and holds on MySQL/MariaDB, in one
-- shared database: every row carries its tenant. Never key material (see the PostgreSQL
-- migrations). Partial unique indexes are generated columns that are NULL when the row is
-- not live (NULLs never collide in a unique index).
CREATE TABLE kms_key_alias (
    id BINARY(16) PRIMARY KEY,
    tenant_id BINARY(16) NOT NULL,
    alias VARCHAR(200) NOT NULL,
    `usage` TEXT NOT NULL,
    provider_id VARCHAR(64),
    external BOOLEAN NOT NULL,
    overlap_secs BIGINT NOT NULL,
    period_secs BIGINT,
    pre_active_secs BIGINT NOT NULL DEFAULT 0,
    last_version INTEGER NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    deleted_at DATETIME(6),
    live_alias VARCHAR(200) AS (IF(deleted_at IS NULL, alias, NULL)) PERSISTENT,
    UNIQUE KEY kms_key_alias_live (tenant_id, live_alias),
    KEY kms_key_alias_tenant (tenant_id, alias)
);

CREATE TABLE key_reference (
    alias_id BINARY(16) NOT NULL,
    tenant_id BINARY(16) NOT NULL,
    alias VARCHAR(200) NOT NULL,
    version INTEGER NOT NULL,
    provider_id VARCHAR(64),
    handle TEXT,
    kid VARCHAR(200) NOT NULL,
    public_jwk TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    activated_at DATETIME(6),
    retired_at DATETIME(6),
    verify_until DATETIME(6),
    destroyed_at DATETIME(6),
    live_kid VARCHAR(200) AS (IF(state <> 'destroyed', kid, NULL)) PERSISTENT,
    PRIMARY KEY (alias_id, version),
    UNIQUE KEY key_reference_live_kid (tenant_id, live_kid),
    KEY key_reference_kid (tenant_id, kid),
    CONSTRAINT key_reference_alias FOREIGN KEY (alias_id) REFERENCES kms_key_alias (id)
);

CREATE TABLE kms_key_rotation (
    alias_id BINARY(16) NOT NULL,
    tenant_id BINARY(16) NOT NULL,
    from_version INTEGER,
    to_version INTEGER NOT NULL,
    reason VARCHAR(16) NOT NULL,
    actor TEXT NOT NULL,
    at DATETIME(6) NOT NULL,
    PRIMARY KEY (alias_id, to_version),
    CONSTRAINT kms_key_rotation_alias FOREIGN KEY (alias_id) REFERENCES kms_key_alias (id)
);

CREATE TABLE kms_key_hold (
    alias_id BINARY(16) NOT NULL,
    tenant_id BINARY(16) NOT NULL,
    holder VARCHAR(512) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (alias_id, holder),
    CONSTRAINT kms_key_hold_alias FOREIGN KEY (alias_id) REFERENCES kms_key_alias (id)
);
