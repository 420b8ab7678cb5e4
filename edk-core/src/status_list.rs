//! Token Status List (draft-ietf-oauth-status-list).
