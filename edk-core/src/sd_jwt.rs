//! Selective Disclosure for JWTs (RFC 9901).
