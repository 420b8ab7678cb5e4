-- The tenant registry, public endpoint bindings and configuration properties, in platform.db.

CREATE TABLE tenant (
    id BLOB PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 63),
    display_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'deleted')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);

CREATE TABLE tenant_public_endpoint (
    tenant_id BLOB NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    path_prefix TEXT NOT NULL,
    well_known TEXT NOT NULL CHECK (well_known IN ('inserted', 'appended', 'both')),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, service),
    UNIQUE (host, port, path_prefix, service)
);

CREATE TABLE platform_config_property (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tenant_config_property (
    tenant_id BLOB NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
