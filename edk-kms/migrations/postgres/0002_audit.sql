-- The per-tenant audit chain: each record's hash covers its fields and the previous hash.
-- Records name the operation, actor, alias, kid and outcome; never plaintext, signatures or
-- key material. Checkpoints sign the chain head with the tenant's audit.audit-checkpoint key.
CREATE TABLE kms_audit_event (
    tenant_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    at_micros BIGINT NOT NULL,
    actor TEXT NOT NULL,
    operation TEXT NOT NULL,
    alias TEXT,
    kid TEXT,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE kms_audit_head (
    tenant_id UUID PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE kms_audit_checkpoint (
    tenant_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at_micros BIGINT NOT NULL,
    jws TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
