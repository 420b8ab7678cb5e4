#![doc = include_str!("../README.md")]

pub mod cbor;
pub mod cose;
pub mod error;
pub mod issue;
pub mod mac;
pub mod model;
pub mod present;
pub mod transcript;
pub mod verify;

pub use cbor::Limits;
pub use error::Error;
pub use issue::IssuerSignedBuilder;
pub use mac::{EphemeralKey, MacKeyAgreement};
pub use model::{
    DeviceAuth, DeviceResponse, DeviceSigned, Document, IssuerSigned, IssuerSignedItem,
    IssuerSignedItemBytes, MobileSecurityObject, StatusListReference, ValidityInfo,
};
pub use present::{present, present_with_mac};
pub use transcript::SessionTranscript;
pub use verify::{VerifiedDocument, Verifier};
