#![doc = include_str!("../README.md")]

pub mod clock;
pub mod encoding;
pub mod error;
pub mod id;
pub mod jose;
pub mod limits;
pub mod sd_jwt;
pub mod sd_jwt_vc;
pub mod status_list;
pub mod x5c;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{ErrorChain, ErrorKind, HasKind};
pub use id::{ClientId, Did, DidUrl, HttpsUrl, IdError, Kid, TenantId, TenantSlug};
pub use limits::Limits;
