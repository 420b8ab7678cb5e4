#![doc = include_str!("../README.md")]

pub mod error;
pub mod provider;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::Error;
pub use provider::{KeyProvider, ProviderId};
