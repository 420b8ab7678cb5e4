-- edk-verifier-server: the tenant's Verifier Attestation JWT, for requests made with the
-- verifier_attestation client identifier prefix. The JWT is public (it travels in every such
-- Request Object), so it is stored as given.

CREATE TABLE oid4vp_verifier_attestation (
    singleton  BIGINT PRIMARY KEY,
    jwt        TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
