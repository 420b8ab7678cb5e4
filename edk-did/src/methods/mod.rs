//! The DID methods EDK implements, one module each.

pub mod jwk;
pub mod key;
pub mod web;
pub mod webvh;
