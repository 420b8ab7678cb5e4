-- The scheme a binding advertises: https, or plain http for loopback hosts in local
-- development (EndpointBinding::dangerous_loopback_http). Existing bindings are https.

ALTER TABLE tenant_public_endpoint
    ADD COLUMN scheme TEXT NOT NULL DEFAULT 'https' CHECK (scheme IN ('https', 'http'));
