-- Certificates stored under an alias (normally the alias of the key they certify), and named
-- certificate chains or trust anchor sets, per tenant.
CREATE TABLE certificate (
    alias       TEXT PRIMARY KEY,
    serial      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    not_before  TEXT NOT NULL,
    not_after   TEXT NOT NULL,
    kid         TEXT,
    der         BLOB NOT NULL,
    pem         TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE INDEX certificate_kid ON certificate (kid);

CREATE TABLE certificate_chain (
    name             TEXT PRIMARY KEY,
    pem              TEXT NOT NULL,
    is_trust_anchor  INTEGER NOT NULL,
    updated_at       TEXT NOT NULL
);
