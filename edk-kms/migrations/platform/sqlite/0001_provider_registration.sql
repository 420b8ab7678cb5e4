-- Key providers registered at run time (secrets as references only) and tenants' bindings
-- of aliases to providers.
CREATE TABLE kms_provider_registration (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE kms_alias_binding (
    tenant_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    provider TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, alias)
);

CREATE INDEX kms_alias_binding_provider ON kms_alias_binding (provider);
