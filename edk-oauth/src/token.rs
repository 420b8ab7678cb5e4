//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6; OID4VCI §6; RFC 9449 §5) and the
//! access tokens it issues (RFC 9068).

use edk_core::ClientId;
use edk_tenancy::TenantContext;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::client::{Client, ClientAuthMethod, ClientMetadata, GrantType};
use crate::dpop::{self, DpopProof};
use crate::error::{Error, OAuthErrorCode};
use crate::grant::{Grant, narrow_details, not_granted};
use crate::request::EndpointCall;
use crate::server::{AuthorizationServer, tx_code_digest};
use crate::store::{
    AccessTokenRecord, CodeRedeem, CodeRedemption, GrantCheck, PreAuthRedemption, RefreshRecord,
    RefreshRotate, RefreshRotation, SingleUse,
};

/// The `typ` of JWT access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The `client_id` claim (RFC 9068 §2.2) of access tokens redeemed from a pre-authorized
/// code without client authentication (OID4VCI anonymous access). No client can be
/// registered under it.
pub const ANONYMOUS_CLIENT_ID: &str = "anonymous";

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
    /// What the access token carries.
    grant: &'a Grant,
    /// What a refresh token stands for, when it differs from `grant` (a refresh request
    /// narrowing the access token's scope).
    refresh_grant: Option<&'a Grant>,
    client_id: Option<&'a ClientId>,
    /// The registration of the client the tokens are issued to: its fixed token claims and
    /// audiences go into the access token.
    registered: Option<&'a ClientMetadata>,
    family: Option<&'a str>,
    jkt: Option<&'a str>,
    nonce: Option<&'a str>,
}

/// A token request whose DPoP proof and client were checked.
#[derive(Clone, Copy)]
struct TokenRequest<'a> {
    call: &'a EndpointCall,
    client: Option<&'a Client>,
    jkt: Option<&'a str>,
    /// The request's `authorization_details`, checked by
    /// [`requested_authorization_details`](crate::authorize::requested_authorization_details).
    requested: Option<&'a Value>,
    /// The request's single-use values, to record once the grant is valid.
    single_use: &'a [SingleUse],
}

/// Signed tokens and the records to store for them.
struct Prepared {
    response: TokenResponse,
    /// The access token's record, for a token of a family.
    access_record: Option<AccessTokenRecord>,
    /// The new refresh token's digest and record.
    refresh: Option<(String, RefreshRecord)>,
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
        // RFC 9396 §6: the request may narrow the grant's `authorization_details`, never
        // name `credential_identifiers` of its own.
        let requested = crate::authorize::requested_authorization_details(&call.params)?;
        let requested = requested.as_ref();
        // RFC 9449 §8: the proof and its nonce are checked before the client authenticates,
        // so that a retry after `use_dpop_nonce` can reuse its client assertion.
        let proof = self.verify_dpop(tenant, call, "token", None).await?;
        let mut assertion_jti = None;
        let client = match self
            .authenticate_client_deferred(tenant, call, "token", &mut assertion_jti)
            .await
        {
            Ok(client) => client,
            Err(err)
                if self
                    .unregistered_wallet(tenant, call, grant_type, &err)
                    .await? =>
            {
                None
            }
            Err(err) => return Err(err),
        };
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
        if client
            .as_ref()
            .is_some_and(|c| c.metadata.dpop_bound_access_tokens)
            && proof.is_none()
        {
            return Err(Error::invalid_request("the client must use DPoP"));
        }
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        // Recorded only once the grant is known to be valid: a failed request writes nothing.
        let mut single_use: Vec<SingleUse> =
            proof.iter().map(|p| self.dpop_single_use(p)).collect();
        single_use.extend(assertion_jti);
        // Read before the grant is spent: a failure after it would lose the new tokens.
        let dpop_nonce = match proof {
            Some(_) => Some(self.current_dpop_nonce(tenant).await?),
            None => None,
        };
        let client = client.as_ref();
        let request = TokenRequest {
            call,
            client,
            jkt,
            requested,
            single_use: &single_use,
        };
        let response = match grant_type {
            GrantType::ClientCredentials => self.client_credentials(tenant, &request).await?,
            GrantType::PreAuthorizedCode => self.pre_authorized_code(tenant, &request).await?,
            GrantType::AuthorizationCode => self.authorization_code(tenant, &request).await?,
            GrantType::RefreshToken => self.refresh(tenant, &request).await?,
        };
        Ok(TokenOutcome {
            response,
            dpop_nonce,
        })
    }

    /// Whether a token request whose client authentication failed with `err` is a wallet
    /// redeeming a pre-authorized code under a `client_id` of its own that is not registered
    /// here (OID4VCI wallets send one, with no credentials). With anonymous access on, the
    /// request is then anonymous, as if it named no client; a registered client must still
    /// authenticate.
    async fn unregistered_wallet(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        grant_type: GrantType,
        err: &Error,
    ) -> Result<bool, Error> {
        if grant_type != GrantType::PreAuthorizedCode
            || !self.config.pre_authorized_anonymous_access
            || err.code() != OAuthErrorCode::InvalidClient
        {
            return Ok(false);
        }
        let Some(id) = crate::client_auth::public_client_id(call) else {
            return Ok(false);
        };
        let registered = match ClientId::new(id) {
            Ok(id) => self.store.client(tenant, &id).await?.is_some(),
            Err(_) => false,
        };
        if registered {
            return Ok(false);
        }
        // As for a request naming no client at all.
        Self::check_attestation_not_required(tenant)?;
        Ok(true)
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

    /// Checks the DPoP proof of `call` to `endpoint`, if there is one: the stateless checks
    /// and the server nonce. Its `jti` ([`dpop_single_use`](Self::dpop_single_use)) is for
    /// the caller to record once the request is known to be valid.
    pub(crate) async fn verify_dpop(
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
        Ok(Some(proof))
    }

    /// The `jti` of a DPoP proof as a single-use value, remembered for as long as the proof
    /// could be accepted.
    pub(crate) fn dpop_single_use(&self, proof: &DpopProof) -> SingleUse {
        let max_age = self.config.proof_max_age;
        SingleUse {
            scope: format!("dpop:{}", proof.jkt),
            jti: proof.jti.clone(),
            expires_at: self.now().saturating_add(max_age.saturating_mul(2)),
        }
    }

    async fn client_credentials(
        &self,
        tenant: &TenantContext,
        request: &TokenRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        let TokenRequest {
            call,
            client,
            jkt,
            requested,
            single_use,
        } = *request;
        let client = confidential(client)?;
        let scopes = granted_scopes(call.params.get("scope")?, &client.metadata.scopes, true)?;
        let mut grant = Grant::new(client.client_id.as_str());
        grant.client_id = Some(client.client_id.clone());
        grant.scopes = scopes;
        grant.resource = resource(call, &client.metadata.resources)?;
        grant.authorization_details = narrow_details(requested, None)?;
        self.spend(tenant, single_use).await?;
        self.issue(
            tenant,
            &Issue {
                grant: &grant,
                refresh_grant: None,
                client_id: Some(&client.client_id),
                registered: Some(&client.metadata),
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
        request: &TokenRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        let TokenRequest {
            call,
            client,
            jkt,
            requested,
            single_use,
        } = *request;
        if client.is_none() && !self.config.pre_authorized_anonymous_access {
            return Err(Error::invalid_client("client authentication is required"));
        }
        let code = call.params.require("pre-authorized_code")?;
        let tx_code = call.params.get("tx_code")?;
        let tx_hash = tx_code.map(|tx| tx_code_digest(code, tx));
        let max = self.config.tx_code_max_attempts;
        let narrows =
            |grant: &Grant| narrow_details(requested, grant.authorization_details.as_ref()).is_ok();
        let outcome = self
            .store
            .redeem_pre_auth(
                tenant,
                &crate::random::digest(code),
                tx_hash.as_deref(),
                max,
                GrantCheck(&narrows),
                self.now(),
            )
            .await?;
        let mut grant = match outcome {
            PreAuthRedemption::Redeemed(grant) => *grant,
            PreAuthRedemption::TxCodeRequired => {
                return Err(Error::invalid_request("`tx_code` is required"));
            }
            PreAuthRedemption::TxCodeNotExpected => {
                return Err(Error::invalid_request(
                    "`tx_code` was sent, but the pre-authorized code has none",
                ));
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
            PreAuthRedemption::Refused => return Err(not_granted()),
        };
        if let Some(policy) = &self.credential_grant_policy {
            policy
                .pre_authorized_code_redeemed(tenant, &grant.subject)
                .await?;
        }
        grant.authorization_details =
            narrow_details(requested, grant.authorization_details.as_ref())?;
        self.spend(tenant, single_use).await?;
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
                refresh_grant: None,
                client_id: client.map(|c| &c.client_id),
                registered: client.map(|c| &c.metadata),
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
        request: &TokenRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        let TokenRequest {
            call,
            client,
            jkt,
            requested,
            single_use,
        } = *request;
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
        let narrows =
            |grant: &Grant| narrow_details(requested, grant.authorization_details.as_ref()).is_ok();
        let redemption = CodeRedeem {
            code_hash: &crate::random::digest(code),
            client_id: &client.client_id,
            redirect_uri,
            code_challenge: &challenge,
            dpop_jkt: jkt,
            check: GrantCheck(&narrows),
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
            CodeRedemption::Refused => return Err(not_granted()),
        };
        self.spend(tenant, single_use).await?;
        let mut grant = code.grant;
        grant.authorization_details =
            narrow_details(requested, grant.authorization_details.as_ref())?;
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
                refresh_grant: None,
                client_id: Some(&client.client_id),
                registered: Some(&client.metadata),
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
        request: &TokenRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        let TokenRequest {
            call,
            client,
            jkt,
            requested: requested_details,
            single_use,
        } = *request;
        let client = client.ok_or_else(|| Error::invalid_client("the client is not identified"))?;
        let token = call.params.require("refresh_token")?;
        let requested = call.params.get("scope")?;
        let token_hash = crate::random::digest(token);
        let now = self.now();
        let mut rotation = RefreshRotate {
            token_hash: &token_hash,
            client_id: &client.client_id,
            dpop_jkt: jkt,
            next: None,
            access_token: None,
            single_use: &[],
        };
        // Read first: a request that fails its own checks (a `scope` beyond the grant, a
        // signing failure) leaves the refresh token as it was.
        let current = self
            .store
            .refresh_token(tenant, &token_hash, now)
            .await?
            .filter(|record| {
                record.client_id == client.client_id
                    && record
                        .grant
                        .dpop_jkt
                        .as_deref()
                        .is_none_or(|bound| Some(bound) == jkt)
            });
        let Some(record) = current else {
            // Not current for this client and key: the store tells a replay of a rotated
            // token, which revokes its grant, from the rest. Nothing can rotate here.
            let outcome = self.store.rotate_refresh(tenant, &rotation, now).await?;
            return Err(refresh_refused(&outcome, single_use));
        };
        let mut access_grant = record.grant.clone();
        if let Some(requested) = requested {
            // RFC 6749 §6: the access token may be narrower; the refresh token keeps the
            // grant's scope.
            access_grant.scopes = granted_scopes(Some(requested), &record.grant.scopes, false)?;
        }
        // Likewise for `authorization_details` (RFC 9396 §6.2).
        access_grant.authorization_details = narrow_details(
            requested_details,
            record.grant.authorization_details.as_ref(),
        )?;
        let prepared = self
            .prepare(
                tenant,
                &Issue {
                    grant: &access_grant,
                    refresh_grant: Some(&record.grant),
                    client_id: Some(&client.client_id),
                    registered: Some(&client.metadata),
                    family: Some(&record.family),
                    jkt,
                    nonce: None,
                },
                true,
            )
            .await?;
        // One unit: the rotation, the request's single-use values, the new refresh token and
        // the access token's record are stored together or not at all.
        rotation.next = prepared
            .refresh
            .as_ref()
            .map(|(hash, next)| (hash.as_str(), next));
        rotation.access_token = prepared.access_record.as_ref();
        rotation.single_use = single_use;
        match self.store.rotate_refresh(tenant, &rotation, now).await? {
            RefreshRotation::Rotated(_) => Ok(prepared.response),
            outcome => Err(refresh_refused(&outcome, single_use)),
        }
    }

    /// Issues the tokens of `issue` and stores their records.
    async fn issue(
        &self,
        tenant: &TenantContext,
        issue: &Issue<'_>,
        with_refresh: bool,
    ) -> Result<TokenResponse, Error> {
        let prepared = self.prepare(tenant, issue, with_refresh).await?;
        if let Some(record) = &prepared.access_record {
            self.store.insert_access_token(tenant, record).await?;
        }
        if let Some((hash, record)) = &prepared.refresh {
            self.store.insert_refresh(tenant, hash, record).await?;
        }
        Ok(prepared.response)
    }

    /// Signs the tokens of `issue` (the access token, an ID token) and makes the records to
    /// store for them; of these it stores only the grant's end-user claims (kept per access
    /// token, harmless when the token is never handed out).
    async fn prepare(
        &self,
        tenant: &TenantContext,
        issue: &Issue<'_>,
        with_refresh: bool,
    ) -> Result<Prepared, Error> {
        let now = self.now();
        let issuer = Self::issuer(tenant)?;
        let grant = issue.grant;
        let ttl = self.config.access_token_ttl;
        let jti = crate::random::token();
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), json!(issuer));
        claims.insert("sub".to_owned(), json!(grant.subject));
        claims.insert("aud".to_owned(), audience(grant, &issuer));
        // RFC 9068 §2.2: every access token names its client.
        let client_id = issue
            .client_id
            .map_or(ANONYMOUS_CLIENT_ID, ClientId::as_str);
        claims.insert("client_id".to_owned(), json!(client_id));
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now + ttl));
        claims.insert("jti".to_owned(), json!(jti));
        if !grant.scopes.is_empty() {
            claims.insert("scope".to_owned(), json!(grant.scopes.join(" ")));
        }
        if let Some(details) = &grant.authorization_details {
            claims.insert("authorization_details".to_owned(), details.clone());
        }
        if let Some(issuer_state) = &grant.issuer_state {
            claims.insert("issuer_state".to_owned(), json!(issuer_state));
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
        if let Some(registered) = issue.registered {
            crate::claims::add_client_claims(registered, &mut claims);
        }
        let access_token = self.sign_jwt(tenant, ACCESS_TOKEN_TYP, &claims).await?;
        let id_token = match issue.client_id {
            Some(client_id) if self.wants_id_token(grant) => Some(
                self.id_token(tenant, grant, client_id, issue.nonce, &issuer, now)
                    .await?,
            ),
            _ => None,
        };
        self.record_grant_claims(tenant, &jti, grant, now + ttl)
            .await?;
        // Only a family's tokens are recorded: revoking the family must find them.
        let access_record = issue.family.map(|family| AccessTokenRecord {
            jti,
            family: Some(family.to_owned()),
            client_id: issue.client_id.cloned(),
            claims,
            expires_at: now + ttl,
            revoked: false,
        });
        let refresh = match (with_refresh, issue.client_id, issue.family) {
            (true, Some(client_id), Some(family)) => {
                let token = crate::random::token();
                let record = RefreshRecord {
                    family: family.to_owned(),
                    client_id: client_id.clone(),
                    grant: issue.refresh_grant.unwrap_or(grant).clone(),
                    expires_at: now + self.config.refresh_token_ttl,
                    created_at: now,
                };
                Some((token, record))
            }
            _ => None,
        };
        let response = TokenResponse {
            access_token,
            token_type: if issue.jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: ttl,
            refresh_token: refresh.as_ref().map(|(token, _)| token.clone()),
            scope: (!grant.scopes.is_empty()).then(|| grant.scopes.join(" ")),
            authorization_details: grant.authorization_details.clone(),
            id_token,
        };
        Ok(Prepared {
            response,
            access_record,
            refresh: refresh.map(|(token, record)| (crate::random::digest(&token), record)),
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

/// The audience of an access token for `grant`: the `locations` of its
/// `authorization_details` (RFC 9396 §2.2; one is a string, several an array), else its
/// RFC 8707 `resource`, else the AS's `issuer`.
fn audience(grant: &Grant, issuer: &str) -> Value {
    match crate::authorize::locations(grant.authorization_details.as_ref()).as_slice() {
        [] => json!(grant.resource.as_deref().unwrap_or(issuer)),
        [location] => json!(location),
        locations => json!(locations),
    }
}

/// The error for a refresh request whose rotation did not happen.
fn refresh_refused(outcome: &RefreshRotation, single_use: &[SingleUse]) -> Error {
    match outcome {
        RefreshRotation::Replayed => {
            Error::invalid_grant("the refresh token was used before; its grant is revoked")
        }
        RefreshRotation::Invalid => Error::invalid_grant(
            "the refresh token is invalid, expired, revoked or bound elsewhere",
        ),
        RefreshRotation::SingleUseReplayed { index } => single_use.get(*index).map_or(
            Error::Internal {
                what: "the store named an unknown single-use value",
            },
            crate::client_auth::replayed,
        ),
        RefreshRotation::Rotated(_) => Error::Internal {
            what: "a refresh token rotated without a replacement",
        },
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

/// The RFC 8707 `resource` of a token request: one of the client's `allowed` resources.
fn resource(call: &EndpointCall, allowed: &[String]) -> Result<Option<String>, Error> {
    let requested = call.params.get("resource")?;
    if requested.is_some_and(|resource| resource.len() > crate::authorize::MAX_RESOURCE_BYTES) {
        return Err(Error::invalid_request(format!(
            "`resource` is longer than {} bytes",
            crate::authorize::MAX_RESOURCE_BYTES
        )));
    }
    crate::authorize::allowed_resource(requested, allowed)
}
