//! HTTP as the wallet speaks it: JSON answers, OAuth and problem errors made readable, and
//! DPoP proofs (RFC 9449) with the server's nonce when it asks for one.

use std::time::Duration;

use anyhow::Context as _;
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, SigningKey};
use edk_core::{Clock as _, SystemClock};
use serde_json::{Value, json};
use sha2::Digest as _;

/// An HTTP client.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client with a timeout on every request.
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// The client, to build requests with.
    pub(crate) const fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request`: the status and the JSON answered (`null` when the body is not JSON).
    pub(crate) async fn json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, Value)> {
        let (status, body, _) = self.send(request).await?;
        Ok((status, body))
    }

    /// Sends `request`: the status, the JSON answered, and whether the server asks for a
    /// DPoP nonce (`use_dpop_nonce` in the body or the `WWW-Authenticate` challenge, RFC 9449
    /// §8 and §9) with the nonce it gives in `DPoP-Nonce`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, Value, Option<String>)> {
        let request = request.build()?;
        let url = request.url().clone();
        let response = self
            .client
            .execute(request)
            .await
            .with_context(|| format!("cannot reach {}", url.origin().ascii_serialization()))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let nonce = header("dpop-nonce");
        let challenged = header("www-authenticate")
            .is_some_and(|challenge| challenge.contains("error=\"use_dpop_nonce\""));
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let asks_nonce = challenged || body["error"] == "use_dpop_nonce";
        Ok((status, body, nonce.filter(|_| asks_nonce)))
    }

    /// Sends the request `build` makes with a DPoP proof for `method url` (and `access_token`,
    /// when given); when the server answers `use_dpop_nonce`, sends it once more with a proof
    /// carrying the server's nonce.
    pub(crate) async fn send_with_dpop(
        &self,
        dpop: &Dpop,
        access_token: Option<&str>,
        build: impl Fn(String) -> reqwest::RequestBuilder,
        method: &str,
        url: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let proof = dpop.proof(method, url, None, access_token)?;
        match self.send(build(proof)).await? {
            (_, _, Some(nonce)) => {
                let proof = dpop.proof(method, url, Some(&nonce), access_token)?;
                self.json(build(proof)).await
            }
            (status, body, None) => Ok((status, body)),
        }
    }
}

/// The wallet's DPoP key and the proofs it signs.
#[derive(Debug)]
pub(crate) struct Dpop(SigningKey);

impl Dpop {
    /// Proofs signed by `key`.
    pub(crate) const fn new(key: SigningKey) -> Self {
        Self(key)
    }

    /// A proof for `method url`, with the server's `nonce` and the hash of `access_token`.
    fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": url,
            "iat": SystemClock.unix_seconds(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(b64url_encode(sha2::Sha256::digest(token.as_bytes())));
        }
        sign_with_jwk(&self.0, "dpop+jwt", &claims)
    }
}

/// A JWS of `claims` by `key`, with `typ` and the public key as `jwk` (and no `kid`: the
/// receiver takes the key from the header).
pub(crate) fn sign_with_jwk(key: &SigningKey, typ: &str, claims: &Value) -> anyhow::Result<String> {
    let header = Header::new(Algorithm::Es256)
        .with_typ(typ)
        .with_jwk(&key.public_jwk());
    let signing_input = format!(
        "{}.{}",
        b64url_encode(serde_json::to_vec(&header)?),
        b64url_encode(claims.to_string())
    );
    let signature = key.sign_bytes(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url_encode(signature)))
}

/// An error answer in words: `status error: error_description` (OAuth and OpenID4VCI), or
/// the problem's title and detail (RFC 9457).
pub(crate) fn describe_error(status: u16, body: &Value) -> String {
    let text = |name: &str| body.get(name).and_then(Value::as_str);
    match (
        text("error"),
        text("error_description"),
        text("title"),
        text("detail"),
    ) {
        (Some(error), Some(description), _, _) => format!("{status} {error}: {description}"),
        (Some(error), None, _, _) => format!("{status} {error}"),
        (None, _, Some(title), Some(detail)) => format!("{status} {title}: {detail}"),
        (None, _, Some(title), None) => format!("{status} {title}"),
        _ => format!("HTTP {status}"),
    }
}
