-- The tenant registry, public endpoint bindings and configuration properties.
-- Applied in schema edk_platform of the platform database.

CREATE TABLE tenant (
    id UUID PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{0,62}$'),
    display_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'deleted')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);

CREATE INDEX tenant_deleted_at ON tenant (deleted_at) WHERE status = 'deleted';

CREATE TABLE tenant_public_endpoint (
    tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    path_prefix TEXT NOT NULL,
    well_known TEXT NOT NULL CHECK (well_known IN ('inserted', 'appended', 'both')),
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, service),
    UNIQUE (host, port, path_prefix, service)
);

CREATE TABLE platform_config_property (
    name TEXT PRIMARY KEY,
    value JSONB NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE tenant_config_property (
    tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value JSONB NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Event payloads too large for a NOTIFY; the notification carries the id.
CREATE TABLE platform_event (
    id BIGSERIAL PRIMARY KEY,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
