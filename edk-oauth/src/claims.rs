//! End-user claims of a grant, for the resource servers of the same tenant.
//!
//! A grant carries claims about the end user: those the upstream OpenID Provider asserted
//! (federation's `copy_claims`) or those given when a pre-authorized code was minted. They
//! are stored with the grant (code, pre-authorized code, refresh token) and, for each access
//! token issued from it, in the tenant's `oauth_grant_claims` table under the token's `jti`
//! until the token expires. They are not put in the access token, unless
//! [`AsConfig::access_token_claims`](crate::AsConfig::access_token_claims) names some, and no
//! protocol response carries them, except:
//!
//! - [`AuthorizationServer::grant_claims`]: a resource server in the same process (the
//!   credential issuer) reads them with the access token it was handed;
//! - introspection (RFC 7662) by a client registered as a resource server for the token's
//!   audience ([`ClientMetadata::claims_resources`]): the response carries them as `claims`.
//!
//! Every read goes through the tenant's context: a token of another tenant does not verify
//! under this tenant's keys and issuer, and its claims live in another schema.

use edk_tenancy::TenantContext;
use serde_json::{Map, Value, json};

use crate::client::{Client, ClientMetadata};
use crate::config::AsConfig;
use crate::error::Error;
use crate::grant::Grant;
use crate::server::AuthorizationServer;

/// The largest claims object a grant may carry, serialized, in bytes.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;

/// The introspection response member that carries the grant's claims.
pub const INTROSPECTION_MEMBER: &str = "claims";

impl AuthorizationServer {
    /// The end-user claims of the grant behind `access_token`, for a resource server of the
    /// tenant: `None` unless the token is an active access token of this tenant (signed by
    /// its key, its issuer, unexpired, not revoked); an empty object for a grant without
    /// claims.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn grant_claims(
        &self,
        tenant: &TenantContext,
        access_token: &str,
    ) -> Result<Option<Map<String, Value>>, Error> {
        let Some(token) = self.own_access_token(tenant, access_token).await? else {
            return Ok(None);
        };
        let Some(jti) = token.get("jti").and_then(Value::as_str) else {
            return Ok(None);
        };
        Ok(Some(
            self.store
                .grant_claims(tenant, jti, self.now())
                .await?
                .unwrap_or_default(),
        ))
    }

    /// Stores `grant`'s claims for the access token `jti`, if it has any.
    pub(crate) async fn record_grant_claims(
        &self,
        tenant: &TenantContext,
        jti: &str,
        grant: &Grant,
        expires_at: i64,
    ) -> Result<(), Error> {
        if grant.claims.is_empty() {
            return Ok(());
        }
        self.store
            .insert_grant_claims(tenant, jti, &grant.claims, expires_at)
            .await
    }

    /// Adds the grant's claims to the introspection response `out` of an access token whose
    /// audience `client` serves as a resource server.
    pub(crate) async fn add_introspection_claims(
        &self,
        tenant: &TenantContext,
        client: &Client,
        out: &mut Map<String, Value>,
    ) -> Result<(), Error> {
        let served = |aud: &str| {
            client
                .metadata
                .claims_resources
                .iter()
                .any(|resource| resource == aud)
        };
        let allowed = match out.get("aud") {
            Some(Value::String(aud)) => served(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(served),
            _ => false,
        };
        if !allowed || out.contains_key(INTROSPECTION_MEMBER) {
            return Ok(());
        }
        let Some(jti) = out.get("jti").and_then(Value::as_str) else {
            return Ok(());
        };
        if let Some(claims) = self.store.grant_claims(tenant, jti, self.now()).await? {
            out.insert(INTROSPECTION_MEMBER.to_owned(), json!(claims));
        }
        Ok(())
    }
}

/// Copies the grant claims named in `config.access_token_claims` into the access token
/// `claims`, never over a claim the token already has.
pub(crate) fn copy_into_token(config: &AsConfig, grant: &Grant, claims: &mut Map<String, Value>) {
    for name in &config.access_token_claims {
        if let Some(value) = grant.claims.get(name)
            && !claims.contains_key(name)
        {
            claims.insert(name.clone(), value.clone());
        }
    }
}

/// The largest [`ClientMetadata::token_claims`] object, serialized, in bytes.
pub const MAX_TOKEN_CLAIMS_BYTES: usize = 4 * 1024;

/// The access-token claims the server sets itself, which a client cannot register.
pub const RESERVED_TOKEN_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "cnf",
    "authorization_details",
    "issuer_state",
    "auth_time",
    "acr",
    "amr",
];

/// Adds the client's registered [`ClientMetadata::token_claims`] (over a grant claim copied
/// by configuration: the registration wins) and [`ClientMetadata::token_audiences`] to the
/// access token `claims`.
pub(crate) fn add_client_claims(metadata: &ClientMetadata, claims: &mut Map<String, Value>) {
    for (name, value) in &metadata.token_claims {
        if !RESERVED_TOKEN_CLAIMS.contains(&name.as_str()) {
            claims.insert(name.clone(), value.clone());
        }
    }
    if metadata.token_audiences.is_empty() {
        return;
    }
    let mut audiences = match claims.remove("aud") {
        Some(Value::Array(list)) => list,
        Some(one) => vec![one],
        None => Vec::new(),
    };
    for extra in &metadata.token_audiences {
        let extra = json!(extra);
        if !audiences.contains(&extra) {
            audiences.push(extra);
        }
    }
    claims.insert("aud".to_owned(), Value::Array(audiences));
}

/// Checks a client's `token_claims` and `token_audiences`.
///
/// # Errors
/// [`Error::InvalidInput`] naming the field.
pub(crate) fn check_token_claims(metadata: &ClientMetadata) -> Result<(), Error> {
    if let Some(name) = metadata
        .token_claims
        .keys()
        .find(|name| name.is_empty() || RESERVED_TOKEN_CLAIMS.contains(&name.as_str()))
    {
        return Err(Error::InvalidInput {
            field: "token_claims",
            reason: format!("`{name}` is set by the authorization server"),
        });
    }
    let size = serde_json::to_vec(&metadata.token_claims)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > MAX_TOKEN_CLAIMS_BYTES {
        return Err(Error::InvalidInput {
            field: "token_claims",
            reason: format!("must be at most {MAX_TOKEN_CLAIMS_BYTES} bytes of JSON"),
        });
    }
    if metadata
        .token_audiences
        .iter()
        .any(|aud| aud.is_empty() || aud.len() > 2048)
    {
        return Err(Error::InvalidInput {
            field: "token_audiences",
            reason: "each must be a non-empty string of at most 2048 bytes".to_owned(),
        });
    }
    Ok(())
}

/// Checks what a minted grant carries for resource servers: its claims (at most
/// [`MAX_CLAIMS_BYTES`]) and its `resource` (an absolute `https` URI without fragment,
/// RFC 8707 §2).
///
/// # Errors
/// [`Error::InvalidInput`] naming the field.
pub(crate) fn check_grant(grant: &Grant) -> Result<(), Error> {
    let size = serde_json::to_vec(&grant.claims)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CLAIMS_BYTES {
        return Err(Error::InvalidInput {
            field: "claims",
            reason: format!("must be at most {MAX_CLAIMS_BYTES} bytes of JSON"),
        });
    }
    if let Some(resource) = &grant.resource
        && !is_resource(resource)
    {
        return Err(Error::InvalidInput {
            field: "resource",
            reason: "must be an absolute https URI without fragment".to_owned(),
        });
    }
    Ok(())
}

/// Checks a client's `claims_resources`: each an absolute `https` URI without fragment.
///
/// # Errors
/// [`Error::InvalidInput`] for the first that is not.
pub(crate) fn check_claims_resources(metadata: &ClientMetadata) -> Result<(), Error> {
    if metadata
        .claims_resources
        .iter()
        .all(|resource| is_resource(resource))
    {
        return Ok(());
    }
    Err(Error::InvalidInput {
        field: "claims_resources",
        reason: "each must be an absolute https URI without fragment".to_owned(),
    })
}

fn is_resource(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| crate::authorize::is_https_or_loopback(&url) && url.fragment().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_claims_are_copied_without_overwriting() {
        let mut grant = Grant::new("alice");
        grant
            .claims
            .insert("email".to_owned(), json!("a@example.test"));
        grant.claims.insert("sub".to_owned(), json!("upstream-id"));
        grant.claims.insert("name".to_owned(), json!("Alice"));
        let mut config = AsConfig::default();
        let mut token = Map::new();
        token.insert("sub".to_owned(), json!("alice"));
        copy_into_token(&config, &grant, &mut token);
        assert_eq!(token.len(), 1, "nothing is copied by default");
        config.access_token_claims = vec!["email".to_owned(), "sub".to_owned()];
        copy_into_token(&config, &grant, &mut token);
        assert_eq!(token["sub"], "alice");
        assert_eq!(token["email"], "a@example.test");
        assert!(!token.contains_key("name"));
    }

    #[test]
    fn registered_client_claims_and_audiences_are_added() {
        let mut metadata = ClientMetadata::new(
            crate::client::ClientAuthMethod::ClientSecretBasic,
            vec![crate::client::GrantType::ClientCredentials],
        );
        metadata
            .token_claims
            .insert("tenant".to_owned(), json!("t-1"));
        metadata.token_audiences = vec!["edk-admin".to_owned()];
        assert!(check_token_claims(&metadata).is_ok());
        let mut token = Map::new();
        token.insert("aud".to_owned(), json!("https://as.example/ops"));
        token.insert("tenant".to_owned(), json!("copied-from-grant"));
        add_client_claims(&metadata, &mut token);
        assert_eq!(token["tenant"], "t-1");
        assert_eq!(token["aud"], json!(["https://as.example/ops", "edk-admin"]));
        for reserved in ["sub", "scope", "aud", ""] {
            let mut bad = metadata.clone();
            bad.token_claims.insert(reserved.to_owned(), json!("x"));
            assert!(matches!(
                check_token_claims(&bad),
                Err(Error::InvalidInput {
                    field: "token_claims",
                    ..
                })
            ));
        }
        let mut bad = metadata.clone();
        bad.token_audiences.push(String::new());
        assert!(check_token_claims(&bad).is_err());
        let mut bad = metadata;
        bad.token_claims
            .insert("blob".to_owned(), json!("x".repeat(MAX_TOKEN_CLAIMS_BYTES)));
        assert!(check_token_claims(&bad).is_err());
    }

    #[test]
    fn oversized_claims_and_bad_resources_are_refused() {
        let mut grant = Grant::new("alice");
        grant
            .claims
            .insert("blob".to_owned(), json!("x".repeat(MAX_CLAIMS_BYTES)));
        assert!(matches!(
            check_grant(&grant),
            Err(Error::InvalidInput {
                field: "claims",
                ..
            })
        ));
        let mut grant = Grant::new("alice");
        grant.resource = Some("http://rs.example".to_owned());
        assert!(matches!(
            check_grant(&grant),
            Err(Error::InvalidInput {
                field: "resource",
                ..
            })
        ));
        grant.resource = Some("https://rs.example/api".to_owned());
        assert!(check_grant(&grant).is_ok());
    }
}
