//! SD-JWT-based Verifiable Credentials (draft-ietf-oauth-sd-jwt-vc).
