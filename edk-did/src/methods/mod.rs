//! The DID methods EDK implements, one module each, and the policy of their remote fetches.

pub mod fetch;
pub mod jwk;
pub mod key;
pub mod web;
pub mod webvh;
