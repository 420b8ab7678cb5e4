-- A rotation policy may stage the next version as pre-active (published in the JWKS, not yet
-- used) this many seconds before a scheduled rotation activates it; 0 stages nothing.
ALTER TABLE kms_key_alias ADD COLUMN pre_active_secs BIGINT NOT NULL DEFAULT 0;
