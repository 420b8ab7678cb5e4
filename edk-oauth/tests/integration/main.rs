//! Integration tests of edk-oauth: the store on both backends, the authorization server
//! over real HTTP with foreign clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod attestation;
mod concurrency;
mod credential_details;
mod federation;
mod flows;
mod grant_claims;
mod hostile_time;
mod jobs;
mod lifetimes;
mod limits;
mod pre_authorized;
mod refresh;
mod replay;
mod replica_races;
mod resources;
mod secret_hashing;
mod signing_keys;
mod store;
mod support;
