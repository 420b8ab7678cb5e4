//! JOSE: JWKs, JWS compact serialization and JWT validation, hardened per RFC 8725.
//!
//! - Algorithms are an explicit allow-list ([`VerifyPolicy::with_algorithms`]); `none` and HMAC
//!   cannot even be named ([`Algorithm`]), and a key only verifies the algorithm its type and
//!   its own `alg` member allow ([`VerifyingKey::supports`]).
//! - Keys come from the caller's [`KeyResolver`]; a key embedded in a header (`jwk`) is used
//!   only when the policy allows it, and `jku`/`x5u` are never fetched.
//! - `crit` is honoured: a critical parameter the caller does not understand fails.
//!
//! ```
//! # async fn demo() -> Result<(), edk_core::jose::JoseError> {
//! use edk_core::jose::{Algorithm, Header, SigningKey, VerifyPolicy, jws};
//!
//! let key = SigningKey::generate(Algorithm::Es256)?;
//! let token = jws::sign(Header::new(Algorithm::Es256).with_typ("JWT"), b"{}", &key).await?;
//! let verified = jws::Jws::parse(&token, &Default::default())?
//!     .verify(key.verifying_key(), &VerifyPolicy::default().with_typ("JWT"))?;
//! assert_eq!(verified.payload(), b"{}");
//! # Ok(()) }
//! ```

mod alg;
mod error;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod jwt;
mod key;
mod resolver;

pub use alg::Algorithm;
pub use error::{JoseError, SignError};
pub use jwk::{Jwk, JwkSet};
pub use jws::{Header, Jws, VerifiedJws, VerifyPolicy};
pub use jwt::Validation;
pub use key::{MIN_RSA_BITS, SigningKey, VerifyingKey};
pub use resolver::{JwksResolver, KeyQuery, KeyResolver, Signer, Verifier};
