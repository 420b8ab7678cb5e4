//! Encrypted credential requests and responses (OpenID4VCI 1.0 §10): a request may arrive as a
//! compact JWE to the tenant's KMS key `issuer.request-decryption`, and a wallet that sends
//! `credential_response_encryption` in an encrypted request gets its answer as a compact JWE
//! to the key it named. Error answers are never encrypted.

use edk_core::HasKind as _;
use edk_core::Limits;
use edk_core::jose::Jwk;
use edk_core::jose::jwe::{self, ContentEncryption, Jwe, JweOptions, KeyManagement};
use edk_kms::kms::KeyAlias;
use edk_kms::provider::KeySpec;
use edk_tenancy::TenantContext;
use serde_json::Value;

use super::{CredentialResponse, Error, Issuer, KMS_SERVICE, protocol};
use crate::error::CredentialErrorCode;
use crate::metadata::{RequestEncryption, ResponseEncryption};
use crate::request::{ResponseEncryptionRequest, parse_response_encryption};

/// The purpose of the tenant's request decryption key (`issuer.request-decryption`).
pub const REQUEST_DECRYPTION_PURPOSE: &str = "request-decryption";

/// The key management algorithm of the request decryption key.
const REQUEST_KEY_ALG: KeyManagement = KeyManagement::EcdhEs;

/// The content encryption algorithms accepted in requests and used for responses.
const ENC_VALUES: [ContentEncryption; 2] = [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm];

/// Whether credential requests and responses may, or must, be encrypted (§10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encryption {
    /// Neither is advertised nor accepted.
    Off,
    /// Wallets may encrypt requests and ask for encrypted responses.
    #[default]
    Supported,
    /// Every credential and deferred credential request must be encrypted and ask for an
    /// encrypted response.
    Required,
}

impl Encryption {
    /// Parses `off`, `supported` or `required`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "off" => Some(Self::Off),
            "supported" => Some(Self::Supported),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    /// The name: `off`, `supported` or `required`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Supported => "supported",
            Self::Required => "required",
        }
    }
}

/// A credential or deferred credential request body as it arrived.
#[derive(Clone, Copy, Debug)]
pub enum RequestBody<'a> {
    /// `application/json`.
    Json(&'a Value),
    /// `application/jwt`: a compact JWE to the issuer's request decryption key.
    Encrypted(&'a str),
}

/// The answer of the credential or deferred credential endpoint, with its encrypted form when
/// the wallet asked for one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CredentialAnswer {
    /// The response.
    pub response: CredentialResponse,
    /// The response body as a compact JWE to the wallet's key (`application/jwt`), when the
    /// request carried `credential_response_encryption`.
    pub encrypted: Option<String>,
}

/// Where and how a response is encrypted.
#[derive(Debug)]
struct Sealing {
    jwk: Jwk,
    alg: KeyManagement,
    enc: ContentEncryption,
}

fn bad(description: impl AsRef<str>) -> Error {
    protocol(
        CredentialErrorCode::InvalidEncryptionParameters,
        description,
    )
}

fn request_key_alias() -> KeyAlias {
    #[expect(
        clippy::expect_used,
        reason = "the service and purpose are constants that form a valid alias"
    )]
    KeyAlias::new(KMS_SERVICE, REQUEST_DECRYPTION_PURPOSE).expect("a valid key alias")
}

impl Issuer {
    /// The metadata members `credential_request_encryption` and
    /// `credential_response_encryption`, creating the tenant's request decryption key on
    /// first use; `None` when encryption is off.
    pub(super) async fn encryption_metadata(
        &self,
        tenant: &TenantContext,
    ) -> Result<Option<(RequestEncryption, ResponseEncryption)>, Error> {
        let required = match self.options.encryption {
            Encryption::Off => return Ok(None),
            Encryption::Supported => false,
            Encryption::Required => true,
        };
        let caller = Self::caller(tenant);
        let alias = request_key_alias();
        self.ensure_key(&caller, &alias, KeySpec::decryption(REQUEST_KEY_ALG))
            .await?;
        let jwks = self.kms.jwks(&caller, &alias).await.map_err(Error::Kms)?;
        let enc_values: Vec<String> = ENC_VALUES.iter().map(|enc| enc.name().to_owned()).collect();
        Ok(Some((
            RequestEncryption {
                jwks,
                enc_values_supported: enc_values.clone(),
                zip_values_supported: Vec::new(),
                encryption_required: required,
            },
            ResponseEncryption {
                alg_values_supported: KeyManagement::ALL
                    .iter()
                    .map(|alg| alg.name().to_owned())
                    .collect(),
                enc_values_supported: enc_values,
                zip_values_supported: Vec::new(),
                encryption_required: required,
            },
        )))
    }

    /// The request as JSON, decrypting it when it came encrypted, and whether it did.
    async fn open_request(
        &self,
        tenant: &TenantContext,
        body: RequestBody<'_>,
    ) -> Result<(Value, bool), Error> {
        match body {
            RequestBody::Json(value) => {
                if self.options.encryption == Encryption::Required {
                    return Err(bad(
                        "this issuer requires encrypted requests: send a JWE as application/jwt",
                    ));
                }
                Ok((value.clone(), false))
            }
            RequestBody::Encrypted(token) => {
                if self.options.encryption == Encryption::Off {
                    return Err(bad("this issuer does not accept encrypted requests"));
                }
                let parsed = Jwe::parse(token, &Limits::default()).map_err(|_| {
                    bad("the request is not a compact JWE with a supported alg and enc and no zip")
                })?;
                if parsed.header().alg != REQUEST_KEY_ALG {
                    return Err(bad(format!(
                        "requests are encrypted with alg {}",
                        REQUEST_KEY_ALG.name()
                    )));
                }
                let plaintext = match self
                    .kms
                    .decrypt(&Self::caller(tenant), &request_key_alias(), token)
                    .await
                {
                    Ok(plaintext) => plaintext,
                    Err(err) if err.kind().is_client_error() => {
                        return Err(bad(
                            "the request could not be decrypted with the issuer's key",
                        ));
                    }
                    Err(err) => return Err(Error::Kms(err)),
                };
                match serde_json::from_slice::<Value>(&plaintext) {
                    Ok(value @ Value::Object(_)) => Ok((value, true)),
                    _ => Err(protocol(
                        CredentialErrorCode::InvalidCredentialRequest,
                        "the decrypted request is not a JSON object",
                    )),
                }
            }
        }
    }

    /// How the response to `body` is encrypted, if the wallet asked (§8.2, §10): the
    /// parameters must come in an encrypted request (or any request while earlier drafts are
    /// accepted), name a public key with a supported `alg` and a supported `enc`, and no
    /// `zip`.
    fn sealing(&self, body: &Value, encrypted: bool) -> Result<Option<Sealing>, Error> {
        let Some(parameters) = body.get("credential_response_encryption") else {
            if self.options.encryption == Encryption::Required {
                return Err(bad(
                    "this issuer requires encrypted responses: send credential_response_encryption",
                ));
            }
            return Ok(None);
        };
        if self.options.encryption == Encryption::Off {
            return Err(bad("this issuer does not encrypt credential responses"));
        }
        if !encrypted && !self.options.accept_legacy {
            return Err(bad(
                "credential_response_encryption is accepted only in an encrypted request",
            ));
        }
        let ResponseEncryptionRequest { jwk, enc, zip } = parse_response_encryption(parameters)?;
        // 1.0 puts `alg` in the JWK; earlier drafts sent it beside the key.
        let alg_name = match (&jwk.alg, parameters.get("alg")) {
            (Some(alg), _) => alg.clone(),
            (None, Some(Value::String(alg))) if self.options.accept_legacy => alg.clone(),
            _ => {
                return Err(bad("credential_response_encryption.jwk must name its alg"));
            }
        };
        let alg = KeyManagement::from_name(&alg_name).ok_or_else(|| {
            bad(format!(
                "credential_response_encryption alg {alg_name} is not supported"
            ))
        })?;
        let enc = ContentEncryption::from_name(&enc)
            .filter(|supported| ENC_VALUES.contains(supported))
            .ok_or_else(|| {
                bad(format!(
                    "credential_response_encryption enc {enc} is not supported"
                ))
            })?;
        if zip.is_some() {
            return Err(bad("compressed responses are not supported"));
        }
        // Refuse a key that cannot take the algorithm before any credential is issued.
        jwe::encrypt(b"{}", &jwk, alg, enc, JweOptions::default()).map_err(|_| {
            bad(format!(
                "credential_response_encryption.jwk cannot be used with {alg_name}"
            ))
        })?;
        Ok(Some(Sealing { jwk, alg, enc }))
    }

    /// Processes a credential request (§8) that arrived as `body`: decrypted first when it
    /// came encrypted, answered encrypted when the wallet asked for it.
    ///
    /// # Errors
    /// `invalid_encryption_parameters` for an undecryptable request, unsupported or
    /// malformed response encryption parameters, or a request that is not encrypted where
    /// encryption is required; otherwise as [`Issuer::credential`].
    pub async fn credential_message(
        &self,
        tenant: &TenantContext,
        endpoints: &super::IssuerEndpoints,
        token: &edk_oauth::ValidatedToken,
        body: RequestBody<'_>,
    ) -> Result<CredentialAnswer, Error> {
        let (body, encrypted) = self.open_request(tenant, body).await?;
        let sealing = self.sealing(&body, encrypted)?;
        let response = self
            .process_credential(tenant, endpoints, token, &body)
            .await?;
        Self::answer(response, sealing.as_ref())
    }

    /// Processes a deferred credential request (§9) that arrived as `body`, with the
    /// encryption parameters of this request (which may differ from the original one's).
    ///
    /// # Errors
    /// As [`Issuer::credential_message`] and [`Issuer::deferred_credential`].
    pub async fn deferred_credential_message(
        &self,
        tenant: &TenantContext,
        token: &edk_oauth::ValidatedToken,
        body: RequestBody<'_>,
    ) -> Result<CredentialAnswer, Error> {
        let (body, encrypted) = self.open_request(tenant, body).await?;
        let sealing = self.sealing(&body, encrypted)?;
        let response = self.process_deferred(tenant, token, &body).await?;
        Self::answer(response, sealing.as_ref())
    }

    fn answer(
        response: CredentialResponse,
        sealing: Option<&Sealing>,
    ) -> Result<CredentialAnswer, Error> {
        let encrypted = match sealing {
            None => None,
            Some(sealing) => Some(
                jwe::encrypt(
                    response.to_json().to_string().as_bytes(),
                    &sealing.jwk,
                    sealing.alg,
                    sealing.enc,
                    JweOptions::default(),
                )
                .map_err(|_| {
                    bad("the response could not be encrypted to credential_response_encryption.jwk")
                })?,
            ),
        };
        Ok(CredentialAnswer {
            response,
            encrypted,
        })
    }
}
