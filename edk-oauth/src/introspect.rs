//! Token introspection (RFC 7662) and revocation (RFC 7009).

use edk_core::Limits;
use edk_core::jose::{Jws, VerifyPolicy};
use edk_tenancy::TenantContext;
use serde_json::{Map, Value, json};

use crate::client::ClientAuthMethod;
use crate::error::Error;
use crate::request::EndpointCall;
use crate::server::AuthorizationServer;
use crate::token::ACCESS_TOKEN_TYP;

impl AuthorizationServer {
    /// Introspects a token for an authenticated confidential client. Unknown, expired,
    /// revoked and other tenants' tokens are exactly `{"active": false}`; a refresh token is
    /// active only for the client it was issued to.
    ///
    /// # Errors
    /// `invalid_client` when the caller is not an authenticated confidential client;
    /// `invalid_request` without `token`.
    pub async fn introspect(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
    ) -> Result<Value, Error> {
        let client = self
            .authenticate_client(tenant, call, "introspect")
            .await?
            .filter(|c| c.metadata.token_endpoint_auth_method != ClientAuthMethod::None)
            .ok_or_else(|| Error::invalid_client("client authentication is required"))?;
        let token = call.params.require("token")?;
        let inactive = json!({ "active": false });
        let now = self.now();
        if let Some(claims) = self.own_access_token(tenant, token).await? {
            let mut out = claims;
            let token_type = if out.contains_key("cnf") {
                "DPoP"
            } else {
                "Bearer"
            };
            out.insert("active".to_owned(), json!(true));
            self.add_introspection_claims(tenant, &client, &mut out)
                .await?;
            out.insert("token_type".to_owned(), json!(token_type));
            return Ok(Value::Object(out));
        }
        let hash = crate::random::digest(token);
        if let Some(record) = self.store.refresh_token(tenant, &hash, now).await?
            && record.client_id == client.client_id
        {
            let mut out = Map::new();
            out.insert("active".to_owned(), json!(true));
            out.insert("token_type".to_owned(), json!("refresh_token"));
            out.insert("client_id".to_owned(), json!(record.client_id.as_str()));
            out.insert("sub".to_owned(), json!(record.grant.subject));
            out.insert("iss".to_owned(), json!(Self::issuer(tenant)?));
            out.insert("iat".to_owned(), json!(record.created_at));
            out.insert("exp".to_owned(), json!(record.expires_at));
            if !record.grant.scopes.is_empty() {
                out.insert("scope".to_owned(), json!(record.grant.scopes.join(" ")));
            }
            return Ok(Value::Object(out));
        }
        Ok(inactive)
    }

    /// Revokes a token (RFC 7009 §2.1): a refresh token revokes its whole grant; an access
    /// token only itself. Tokens of other clients, unknown tokens and other tenants' tokens
    /// are ignored and the call still succeeds.
    ///
    /// # Errors
    /// `invalid_client` when client authentication fails; `invalid_request` without `token`.
    pub async fn revoke(&self, tenant: &TenantContext, call: &EndpointCall) -> Result<(), Error> {
        let client = self
            .authenticate_client(tenant, call, "revoke")
            .await?
            .ok_or_else(|| Error::invalid_client("the client is not identified"))?;
        let token = call.params.require("token")?;
        let now = self.now();
        let hash = crate::random::digest(token);
        if let Some(record) = self.store.refresh_token(tenant, &hash, now).await? {
            if record.client_id == client.client_id {
                self.store
                    .revoke_family(tenant, &record.family, now)
                    .await?;
            }
            return Ok(());
        }
        if let Some(claims) = self.own_access_token(tenant, token).await?
            && claims.get("client_id").and_then(Value::as_str) == Some(client.client_id.as_str())
            && let Some(jti) = claims.get("jti").and_then(Value::as_str)
        {
            let record = crate::store::AccessTokenRecord {
                jti: jti.to_owned(),
                family: None,
                client_id: Some(client.client_id.clone()),
                expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(now),
                claims: claims.clone(),
                revoked: true,
            };
            self.store.revoke_access_token(tenant, &record, now).await?;
        }
        Ok(())
    }

    /// The claims of `token` if it is an active access token this tenant issued: signed by
    /// a version of the tenant's access-token signing alias (no other key of the tenant), its
    /// issuer, not expired, recorded and not revoked.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn own_access_token(
        &self,
        tenant: &TenantContext,
        token: &str,
    ) -> Result<Option<Map<String, Value>>, Error> {
        if token.split('.').count() != 3 {
            return Ok(None);
        }
        let Ok(jws) = Jws::parse(token, &Limits::DEFAULT) else {
            return Ok(None);
        };
        let resolver = self.access_token_keys(tenant);
        let policy = VerifyPolicy::default().with_typ(ACCESS_TOKEN_TYP);
        let Ok(verified) = jws.verify_with(resolver.as_ref(), &policy, None).await else {
            return Ok(None);
        };
        let Ok(claims) = verified.claims() else {
            return Ok(None);
        };
        let now = self.now();
        let issuer = Self::issuer(tenant)?;
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
            || claims
                .get("exp")
                .and_then(Value::as_i64)
                .is_none_or(|exp| exp <= now)
        {
            return Ok(None);
        }
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(None);
        };
        // Tokens of a family are recorded at issue; others only once revoked. A token that
        // verifies, is ours and unexpired is active unless its record says revoked.
        match self.store.access_token(tenant, jti).await? {
            Some(record) if record.revoked => Ok(None),
            _ => Ok(Some(claims)),
        }
    }
}
