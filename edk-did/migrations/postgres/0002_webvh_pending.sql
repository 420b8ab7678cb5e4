-- edk-did: signed did:webvh log entries held back until their witnesses approve them
-- (did:webvh "DID Witnesses": proofs are published before the entry). `entries` holds one
-- JSON line per entry, oldest first; they follow the published `did_webvh_entry` rows.

CREATE TABLE did_webvh_pending (
    did     TEXT PRIMARY KEY REFERENCES did_record (did) ON DELETE CASCADE,
    entries TEXT NOT NULL
);
