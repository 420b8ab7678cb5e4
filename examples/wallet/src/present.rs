//! `edk-wallet present`: OpenID4VP. The request (a signed Request Object by reference or by
//! value, verified against the key its client identifier designates, or an unsigned request
//! of a `redirect_uri:` client), the DCQL query evaluated over the stored credentials, what
//! will be disclosed shown and agreed to, and the answer posted to the `response_uri` with
//! `direct_post` or `direct_post.jwt`: one SD-JWT VC presentation per credential query, with
//! only the requested claims and a Key Binding JWT for the verifier's `client_id` and
//! `nonce`.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::sd_jwt::{ClaimPath as SdPath, KeyBindingClaims, SdJwt};
use edk_core::{Clock, Limits, SystemClock};
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::{DidKeyResolver, Resolver};
use edk_oid4vp::{
    AuthorizationRequest, AuthorizationResponse, ClaimPath, ClientId, Credential, PathElement,
    RequestObjectVerifier, ResponseMode,
};
use serde_json::Value;
use sha2::Digest as _;

use crate::http::{Http, describe_error};
use crate::store::{Store, StoredCredential};

/// How to answer.
#[derive(Debug)]
pub(crate) struct Options {
    /// PEM files of the certificates trusted for `x509_san_dns:` and `x509_hash:` verifiers.
    pub(crate) trust_anchors: Vec<PathBuf>,
    /// Answer without asking.
    pub(crate) yes: bool,
}

/// Answers the request of `uri` from `store`; prints what it discloses and the outcome.
pub(crate) async fn present(
    http: &Http,
    store: &Store,
    uri: &str,
    options: &Options,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let request = fetch_request(http, uri, &options.trust_anchors).await?;
    let client_id = request
        .client_id
        .as_ref()
        .context("the request has no client_id")?
        .to_string();
    if !matches!(
        request.response_mode,
        ResponseMode::DirectPost | ResponseMode::DirectPostJwt
    ) {
        bail!(
            "the verifier asks for response mode {}; this wallet answers with direct_post or direct_post.jwt",
            request.response_mode.as_str()
        );
    }
    let transaction_data = read_transaction_data(request.transaction_data.as_deref())?;
    let response_uri = request
        .response_uri
        .clone()
        .context("the request has no response_uri")?;

    // Which credentials answer, and what of them.
    let held: Vec<Credential> = store
        .credentials()
        .iter()
        .map(|stored| {
            Credential::sd_jwt_vc(stored.vct.clone(), Value::Object(stored.claims.clone()))
                .with_holder_binding(true)
        })
        .collect();
    let result = request.dcql_query.evaluate(&held);
    writeln!(out, "verifier: {client_id}")?;
    writeln!(
        out,
        "answer to: {response_uri} ({})",
        request.response_mode.as_str()
    )?;
    if !result.satisfied {
        let missing: Vec<&str> = result
            .credentials
            .iter()
            .filter(|query| query.matches.is_empty())
            .map(|query| query.id.as_str())
            .collect();
        decline(
            http,
            &request,
            "no credential in the wallet answers the request",
        )
        .await?;
        bail!(
            "no credential in the wallet answers the request (unanswered: {}); the verifier was told",
            missing.join(", ")
        );
    }
    let mut chosen = Vec::new();
    for query in &result.credentials {
        let Some(found) = query.matches.first() else {
            continue;
        };
        let stored = &store.credentials()[found.credential];
        let paths = disclosure_paths(&found.disclose, &stored.claims)?;
        writeln!(
            out,
            "{}: credential {} ({})",
            query.id, stored.id, stored.vct
        )?;
        if paths.is_empty() {
            writeln!(out, "  discloses no claim")?;
        }
        for path in &paths {
            writeln!(
                out,
                "  discloses {path} = {}",
                value_at(&stored.claims, path)
            )?;
        }
        // The transaction data this presentation confirms: their hashes go into the Key
        // Binding JWT.
        let mut hashes = Vec::new();
        for entry in &transaction_data {
            if entry.names(&query.id) {
                writeln!(out, "  confirms transaction data {}", entry.object)?;
                hashes.push(b64url_encode(sha2::Sha256::digest(entry.raw.as_bytes())));
            }
        }
        chosen.push((query.id.clone(), stored, paths, hashes));
    }
    out.flush()?;
    if !options.yes && !confirm()? {
        decline(http, &request, "the holder declined").await?;
        bail!("declined; the verifier was told");
    }

    let mut vp_token = BTreeMap::new();
    for (id, stored, paths, hashes) in chosen {
        let mut binding =
            KeyBindingClaims::new(&client_id, &request.nonce, SystemClock.unix_seconds());
        if !hashes.is_empty() {
            binding = binding
                .with_claim("transaction_data_hashes", Value::from(hashes))
                .with_claim("transaction_data_hashes_alg", Value::from("sha-256"));
        }
        let presentation = presentation(stored, &paths, &binding).await?;
        vp_token.insert(id, vec![Value::String(presentation)]);
    }
    let answer = AuthorizationResponse::VpToken {
        vp_token,
        state: request.state.clone(),
    };
    let body = match request.response_mode {
        ResponseMode::DirectPostJwt => answer
            .to_encrypted_form(&request)
            .context("cannot encrypt the answer to the verifier")?,
        _ => answer.to_form(),
    };
    let (status, reply) = post_form(http, response_uri.as_str(), body).await?;
    if status != 200 {
        bail!(
            "the verifier refused the presentation: {}",
            describe_error(status, &reply)
        );
    }
    writeln!(out, "presented to {client_id}")?;
    if let Some(redirect) = reply.get("redirect_uri").and_then(Value::as_str) {
        writeln!(out, "continue at: {redirect}")?;
    }
    Ok(())
}

/// The request the URI points at, verified.
async fn fetch_request(
    http: &Http,
    uri: &str,
    trust_anchors: &[PathBuf],
) -> anyhow::Result<AuthorizationRequest> {
    let url = url::Url::parse(uri).context("not an authorization request URI")?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let parameter = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let signed = match (parameter("request_uri"), parameter("request")) {
        (Some(request_uri), None) => {
            let wallet_nonce = (parameter("request_uri_method") == Some("post"))
                .then(|| uuid::Uuid::new_v4().simple().to_string());
            let request = match &wallet_nonce {
                Some(nonce) => http
                    .client()
                    .post(request_uri)
                    .form(&[("wallet_nonce", nonce.as_str())]),
                None => http.client().get(request_uri),
            };
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot fetch the request at {request_uri}"))?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            if status != 200 {
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                bail!(
                    "the verifier did not serve the request at {request_uri}: {}",
                    describe_error(status, &body)
                );
            }
            Some((text, wallet_nonce))
        }
        (None, Some(request)) => Some((request.to_owned(), None)),
        (Some(_), Some(_)) => bail!("the URI carries both request and request_uri"),
        (None, None) => None,
    };
    let Some((token, wallet_nonce)) = signed else {
        // By value, unsigned: only a redirect_uri: client, whose identifier is its
        // response_uri, may ask like this.
        let request = AuthorizationRequest::from_query_pairs(
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .context("the request is invalid")?;
        if !matches!(request.client_id, Some(ClientId::RedirectUri(_))) {
            bail!("an unsigned request must come from a redirect_uri: client");
        }
        return Ok(request);
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut anchors = Vec::new();
    for path in trust_anchors {
        anchors.extend(read_pem_certificates(path)?);
    }
    let dids = Resolver::builder()
        .method(Arc::new(DidJwk))
        .method(Arc::new(DidKey::new()))
        .build()
        .context("cannot set up DID resolution")?;
    let verifier = RequestObjectVerifier::new(anchors, clock)
        .context("a trust anchor is not a certificate")?
        .with_did_resolver(Arc::new(DidKeyResolver::new(Arc::new(dids))));
    verifier
        .verify(&token, parameter("client_id"), wallet_nonce.as_deref())
        .await
        .context("the verifier's request does not verify")
}

/// The DER certificates of a PEM file.
fn read_pem_certificates(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut certificates = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (line, current.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", None) => current = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(base64)) => {
                certificates.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(base64.as_bytes())
                        .with_context(|| {
                            format!("{} holds a broken certificate", path.display())
                        })?,
                );
                current = None;
            }
            (line, Some(base64)) => base64.push_str(line),
            _ => {}
        }
    }
    if certificates.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}

/// The SD-JWT paths of the claims `disclose` selects in `claims` (`null`, every element of
/// an array, becomes one path per element).
fn disclosure_paths(
    disclose: &[ClaimPath],
    claims: &serde_json::Map<String, Value>,
) -> anyhow::Result<Vec<SdPath>> {
    fn expand(
        elements: &[PathElement],
        value: &Value,
        prefix: &mut Vec<String>,
        out: &mut Vec<SdPath>,
    ) {
        let Some((first, rest)) = elements.split_first() else {
            out.push(SdPath::new(prefix.clone()));
            return;
        };
        let mut step = |segment: String, next: &Value, prefix: &mut Vec<String>| {
            prefix.push(segment);
            expand(rest, next, prefix, out);
            prefix.pop();
        };
        match (first, value) {
            (PathElement::Key(key), Value::Object(object)) => {
                if let Some(next) = object.get(key) {
                    step(key.clone(), next, prefix);
                }
            }
            (PathElement::Index(index), Value::Array(array)) => {
                if let Some(next) = usize::try_from(*index).ok().and_then(|i| array.get(i)) {
                    step(index.to_string(), next, prefix);
                }
            }
            (PathElement::All, Value::Array(array)) => {
                for (index, next) in array.iter().enumerate() {
                    step(index.to_string(), next, prefix);
                }
            }
            _ => {}
        }
    }
    let root = Value::Object(claims.clone());
    let mut paths = Vec::new();
    for path in disclose {
        let before = paths.len();
        expand(path.elements(), &root, &mut Vec::new(), &mut paths);
        if paths.len() == before {
            bail!("the credential has no claim at {}", path.to_json());
        }
    }
    Ok(paths)
}

/// The value at `path` in `claims`, as JSON text.
fn value_at(claims: &serde_json::Map<String, Value>, path: &SdPath) -> String {
    let mut segments = path.segments().iter();
    let mut value = segments.next().and_then(|first| claims.get(first));
    for segment in segments {
        value = value.and_then(|current| match current {
            Value::Object(object) => object.get(segment),
            Value::Array(array) => segment
                .parse::<usize>()
                .ok()
                .and_then(|index| array.get(index)),
            _ => None,
        });
    }
    value.map_or_else(|| "(absent)".to_owned(), Value::to_string)
}

/// One `transaction_data` entry of a request.
#[derive(Debug)]
struct TransactionData {
    /// The base64url string as the request carried it (what is hashed).
    raw: String,
    /// Its JSON object.
    object: Value,
}

impl TransactionData {
    /// Whether the entry's `credential_ids` name the credential query `id`.
    fn names(&self, id: &str) -> bool {
        self.object
            .get("credential_ids")
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.iter().any(|named| named.as_str() == Some(id)))
    }
}

/// The request's `transaction_data` entries, each a base64url JSON object whose hash
/// algorithms, when it lists any, include `sha-256` (the one this wallet uses).
fn read_transaction_data(entries: Option<&[String]>) -> anyhow::Result<Vec<TransactionData>> {
    let mut read = Vec::new();
    for raw in entries.unwrap_or_default() {
        let object = b64url_decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(Value::is_object)
            .context("a transaction_data entry is not a base64url JSON object")?;
        if let Some(algs) = object.get("transaction_data_hashes_alg")
            && !algs
                .as_array()
                .is_some_and(|algs| algs.iter().any(|alg| alg == "sha-256"))
        {
            bail!("a transaction_data entry asks for hashes other than sha-256: {algs}");
        }
        read.push(TransactionData {
            raw: raw.clone(),
            object,
        });
    }
    Ok(read)
}

/// The presentation of `paths` of `stored`, with a Key Binding JWT of `binding`.
async fn presentation(
    stored: &StoredCredential,
    paths: &[SdPath],
    binding: &KeyBindingClaims,
) -> anyhow::Result<String> {
    let sd_jwt = SdJwt::parse(&stored.sd_jwt, &Limits::DEFAULT)
        .with_context(|| format!("the stored credential {} is broken", stored.id))?;
    let holder_key = stored.holder_key()?;
    let presentation = sd_jwt
        .present(paths, Some((binding, &holder_key)))
        .await
        .with_context(|| format!("cannot present credential {}", stored.id))?;
    Ok(presentation.to_string())
}

/// Tells the verifier the holder will not answer (`access_denied`).
async fn decline(http: &Http, request: &AuthorizationRequest, why: &str) -> anyhow::Result<()> {
    let Some(response_uri) = &request.response_uri else {
        return Ok(());
    };
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("error", "access_denied");
    form.append_pair("error_description", why);
    if let Some(state) = &request.state {
        form.append_pair("state", state);
    }
    post_form(http, response_uri.as_str(), form.finish()).await?;
    Ok(())
}

/// Posts a form body.
async fn post_form(http: &Http, url: &str, body: String) -> anyhow::Result<(u16, Value)> {
    http.json(
        http.client()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

/// Asks on the terminal whether to send; anything but `y` or `yes` declines.
fn confirm() -> anyhow::Result<bool> {
    eprint!("send this to the verifier? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
