-- Key aliases, their versions (key_reference), rotations and holds. Never key material:
-- a version keeps only the provider's handle (a token object id, or a key sealed under a
-- key encryption key that is not in the database).
CREATE TABLE kms_key_alias (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    alias TEXT NOT NULL,
    usage TEXT NOT NULL,
    provider_id TEXT,
    external BOOLEAN NOT NULL,
    overlap_secs BIGINT NOT NULL,
    period_secs BIGINT,
    last_version INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX kms_key_alias_live ON kms_key_alias (tenant_id, alias) WHERE deleted_at IS NULL;

CREATE TABLE key_reference (
    alias_id UUID NOT NULL REFERENCES kms_key_alias (id),
    tenant_id UUID NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    provider_id TEXT,
    handle TEXT,
    kid TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    activated_at TIMESTAMPTZ,
    retired_at TIMESTAMPTZ,
    verify_until TIMESTAMPTZ,
    destroyed_at TIMESTAMPTZ,
    PRIMARY KEY (alias_id, version)
);
CREATE UNIQUE INDEX key_reference_live_kid ON key_reference (tenant_id, kid) WHERE state <> 'destroyed';
CREATE INDEX key_reference_kid ON key_reference (tenant_id, kid);

CREATE TABLE kms_key_rotation (
    alias_id UUID NOT NULL REFERENCES kms_key_alias (id),
    tenant_id UUID NOT NULL,
    from_version INTEGER,
    to_version INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (alias_id, to_version)
);

CREATE TABLE kms_key_hold (
    alias_id UUID NOT NULL REFERENCES kms_key_alias (id),
    tenant_id UUID NOT NULL,
    holder TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (alias_id, holder)
);
