//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6; OID4VCI §6; RFC 9449 §5) and the
//! access tokens it issues (RFC 9068).

use edk_core::ClientId;
use edk_tenancy::TenantContext;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::client::{Client, ClientAuthMethod, GrantType};
use crate::dpop::{self, DpopProof};
use crate::error::{Error, OAuthErrorCode};
use crate::grant::Grant;
use crate::request::EndpointCall;
use crate::server::{AuthorizationServer, tx_code_digest};
use crate::store::{
    AccessTokenRecord, CodeRedeem, CodeRedemption, PreAuthRedemption, RefreshRecord,
    RefreshRotation,
};

/// The `typ` of JWT access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, Serialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a sender-constrained token.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// A refresh token, if one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The granted `authorization_details` (RFC 9396 §7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
    /// An OpenID Connect ID token, for `openid` requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A successful token endpoint call: the response and a fresh DPoP nonce to send along in
/// `DPoP-Nonce`, when DPoP was used.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenOutcome {
    /// The response body.
    pub response: TokenResponse,
    /// The nonce for the `DPoP-Nonce` header.
    pub dpop_nonce: Option<String>,
}

/// How a token is issued: who for and into which family.
struct Issue<'a> {
    grant: &'a Grant,
    client_id: Option<&'a ClientId>,
    family: Option<&'a str>,
    jkt: Option<&'a str>,
    nonce: Option<&'a str>,
}

impl AuthorizationServer {
    /// Handles a token request.
    ///
    /// # Errors
    /// The RFC 6749 §5.2 error for the request; [`Error::UseDpopNonce`] when the DPoP proof
    /// needs a fresh server nonce.
    pub async fn token(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
    ) -> Result<TokenOutcome, Error> {
        if call.method != "POST" {
            return Err(Error::invalid_request("the token endpoint takes POST only"));
        }
        let grant_type = call.params.require("grant_type")?;
        let grant_type = GrantType::from_name(grant_type).ok_or_else(|| {
            Error::oauth(
                OAuthErrorCode::UnsupportedGrantType,
                "the grant type is not supported",
            )
        })?;
        let client = self.authenticate_client(tenant, call, "token").await?;
        if let Some(client) = &client
            && !client.metadata.grant_types.contains(&grant_type)
        {
            return Err(Error::oauth(
                OAuthErrorCode::UnauthorizedClient,
                "the client may not use this grant type",
            ));
        }
        if grant_type == GrantType::RefreshToken {
            self.check_refresh_instance(tenant, call).await?;
        }
        let proof = self.check_dpop(tenant, call, "token", None).await?;
        if client
            .as_ref()
            .is_some_and(|c| c.metadata.dpop_bound_access_tokens)
            && proof.is_none()
        {
            return Err(Error::invalid_request("the client must use DPoP"));
        }
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        let response = match grant_type {
            GrantType::ClientCredentials => {
                self.client_credentials(tenant, call, client.as_ref(), jkt)
                    .await?
            }
            GrantType::PreAuthorizedCode => {
                self.pre_authorized_code(tenant, call, client.as_ref(), jkt)
                    .await?
            }
            GrantType::AuthorizationCode => {
                self.authorization_code(tenant, call, client.as_ref(), jkt)
                    .await?
            }
            GrantType::RefreshToken => self.refresh(tenant, call, client.as_ref(), jkt).await?,
        };
        let dpop_nonce = match proof {
            Some(_) => Some(self.current_dpop_nonce(tenant).await?),
            None => None,
        };
        Ok(TokenOutcome {
            response,
            dpop_nonce,
        })
    }

    /// The tenant's current DPoP nonce.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn current_dpop_nonce(&self, tenant: &TenantContext) -> Result<String, Error> {
        let ttl = self.config.dpop_nonce_ttl;
        self.store
            .dpop_nonce(tenant, self.now(), ttl / 2, ttl)
            .await
    }

    /// Checks the DPoP proof of `call` to `endpoint`, if there is one: the stateless checks,
    /// the server nonce and `jti` replay.
    pub(crate) async fn check_dpop(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        endpoint: &str,
        access_token: Option<&str>,
    ) -> Result<Option<DpopProof>, Error> {
        let Some(header) = dpop::single_header(&call.dpop)? else {
            return Ok(None);
        };
        let htu = Self::endpoint_url(tenant, endpoint)?;
        let now = self.now();
        let max_age = self.config.proof_max_age;
        let proof = dpop::verify_proof(header, &call.method, &htu, now, max_age, access_token)?;
        if self.config.dpop_nonce_required {
            let valid = match &proof.nonce {
                Some(nonce) => self.store.dpop_nonce_valid(tenant, nonce, now).await?,
                None => false,
            };
            if !valid {
                return Err(Error::UseDpopNonce {
                    nonce: self.current_dpop_nonce(tenant).await?,
                });
            }
        }
        let scope = format!("dpop:{}", proof.jkt);
        if !self
            .store
            .use_jti(tenant, &scope, &proof.jti, now + 2 * max_age)
            .await?
        {
            return Err(Error::invalid_dpop_proof("the proof was used before"));
        }
        Ok(Some(proof))
    }

    async fn client_credentials(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        client: Option<&Client>,
        jkt: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let client = confidential(client)?;
        let scopes = granted_scopes(call.params.get("scope")?, &client.metadata.scopes, true)?;
        let mut grant = Grant::new(client.client_id.as_str());
        grant.client_id = Some(client.client_id.clone());
        grant.scopes = scopes;
        grant.resource = resource(call)?;
        self.issue(
            tenant,
            &Issue {
                grant: &grant,
                client_id: Some(&client.client_id),
                family: None,
                jkt,
                nonce: None,
            },
            false,
        )
        .await
    }

    async fn pre_authorized_code(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        client: Option<&Client>,
        jkt: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        if client.is_none() && !self.config.pre_authorized_anonymous_access {
            return Err(Error::invalid_client("client authentication is required"));
        }
        let code = call.params.require("pre-authorized_code")?;
        let tx_code = call.params.get("tx_code")?;
        let tx_hash = tx_code.map(|tx| tx_code_digest(code, tx));
        let max = self.config.tx_code_max_attempts;
        let outcome = self
            .store
            .redeem_pre_auth(
                tenant,
                &crate::random::digest(code),
                tx_hash.as_deref(),
                max,
                self.now(),
            )
            .await?;
        let mut grant = match outcome {
            PreAuthRedemption::Redeemed(grant) => *grant,
            PreAuthRedemption::TxCodeRequired => {
                return Err(Error::invalid_request("`tx_code` is required"));
            }
            PreAuthRedemption::WrongTxCode { remaining: 0 } => {
                return Err(Error::invalid_grant(
                    "wrong `tx_code`; the pre-authorized code is now revoked",
                ));
            }
            PreAuthRedemption::WrongTxCode { remaining } => {
                return Err(Error::invalid_grant(format!(
                    "wrong `tx_code`; {remaining} attempts left"
                )));
            }
            PreAuthRedemption::Invalid => {
                return Err(Error::invalid_grant(
                    "the pre-authorized code is invalid, expired or used",
                ));
            }
        };
        grant.client_id = client.map(|c| c.client_id.clone());
        grant.client_instance_jkt = crate::client_attestation::instance_jkt(call);
        let refresh =
            client.is_some_and(|c| c.metadata.grant_types.contains(&GrantType::RefreshToken));
        // A family ties refresh tokens to the access tokens they lead to; without a refresh
        // token nothing can revoke one, so the access token needs no record.
        let family = refresh.then(crate::random::token);
        if refresh {
            grant.dpop_jkt = jkt.map(str::to_owned);
        }
        self.issue(
            tenant,
            &Issue {
                grant: &grant,
                client_id: client.map(|c| &c.client_id),
                family: family.as_deref(),
                jkt,
                nonce: None,
            },
            refresh,
        )
        .await
    }

    async fn authorization_code(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        client: Option<&Client>,
        jkt: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let client = client.ok_or_else(|| Error::invalid_client("the client is not identified"))?;
        let code = call.params.require("code")?;
        let redirect_uri = call.params.require("redirect_uri")?;
        let verifier = call.params.require("code_verifier")?;
        if !(43..=128).contains(&verifier.len())
            || !verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(Error::invalid_grant("the `code_verifier` is malformed"));
        }
        let challenge = crate::random::s256(verifier);
        let redemption = CodeRedeem {
            code_hash: &crate::random::digest(code),
            client_id: &client.client_id,
            redirect_uri,
            code_challenge: &challenge,
            dpop_jkt: jkt,
        };
        let now = self.now();
        let (family, code) = match self.store.redeem_code(tenant, &redemption, now).await? {
            CodeRedemption::Redeemed { family, code, .. } => (family, code),
            CodeRedemption::Replayed { family } => {
                self.store.revoke_family(tenant, &family, now).await?;
                return Err(Error::invalid_grant(
                    "the authorization code was used before",
                ));
            }
            CodeRedemption::Invalid => {
                return Err(Error::invalid_grant(
                    "the authorization code is invalid or expired, or was issued for another \
                     client, redirect_uri, code_verifier or DPoP key",
                ));
            }
        };
        let mut grant = code.grant;
        grant.client_instance_jkt = crate::client_attestation::instance_jkt(call);
        // A public client's refresh tokens stay bound to the DPoP key of this request.
        if client.metadata.token_endpoint_auth_method == ClientAuthMethod::None {
            grant.dpop_jkt = jkt.map(str::to_owned);
        }
        let refresh = client
            .metadata
            .grant_types
            .contains(&GrantType::RefreshToken);
        self.issue(
            tenant,
            &Issue {
                grant: &grant,
                client_id: Some(&client.client_id),
                family: Some(&family),
                jkt,
                nonce: code.nonce.as_deref(),
            },
            refresh,
        )
        .await
    }

    async fn refresh(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        client: Option<&Client>,
        jkt: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let client = client.ok_or_else(|| Error::invalid_client("the client is not identified"))?;
        let token = call.params.require("refresh_token")?;
        let now = self.now();
        let rotation = self
            .store
            .rotate_refresh(
                tenant,
                &crate::random::digest(token),
                &client.client_id,
                jkt,
                now,
            )
            .await?;
        let record = match rotation {
            RefreshRotation::Rotated(record) => *record,
            RefreshRotation::Replayed => {
                return Err(Error::invalid_grant(
                    "the refresh token was used before; its grant is revoked",
                ));
            }
            RefreshRotation::Invalid => {
                return Err(Error::invalid_grant(
                    "the refresh token is invalid, expired, revoked or bound elsewhere",
                ));
            }
        };
        let mut grant = record.grant;
        if let Some(requested) = call.params.get("scope")? {
            grant.scopes = granted_scopes(Some(requested), &grant.scopes, false)?;
        }
        self.issue(
            tenant,
            &Issue {
                grant: &grant,
                client_id: Some(&client.client_id),
                family: Some(&record.family),
                jkt,
                nonce: None,
            },
            true,
        )
        .await
    }

    async fn issue(
        &self,
        tenant: &TenantContext,
        issue: &Issue<'_>,
        with_refresh: bool,
    ) -> Result<TokenResponse, Error> {
        let now = self.now();
        let issuer = Self::issuer(tenant)?;
        let grant = issue.grant;
        let ttl = self.config.access_token_ttl;
        let jti = crate::random::token();
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), json!(issuer));
        claims.insert("sub".to_owned(), json!(grant.subject));
        claims.insert(
            "aud".to_owned(),
            json!(grant.resource.clone().unwrap_or_else(|| issuer.clone())),
        );
        if let Some(client_id) = issue.client_id {
            claims.insert("client_id".to_owned(), json!(client_id.as_str()));
        }
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now + ttl));
        claims.insert("jti".to_owned(), json!(jti));
        if !grant.scopes.is_empty() {
            claims.insert("scope".to_owned(), json!(grant.scopes.join(" ")));
        }
        if let Some(details) = &grant.authorization_details {
            claims.insert("authorization_details".to_owned(), details.clone());
        }
        if let Some(auth_time) = grant.auth_time {
            claims.insert("auth_time".to_owned(), json!(auth_time));
        }
        if let Some(acr) = &grant.acr {
            claims.insert("acr".to_owned(), json!(acr));
        }
        if !grant.amr.is_empty() {
            claims.insert("amr".to_owned(), json!(grant.amr));
        }
        if let Some(jkt) = issue.jkt {
            claims.insert("cnf".to_owned(), json!({ "jkt": jkt }));
        }
        crate::claims::copy_into_token(&self.config, grant, &mut claims);
        let access_token = self.sign_jwt(tenant, ACCESS_TOKEN_TYP, &claims).await?;
        self.record_grant_claims(tenant, &jti, grant, now + ttl)
            .await?;
        // Only a family's tokens are recorded: revoking the family must find them.
        if let Some(family) = issue.family {
            self.store
                .insert_access_token(
                    tenant,
                    &AccessTokenRecord {
                        jti,
                        family: Some(family.to_owned()),
                        client_id: issue.client_id.cloned(),
                        claims,
                        expires_at: now + ttl,
                        revoked: false,
                    },
                )
                .await?;
        }
        let refresh_token = match (with_refresh, issue.client_id, issue.family) {
            (true, Some(client_id), Some(family)) => {
                let token = crate::random::token();
                let record = RefreshRecord {
                    family: family.to_owned(),
                    client_id: client_id.clone(),
                    grant: grant.clone(),
                    expires_at: now + self.config.refresh_token_ttl,
                    created_at: now,
                };
                self.store
                    .insert_refresh(tenant, &crate::random::digest(&token), &record)
                    .await?;
                Some(token)
            }
            _ => None,
        };
        let id_token = match issue.client_id {
            Some(client_id) if self.wants_id_token(grant) => Some(
                self.id_token(tenant, grant, client_id, issue.nonce, &issuer, now)
                    .await?,
            ),
            _ => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: if issue.jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: ttl,
            refresh_token,
            scope: (!grant.scopes.is_empty()).then(|| grant.scopes.join(" ")),
            authorization_details: grant.authorization_details.clone(),
            id_token,
        })
    }

    fn wants_id_token(&self, grant: &Grant) -> bool {
        self.config.openid
            && grant.auth_time.is_some()
            && grant.scopes.iter().any(|s| s == "openid")
    }

    async fn id_token(
        &self,
        tenant: &TenantContext,
        grant: &Grant,
        client_id: &ClientId,
        nonce: Option<&str>,
        issuer: &str,
        now: i64,
    ) -> Result<String, Error> {
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), json!(issuer));
        claims.insert("sub".to_owned(), json!(grant.subject));
        claims.insert("aud".to_owned(), json!(client_id.as_str()));
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now + self.config.access_token_ttl));
        if let Some(auth_time) = grant.auth_time {
            claims.insert("auth_time".to_owned(), json!(auth_time));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".to_owned(), json!(nonce));
        }
        self.sign_jwt(tenant, "JWT", &claims).await
    }
}

fn confidential(client: Option<&Client>) -> Result<&Client, Error> {
    match client {
        Some(client) if client.metadata.token_endpoint_auth_method != ClientAuthMethod::None => {
            Ok(client)
        }
        _ => Err(Error::invalid_client("client authentication is required")),
    }
}

/// The scopes granted for `requested` out of `allowed`: all of `allowed` when nothing is
/// requested and `default_all`.
pub(crate) fn granted_scopes(
    requested: Option<&str>,
    allowed: &[String],
    default_all: bool,
) -> Result<Vec<String>, Error> {
    let Some(requested) = requested else {
        return Ok(if default_all {
            allowed.to_vec()
        } else {
            Vec::new()
        });
    };
    let mut granted = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
            return Err(Error::oauth(
                OAuthErrorCode::InvalidScope,
                format!("scope `{scope}` is not allowed for this client"),
            ));
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    Ok(granted)
}

/// The RFC 8707 `resource` of a token request: an absolute `https` URI without fragment.
fn resource(call: &EndpointCall) -> Result<Option<String>, Error> {
    let Some(resource) = call.params.get("resource")? else {
        return Ok(None);
    };
    match url::Url::parse(resource) {
        Ok(url) if url.scheme() == "https" && url.fragment().is_none() => {
            Ok(Some(resource.to_owned()))
        }
        _ => Err(Error::oauth(
            OAuthErrorCode::InvalidTarget,
            "`resource` must be an absolute https URI without fragment",
        )),
    }
}
