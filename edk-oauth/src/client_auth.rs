//! Client authentication at the token, PAR, introspection and revocation endpoints
//! (RFC 6749 §2.3, RFC 7523 §2.2 and §3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edk_core::jose::{JwksResolver, Jws, VerifyPolicy};
use edk_core::{ClientId, Limits};
use edk_tenancy::TenantContext;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::client::{Client, ClientAuthMethod};
use crate::dpop::numeric_date;
use crate::error::Error;
use crate::request::EndpointCall;
use crate::server::{AuthorizationServer, CLIENT_ASSERTION_ALGORITHMS};
use crate::store::SingleUse;

/// The `client_assertion_type` of RFC 7523 client assertions.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// One message for every failed authentication: no oracle for which part was wrong.
const FAILED: &str = "client authentication failed";

/// The replay scope of a client's assertion `jti`s, followed by the client id.
const CLIENT_ASSERTION_SCOPE: &str = "client_assertion:";

/// The longest client assertion or DPoP proof `jti` accepted, in bytes.
pub(crate) const MAX_JTI_BYTES: usize = 256;

/// The error for a single-use value that was seen before.
pub(crate) fn replayed(value: &SingleUse) -> Error {
    if value.scope.starts_with(CLIENT_ASSERTION_SCOPE) {
        Error::invalid_client("the client assertion was used before")
    } else {
        Error::invalid_dpop_proof("the proof was used before")
    }
}

/// The `client_id` of a call that identifies its client by that parameter alone (no secret,
/// assertion or attestation).
pub(crate) fn public_client_id(call: &EndpointCall) -> Option<&str> {
    let params = &call.params;
    let other = ["client_secret", "client_assertion", "client_assertion_type"]
        .iter()
        .any(|name| params.contains(name));
    if other || call.authorization.is_some() || crate::client_attestation::presented(call) {
        return None;
    }
    params.get("client_id").ok().flatten()
}

enum Presented<'a> {
    Secret {
        id: String,
        secret: zeroize::Zeroizing<String>,
        method: ClientAuthMethod,
    },
    Assertion(&'a str),
    Public(&'a str),
    Nothing,
}

impl AuthorizationServer {
    /// Authenticates the client of `call` at the endpoint `endpoint` (`token`, `par`, …):
    /// `Some(client)` for an authenticated client or an identified public client, `None` when
    /// the call carries no client identification at all.
    ///
    /// A call with client attestation headers is authenticated by them alone
    /// ([`crate::client_attestation`]); a public client, or a call naming no client, is
    /// refused when the tenant requires attestation of public clients.
    ///
    /// # Errors
    /// `invalid_client` when authentication fails; `invalid_request` when several methods are
    /// used at once; `invalid_client_attestation`, `use_fresh_attestation` or
    /// [`Error::UseAttestationChallenge`] for a client attestation that does not pass.
    pub async fn authenticate_client(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        endpoint: &str,
    ) -> Result<Option<Client>, Error> {
        let mut assertion_jti = None;
        let client = self
            .authenticate_client_deferred(tenant, call, endpoint, &mut assertion_jti)
            .await?;
        if let Some(value) = assertion_jti {
            self.spend(tenant, &[value]).await?;
        }
        Ok(client)
    }

    /// As [`authenticate_client`](Self::authenticate_client), except that a client
    /// assertion's `jti` is not recorded but put in `assertion_jti`, for the caller to record
    /// once the request is known to be valid (an endpoint writes nothing for a request that
    /// fails).
    pub(crate) async fn authenticate_client_deferred(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        endpoint: &str,
        assertion_jti: &mut Option<SingleUse>,
    ) -> Result<Option<Client>, Error> {
        let params = &call.params;
        let body_id = params.get("client_id")?;
        let body_secret = params.get("client_secret")?;
        let assertion = params.get("client_assertion")?;
        let assertion_type = params.get("client_assertion_type")?;
        let basic = call
            .authorization
            .as_deref()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, credentials)| credentials.trim());
        let attested = crate::client_attestation::presented(call);
        let methods = usize::from(basic.is_some())
            + usize::from(body_secret.is_some())
            + usize::from(assertion.is_some() || assertion_type.is_some())
            + usize::from(attested);
        if methods > 1 {
            return Err(Error::invalid_request(
                "more than one client authentication method is used",
            ));
        }
        if attested {
            return self
                .authenticate_attestation(tenant, call, body_id)
                .await
                .map(Some);
        }
        let presented = if let Some(credentials) = basic {
            let (id, secret) = parse_basic(credentials)?;
            if body_id.is_some_and(|body| body != id) {
                return Err(Error::invalid_request(
                    "`client_id` differs from the Basic credentials",
                ));
            }
            Presented::Secret {
                id,
                secret,
                method: ClientAuthMethod::ClientSecretBasic,
            }
        } else if let Some(secret) = body_secret {
            let id = body_id.ok_or_else(|| Error::invalid_request("`client_id` is missing"))?;
            Presented::Secret {
                id: id.to_owned(),
                secret: zeroize::Zeroizing::new(secret.to_owned()),
                method: ClientAuthMethod::ClientSecretPost,
            }
        } else if assertion.is_some() || assertion_type.is_some() {
            if assertion_type != Some(JWT_BEARER_ASSERTION) {
                return Err(Error::invalid_client("unsupported `client_assertion_type`"));
            }
            let assertion =
                assertion.ok_or_else(|| Error::invalid_request("`client_assertion` is missing"))?;
            Presented::Assertion(assertion)
        } else if let Some(id) = body_id {
            Presented::Public(id)
        } else {
            Presented::Nothing
        };
        match presented {
            Presented::Nothing => {
                Self::check_attestation_not_required(tenant)?;
                Ok(None)
            }
            Presented::Secret { id, secret, method } => self
                .authenticate_secret(tenant, &id, &secret, method)
                .await
                .map(Some),
            Presented::Assertion(assertion) => self
                .authenticate_assertion(tenant, assertion, body_id, endpoint, assertion_jti)
                .await
                .map(Some),
            Presented::Public(id) => {
                let client = self.lookup(tenant, id).await?;
                if client.metadata.token_endpoint_auth_method != ClientAuthMethod::None {
                    return Err(Error::invalid_client(FAILED));
                }
                Self::check_attestation_not_required(tenant)?;
                Ok(Some(client))
            }
        }
    }

    pub(crate) async fn lookup(&self, tenant: &TenantContext, id: &str) -> Result<Client, Error> {
        Ok(self.lookup_with_secret(tenant, id).await?.0)
    }

    async fn lookup_with_secret(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<(Client, Option<String>), Error> {
        let client_id = ClientId::new(id).map_err(|_| Error::invalid_client(FAILED))?;
        let ttl = self.config.client_cache_ttl;
        let now = self.now();
        let key = (tenant.id(), client_id);
        if ttl > 0
            && let Some((client, hash, fresh_until)) = self
                .clients
                .lock()
                .ok()
                .and_then(|cache| cache.get(&key).cloned())
            && now < fresh_until
        {
            return Ok((client, hash));
        }
        let (client, hash) = self
            .store
            .client(tenant, &key.1)
            .await?
            .ok_or_else(|| Error::invalid_client(FAILED))?;
        if ttl > 0
            && let Ok(mut cache) = self.clients.lock()
        {
            if cache.len() >= crate::server::CLIENT_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, (client.clone(), hash.clone(), now.saturating_add(ttl)));
        }
        Ok((client, hash))
    }

    async fn authenticate_secret(
        &self,
        tenant: &TenantContext,
        id: &str,
        secret: &str,
        method: ClientAuthMethod,
    ) -> Result<Client, Error> {
        let (client, hash) = self.lookup_with_secret(tenant, id).await?;
        if client.metadata.token_endpoint_auth_method != method {
            return Err(Error::invalid_client(FAILED));
        }
        let hash = hash.ok_or_else(|| Error::invalid_client(FAILED))?;
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let key = (tenant.id(), client.client_id.clone());
        let cached = self
            .verified_secrets
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned());
        if let Some((cached_hash, digest)) = cached
            && cached_hash == hash
            && bool::from(digest.ct_eq(&presented))
        {
            return Ok(client);
        }
        if !self.verify_secret(tenant, secret, &hash).await? {
            return Err(Error::invalid_client(FAILED));
        }
        if let Ok(mut cache) = self.verified_secrets.lock() {
            cache.insert(key, (hash, presented));
        }
        Ok(client)
    }

    async fn authenticate_assertion(
        &self,
        tenant: &TenantContext,
        assertion: &str,
        body_id: Option<&str>,
        endpoint: &str,
        assertion_jti: &mut Option<SingleUse>,
    ) -> Result<Client, Error> {
        let limits = Limits::DEFAULT.with_max_token_bytes(16 * 1024);
        let jws = Jws::parse(assertion, &limits).map_err(|_| Error::invalid_client(FAILED))?;
        let unverified: serde_json::Map<String, Value> =
            serde_json::from_slice(jws.unverified_payload())
                .map_err(|_| Error::invalid_client(FAILED))?;
        let iss = unverified.get("iss").and_then(Value::as_str);
        let sub = unverified.get("sub").and_then(Value::as_str);
        let (Some(iss), Some(sub)) = (iss, sub) else {
            return Err(Error::invalid_client(FAILED));
        };
        if iss != sub || body_id.is_some_and(|id| id != iss) {
            return Err(Error::invalid_client(FAILED));
        }
        let client = self.lookup(tenant, iss).await?;
        if client.metadata.token_endpoint_auth_method != ClientAuthMethod::PrivateKeyJwt {
            return Err(Error::invalid_client(FAILED));
        }
        let Some(jwks) = &client.metadata.jwks else {
            return Err(Error::invalid_client(FAILED));
        };
        let resolver = JwksResolver::new(jwks);
        let policy = VerifyPolicy::default().with_algorithms(&CLIENT_ASSERTION_ALGORITHMS);
        let verified = jws
            .verify_with(&resolver, &policy, None)
            .await
            .map_err(|_| Error::invalid_client(FAILED))?;
        let claims = verified
            .claims()
            .map_err(|_| Error::invalid_client(FAILED))?;
        let now = self.now();
        let issuer = Self::issuer(tenant)?;
        let endpoint_url = Self::endpoint_url(tenant, endpoint)?;
        let token_url = Self::endpoint_url(tenant, "token")?;
        let audience_ok = |aud: &str| aud == issuer || aud == endpoint_url || aud == token_url;
        let aud_ok = match claims.get("aud") {
            Some(Value::String(aud)) => audience_ok(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(audience_ok),
            _ => false,
        };
        let exp = claims.get("exp").and_then(numeric_date);
        let jti = claims.get("jti").and_then(Value::as_str);
        let (Some(exp), Some(jti)) = (exp, jti) else {
            return Err(Error::invalid_client(FAILED));
        };
        let max_age = self.config.proof_max_age;
        // Saturating: `iat` and `exp` are the caller's, any i64 (or float) at all.
        let iat_ok = claims.get("iat").is_none_or(|iat| {
            numeric_date(iat).is_some_and(|iat| {
                iat <= now.saturating_add(60) && now.saturating_sub(iat) <= max_age
            })
        });
        let lifetime = self.config.client_assertion_max_lifetime;
        if !aud_ok
            || exp <= now
            || exp > now.saturating_add(lifetime).saturating_add(60)
            || !iat_ok
            || jti.is_empty()
            || jti.len() > MAX_JTI_BYTES
        {
            return Err(Error::invalid_client(FAILED));
        }
        *assertion_jti = Some(SingleUse {
            scope: format!("{CLIENT_ASSERTION_SCOPE}{}", client.client_id.as_str()),
            jti: jti.to_owned(),
            expires_at: exp,
        });
        Ok(client)
    }

    /// Records the single-use values of a request (its DPoP proof's and client assertion's
    /// `jti`), in order.
    ///
    /// # Errors
    /// `invalid_dpop_proof` or `invalid_client` for a value seen before (the values before it
    /// stay recorded).
    pub(crate) async fn spend(
        &self,
        tenant: &TenantContext,
        values: &[SingleUse],
    ) -> Result<(), Error> {
        for value in values {
            if !self
                .store
                .use_jti(tenant, &value.scope, &value.jti, value.expires_at)
                .await?
            {
                return Err(replayed(value));
            }
        }
        Ok(())
    }
}

fn parse_basic(credentials: &str) -> Result<(String, zeroize::Zeroizing<String>), Error> {
    let decoded = STANDARD
        .decode(credentials)
        .map_err(|_| Error::invalid_client(FAILED))?;
    let decoded = zeroize::Zeroizing::new(
        String::from_utf8(decoded).map_err(|_| Error::invalid_client(FAILED))?,
    );
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| Error::invalid_client(FAILED))?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded.
    let decode = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Ok((decode(id), zeroize::Zeroizing::new(decode(secret))))
}
