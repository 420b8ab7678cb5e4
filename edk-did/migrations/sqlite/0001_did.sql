-- edk-did: the DIDs a tenant publishes, in the tenant's schema. Key material never lands
-- here: verification methods name KMS key aliases. Times are Unix seconds.

CREATE TABLE did_record (
    did         TEXT PRIMARY KEY,
    method      TEXT NOT NULL,
    -- The URL path of the published files below the host (`""` for `/.well-known`), for
    -- did:web and did:webvh; NULL for methods that publish nothing.
    location    TEXT,
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    deactivated BOOLEAN NOT NULL,
    update_key  TEXT,
    revision    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX did_record_location ON did_record (method, location);

CREATE TABLE did_verification_method (
    did           TEXT NOT NULL REFERENCES did_record (did) ON DELETE CASCADE,
    key_alias     TEXT NOT NULL,
    relationships TEXT NOT NULL,
    position      BIGINT NOT NULL,
    PRIMARY KEY (did, key_alias)
);

CREATE TABLE did_service (
    did          TEXT NOT NULL REFERENCES did_record (did) ON DELETE CASCADE,
    service_id   TEXT NOT NULL,
    service_type TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    position     BIGINT NOT NULL,
    PRIMARY KEY (did, service_id)
);

CREATE TABLE did_webvh_entry (
    did            TEXT NOT NULL REFERENCES did_record (did) ON DELETE CASCADE,
    version_number BIGINT NOT NULL,
    version_id     TEXT NOT NULL,
    entry          TEXT NOT NULL,
    PRIMARY KEY (did, version_number)
);

CREATE TABLE did_webvh_witness (
    did     TEXT PRIMARY KEY REFERENCES did_record (did) ON DELETE CASCADE,
    content TEXT NOT NULL
);
