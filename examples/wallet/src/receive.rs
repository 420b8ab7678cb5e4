//! `edk-wallet receive`: OpenID4VCI with a pre-authorized code. The offer (by value or by
//! reference), the issuer's and its authorization server's metadata, a DPoP-bound access
//! token for the code and the transaction code, a fresh nonce, and a credential request with
//! a JWT key proof of a new holder key; the SD-JWT VC is checked and stored.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use base64::Engine as _;
use edk_core::jose::{Algorithm, JoseError, Jwk, KeyQuery, KeyResolver, SigningKey, VerifyingKey};
use edk_core::sd_jwt::SdJwt;
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_core::{Clock as _, Limits, SystemClock};
use edk_oid4vci::config::FormatProfile;
use edk_oid4vci::metadata::well_known_url;
use edk_oid4vci::offer::{InputMode, OfferReference, parse_offer_uri};
use edk_oid4vci::{CredentialOffer, IssuerMetadata};
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;

use crate::http::{Dpop, Http, describe_error, sign_with_jwk};
use crate::store::{ReceivedCredential, Store, StoredCredential};

/// The grant type of pre-authorized codes.
const PRE_AUTHORIZED: &str = edk_oid4vci::offer::PRE_AUTHORIZED_GRANT;

/// Receives the credential of `offer_uri` into `store`; prints what it stored.
pub(crate) async fn receive(
    http: &Http,
    store: &mut Store,
    offer_uri: &str,
    tx_code: Option<&str>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let offer = resolve_offer(http, offer_uri).await?;
    let Some(grant) = offer.grants.pre_authorized_code.clone() else {
        bail!(
            "the offer has no pre-authorized code grant (the authorization code flow is not supported here)"
        );
    };
    let tx_code = match (&grant.tx_code, tx_code) {
        (Some(expected), None) => bail!(
            "the offer needs a transaction code{}: give it with --tx-code",
            expected
                .description
                .as_deref()
                .map(|description| format!(" ({description})"))
                .unwrap_or_default()
        ),
        (Some(expected), Some(code)) => {
            if let Some(length) = expected.length
                && code.chars().count() != usize::try_from(length).unwrap_or(usize::MAX)
            {
                bail!("the transaction code must have {length} characters");
            }
            if expected.input_mode.unwrap_or_default() == InputMode::Numeric
                && !code.chars().all(|c| c.is_ascii_digit())
            {
                bail!("the transaction code is digits only");
            }
            Some(code)
        }
        (None, Some(_)) => bail!("the offer asks for no transaction code: leave out --tx-code"),
        (None, None) => None,
    };

    let metadata = issuer_metadata(http, &offer.credential_issuer).await?;
    let configuration_id = offer
        .credential_configuration_ids
        .first()
        .context("the offer names no credential configuration")?;
    let configuration = metadata
        .credential_configurations_supported
        .get(configuration_id)
        .with_context(|| {
            format!("the issuer's metadata does not describe the offered {configuration_id:?}")
        })?;
    let FormatProfile::DcSdJwt { vct } = &configuration.profile else {
        bail!(
            "{configuration_id:?} is not an SD-JWT VC (dc+sd-jwt), the only format this wallet keeps"
        );
    };
    let authorization_server = grant
        .authorization_server
        .clone()
        .or_else(|| metadata.authorization_servers.first().cloned())
        .unwrap_or_else(|| metadata.credential_issuer.clone());
    let token_endpoint = token_endpoint(http, &authorization_server).await?;

    // The access token, bound to the wallet key.
    let dpop = Dpop::new(store.wallet_key()?);
    let mut form = vec![
        ("grant_type", PRE_AUTHORIZED),
        ("pre-authorized_code", grant.pre_authorized_code.as_str()),
    ];
    if let Some(code) = tx_code {
        form.push(("tx_code", code));
    }
    let (status, token) = http
        .send_with_dpop(
            &dpop,
            None,
            |proof| {
                http.client()
                    .post(&token_endpoint)
                    .header("dpop", proof)
                    .form(&form)
            },
            "POST",
            &token_endpoint,
        )
        .await?;
    if status != 200 {
        bail!(
            "the authorization server refused the pre-authorized code{}: {}",
            if tx_code.is_some() {
                " and transaction code"
            } else {
                ""
            },
            describe_error(status, &token)
        );
    }
    let access_token = token["access_token"]
        .as_str()
        .context("the token response has no access_token")?
        .to_owned();
    if !token["token_type"]
        .as_str()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("dpop"))
    {
        bail!(
            "the authorization server did not bind the access token to the wallet key (token_type {})",
            token["token_type"]
        );
    }

    // A new key for this credential, proven with the issuer's nonce.
    let holder_key = SigningKey::generate(Algorithm::Es256)?;
    let nonce = match &metadata.nonce_endpoint {
        Some(endpoint) => {
            let (status, body) = http.json(http.client().post(endpoint)).await?;
            if status != 200 {
                bail!(
                    "the nonce endpoint answered {}",
                    describe_error(status, &body)
                );
            }
            Some(
                body["c_nonce"]
                    .as_str()
                    .context("the nonce endpoint's answer has no c_nonce")?
                    .to_owned(),
            )
        }
        None => None,
    };
    let proof = key_proof(&holder_key, &metadata.credential_issuer, nonce.as_deref())?;
    let mut body = json!({ "proofs": { "jwt": [proof] } });
    match token["authorization_details"][0]["credential_identifiers"][0].as_str() {
        Some(identifier) => body["credential_identifier"] = json!(identifier),
        None => body["credential_configuration_id"] = json!(configuration_id),
    }
    let endpoint = &metadata.credential_endpoint;
    let (status, answer) = http
        .send_with_dpop(
            &dpop,
            Some(&access_token),
            |proof| {
                http.client()
                    .post(endpoint)
                    .header("authorization", format!("DPoP {access_token}"))
                    .header("dpop", proof)
                    .json(&body)
            },
            "POST",
            endpoint,
        )
        .await?;
    match status {
        200 => {}
        202 => bail!(
            "the issuer deferred the credential; this wallet does not wait for deferred credentials"
        ),
        _ => bail!(
            "the issuer refused the credential request: {}",
            describe_error(status, &answer)
        ),
    }
    let sd_jwt = answer["credentials"][0]["credential"]
        .as_str()
        .context("the credential response carries no credential")?;

    let received = check_credential(sd_jwt, &holder_key, &metadata.credential_issuer, vct).await?;
    let stored = StoredCredential::new(
        ReceivedCredential {
            format: "dc+sd-jwt".to_owned(),
            vct: vct.clone(),
            issuer: metadata.credential_issuer.clone(),
            configuration_id: configuration_id.clone(),
            received_at: SystemClock.unix_seconds(),
            claims: received,
            sd_jwt: sd_jwt.to_owned(),
        },
        &holder_key,
    )?;
    writeln!(out, "stored credential {}", stored.id)?;
    crate::print_credential(&stored, out)?;
    store.add(stored)?;
    Ok(())
}

/// The offer the URI carries, fetched when it is by reference.
async fn resolve_offer(http: &Http, offer_uri: &str) -> anyhow::Result<CredentialOffer> {
    match parse_offer_uri(offer_uri).context("not a credential offer URI")? {
        OfferReference::Value(offer) => Ok(offer),
        OfferReference::Uri(uri) => {
            let (status, body) = http.json(http.client().get(&uri)).await?;
            if status != 200 {
                bail!(
                    "the issuer no longer has the offer at {uri}: {}",
                    describe_error(status, &body)
                );
            }
            CredentialOffer::from_json(body).context("the issuer served an invalid offer")
        }
        _ => bail!("an offer URI of an unknown kind"),
    }
}

/// The Credential Issuer Metadata of `issuer`.
async fn issuer_metadata(http: &Http, issuer: &str) -> anyhow::Result<IssuerMetadata> {
    let url = well_known_url(issuer).context("the offer's credential_issuer")?;
    let (status, body) = http.json(http.client().get(&url)).await?;
    if status != 200 {
        bail!(
            "no issuer metadata at {url}: {}",
            describe_error(status, &body)
        );
    }
    let metadata: IssuerMetadata =
        serde_json::from_value(body).context("the issuer's metadata is malformed")?;
    if metadata.credential_issuer != issuer {
        bail!(
            "the metadata at {url} is for {}, not {issuer}",
            metadata.credential_issuer
        );
    }
    Ok(metadata)
}

/// The token endpoint from the authorization server's metadata (RFC 8414: the well-known
/// segment goes between the host and the issuer's path).
async fn token_endpoint(http: &Http, issuer: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(issuer).context("the authorization server is not a URL")?;
    let location = format!(
        "{}/.well-known/oauth-authorization-server{}",
        url.origin().ascii_serialization(),
        url.path().trim_end_matches('/')
    );
    let (status, body) = http.json(http.client().get(&location)).await?;
    if status != 200 {
        bail!(
            "no authorization server metadata at {location}: {}",
            describe_error(status, &body)
        );
    }
    if body["issuer"].as_str() != Some(issuer) {
        bail!(
            "the metadata at {location} is for {}, not {issuer}",
            body["issuer"]
        );
    }
    body["token_endpoint"]
        .as_str()
        .map(str::to_owned)
        .context("the authorization server has no token_endpoint")
}

/// A JWT key proof (`openid4vci-proof+jwt`, OpenID4VCI Appendix F.1) of `key` for `issuer`.
fn key_proof(key: &SigningKey, issuer: &str, nonce: Option<&str>) -> anyhow::Result<String> {
    let mut claims = json!({ "aud": issuer, "iat": SystemClock.unix_seconds() });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    sign_with_jwk(key, "openid4vci-proof+jwt", &claims)
}

/// Checks what the issuer sent before storing it: an SD-JWT VC of the offered type from the
/// issuer, signed by the key of the certificate it carries, its disclosures sound, bound to
/// `holder_key`. Returns its claims with every disclosure applied. (Whether the issuer's
/// certificate is trusted is for each verifier to decide against its own trust anchors.)
async fn check_credential(
    sd_jwt: &str,
    holder_key: &SigningKey,
    issuer: &str,
    vct: &str,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let parsed =
        SdJwt::parse(sd_jwt, &Limits::DEFAULT).context("the credential is not an SD-JWT")?;
    let verified = parsed
        .verify_vc(
            &CarriedCertificate,
            &VcVerifyOptions::default().accepting_vct(vct),
            SystemClock.unix_seconds(),
        )
        .await
        .context("the credential does not verify")?;
    let claims = verified.into_sd_jwt().into_claims();
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        bail!("the credential names another issuer: {}", claims["iss"]);
    }
    let bound: Option<Jwk> = claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jwk"))
        .and_then(|jwk| serde_json::from_value(jwk.clone()).ok());
    if bound.map(|jwk| jwk.thumbprint()) != Some(holder_key.public_jwk().thumbprint()) {
        bail!("the credential is not bound to the key the wallet proved");
    }
    Ok(claims)
}

/// The key of the leaf certificate in a token's `x5c` header.
#[derive(Debug)]
struct CarriedCertificate;

#[async_trait]
impl KeyResolver for CarriedCertificate {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let leaf = query
            .x5c
            .and_then(|chain| chain.first())
            .ok_or(JoseError::KeyNotFound)?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(leaf)
            .map_err(|_| JoseError::InvalidKey("the x5c certificate is not base64"))?;
        let certificate = Certificate::from_der(&der)
            .map_err(|_| JoseError::InvalidKey("the x5c certificate is not DER"))?;
        let spki = certificate.tbs_certificate().subject_public_key_info();
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or(JoseError::InvalidKey(
                "the x5c key is not a whole number of bytes",
            ))?;
        // An uncompressed P-256 point: 0x04, x, y.
        let (Some(0x04), Some(x), Some(y), 65) = (
            point.first(),
            point.get(1..33),
            point.get(33..65),
            point.len(),
        ) else {
            return Err(JoseError::UnsupportedKey(
                "an x5c key other than P-256".to_owned(),
            ));
        };
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "x": encode(x), "y": encode(y),
        }))
        .map_err(|_| JoseError::InvalidKey("the x5c key is not a P-256 key"))?;
        VerifyingKey::from_jwk(&jwk).map(Arc::new)
    }
}
