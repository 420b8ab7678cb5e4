//! `authorization_details` of type `openid_credential`: `credential_identifiers` come from the
//! authorization server only (or its credential grant policy), a token request may narrow
//! what a code grants, and the access token's audience follows `locations`.

use std::sync::Arc;

use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::testkit::PreApprovedAuthenticator;
use edk_oauth::{
    AsConfig, AuthorizationServer, AuthorizeOutcome, CredentialGrantPolicy, CredentialGrantRequest,
    EndpointCall, Error, OAuthErrorCode, Params, PreAuthorizedCodeRequest, SqlStore,
};
use edk_tenancy::TenantContext;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::{Backend, Env, on_both_backends, pkce};

const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
const REDIRECT: &str = "https://client.example/cb";
const CREDENTIAL_ISSUER: &str = "https://issuer.example/acme";
const SELF_ASSIGNED: &str =
    "`credential_identifiers` are assigned by the authorization server and cannot be requested";
const NOT_GRANTED: &str =
    "`authorization_details` asks for credentials or locations that were not granted";

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

fn claims(token: &str) -> Value {
    let jws = edk_core::jose::Jws::parse(token, &edk_core::Limits::DEFAULT).unwrap();
    serde_json::from_slice(jws.unverified_payload()).unwrap()
}

fn assert_oauth_error(err: &Error, code: OAuthErrorCode, description: &str) {
    assert_eq!(err.code(), code, "{err:?}");
    assert_eq!(err.code().status(), 400, "{err:?}");
    assert_eq!(err.description(), description, "{err:?}");
}

/// The entry the issuer puts in a pre-authorized code for `configuration` of session `s1`.
fn granted(configuration: &str) -> Value {
    json!({
        "type": "openid_credential",
        "credential_configuration_id": configuration,
        "credential_identifiers": [format!("s1:{configuration}")],
        "locations": [CREDENTIAL_ISSUER],
    })
}

async fn mint(env: &Env, details: Value) -> String {
    let mut grant = Grant::new("session:s1");
    grant.authorization_details = Some(details);
    env.server
        .mint_pre_authorized_code(&env.tenant, PreAuthorizedCodeRequest::new(grant))
        .await
        .unwrap()
        .code
        .expose_secret()
        .to_owned()
}

/// The query parameter `name` of a redirect.
fn query(outcome: &AuthorizeOutcome, name: &str) -> Option<String> {
    let AuthorizeOutcome::Redirect(url) = outcome else {
        panic!("not a redirect: {outcome:?}");
    };
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn client_supplied_credential_identifiers_are_refused(backend: Backend) {
    let env = Env::new(backend).await;
    let (client, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (verifier, challenge) = pkce();
    // Another person's dataset, named by the wallet.
    let forged = json!([{
        "type": "openid_credential",
        "credential_configuration_id": "pid",
        "credential_identifiers": ["s2:pid"],
    }])
    .to_string();
    let request = |details: &str| {
        vec![
            ("response_type", "code"),
            ("client_id", client.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "st"),
        ]
        .into_iter()
        .chain([("authorization_details", details)])
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Vec<_>>()
    };
    let outcome = env
        .server
        .authorize(&env.tenant, &Params::from_pairs(request(&forged)))
        .await
        .unwrap();
    assert_eq!(query(&outcome, "code"), None, "{outcome:?}");
    assert_eq!(
        query(&outcome, "error").as_deref(),
        Some("invalid_authorization_details")
    );
    assert_eq!(
        query(&outcome, "error_description").as_deref(),
        Some(SELF_ASSIGNED)
    );

    let par = EndpointCall::post(Params::from_pairs(request(&forged)));
    let err = env.server.par(&env.tenant, &par).await.unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        SELF_ASSIGNED,
    );

    // A code of the authorization code flow: the token request cannot add identifiers.
    let plain = json!([{"type": "openid_credential", "credential_configuration_id": "pid"}]);
    let outcome = env
        .server
        .authorize(
            &env.tenant,
            &Params::from_pairs(request(&plain.to_string())),
        )
        .await
        .unwrap();
    let code = query(&outcome, "code").unwrap();
    let redeem = |details: Option<&str>| {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("client_id", client.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        pairs.extend(details.map(|d| ("authorization_details", d)));
        form(&pairs)
    };
    let err = env
        .server
        .token(&env.tenant, &redeem(Some(&forged)))
        .await
        .unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        SELF_ASSIGNED,
    );
    // The code is still good, and its token names no identifiers.
    let response = env
        .server
        .token(&env.tenant, &redeem(None))
        .await
        .unwrap()
        .response;
    assert_eq!(response.authorization_details, Some(plain.clone()));
    assert_eq!(
        claims(&response.access_token)["authorization_details"],
        plain
    );

    // A pre-authorized code minted by the issuer may carry identifiers; a wallet may not add
    // its own at the token endpoint.
    let code = mint(&env, json!([granted("pid")])).await;
    let err = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", PRE_AUTHORIZED),
                ("pre-authorized_code", &code),
                ("authorization_details", &forged),
            ]),
        )
        .await
        .unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        SELF_ASSIGNED,
    );
    let response = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", PRE_AUTHORIZED),
                ("pre-authorized_code", &code),
            ]),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(
        response.authorization_details,
        Some(json!([granted("pid")]))
    );
    env.close().await;
}
on_both_backends!(client_supplied_credential_identifiers_are_refused);

async fn a_pre_authorized_token_request_narrows_the_grant(backend: Backend) {
    let env = Env::new(backend).await;
    let both = json!([granted("pid"), granted("mdl")]);
    let redeem = |code: &str, details: Option<Value>| {
        let details = details.map(|d| d.to_string());
        let mut pairs = vec![
            ("grant_type", PRE_AUTHORIZED.to_owned()),
            ("pre-authorized_code", code.to_owned()),
        ];
        pairs.extend(details.map(|d| ("authorization_details", d)));
        EndpointCall::post(Params::from_pairs(pairs))
    };

    // A subset, named by configuration: only that entry, with the granted identifiers.
    let code = mint(&env, both.clone()).await;
    let ask_mdl = json!([{"type": "openid_credential", "credential_configuration_id": "mdl"}]);
    let response = env
        .server
        .token(&env.tenant, &redeem(&code, Some(ask_mdl)))
        .await
        .unwrap()
        .response;
    assert_eq!(
        response.authorization_details,
        Some(json!([granted("mdl")]))
    );
    assert_eq!(
        claims(&response.access_token)["authorization_details"],
        json!([granted("mdl")])
    );

    // Something not granted is refused, and the code stays usable.
    let code = mint(&env, both.clone()).await;
    for ask in [
        json!([{"type": "openid_credential", "credential_configuration_id": "diploma"}]),
        json!([
            {"type": "openid_credential", "credential_configuration_id": "pid"},
            {"type": "openid_credential", "credential_configuration_id": "diploma"},
        ]),
        json!([{
            "type": "openid_credential", "credential_configuration_id": "pid",
            "locations": ["https://other-issuer.example"],
        }]),
    ] {
        let err = env
            .server
            .token(&env.tenant, &redeem(&code, Some(ask)))
            .await
            .unwrap_err();
        assert_oauth_error(
            &err,
            OAuthErrorCode::InvalidAuthorizationDetails,
            NOT_GRANTED,
        );
    }
    // Without `authorization_details`, every granted entry, each with its identifiers.
    let response = env
        .server
        .token(&env.tenant, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    assert_eq!(response.authorization_details, Some(both.clone()));
    assert_eq!(
        claims(&response.access_token)["authorization_details"],
        both
    );
    env.close().await;
}
on_both_backends!(a_pre_authorized_token_request_narrows_the_grant);

async fn the_audience_comes_from_locations(backend: Backend) {
    let env = Env::new(backend).await;
    let (client, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (verifier, challenge) = pkce();
    let request = |details: &Value| {
        let details = details.to_string();
        Params::from_pairs([
            ("response_type", "code"),
            ("client_id", client.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("authorization_details", details.as_str()),
        ])
    };
    let bad_locations =
        "`locations` must be a non-empty array of absolute https URLs without fragment";
    for locations in [
        json!(["http://issuer.example/acme"]),
        json!(["https://issuer.example/acme#x"]),
        json!(["issuer.example"]),
        json!([]),
        json!([7]),
        json!("https://issuer.example/acme"),
    ] {
        let details = json!([{
            "type": "openid_credential", "credential_configuration_id": "pid",
            "locations": locations,
        }]);
        let outcome = env
            .server
            .authorize(&env.tenant, &request(&details))
            .await
            .unwrap();
        assert_eq!(
            query(&outcome, "error").as_deref(),
            Some("invalid_authorization_details"),
            "{locations}"
        );
        assert_eq!(
            query(&outcome, "error_description").as_deref(),
            Some(bad_locations)
        );
        let par = EndpointCall::post(request(&details));
        let err = env.server.par(&env.tenant, &par).await.unwrap_err();
        assert_oauth_error(
            &err,
            OAuthErrorCode::InvalidAuthorizationDetails,
            bad_locations,
        );
        // The issuer's own codes are held to the same rule.
        let mut grant = Grant::new("session:s1");
        grant.authorization_details = Some(details);
        let err = env
            .server
            .mint_pre_authorized_code(&env.tenant, PreAuthorizedCodeRequest::new(grant))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidInput { field: "authorization_details", reason }
                    if reason == bad_locations
            ),
            "{err:?}"
        );
    }

    // Authorization code flow: the token's audience is the requested location.
    let details = json!([{
        "type": "openid_credential", "credential_configuration_id": "pid",
        "locations": [CREDENTIAL_ISSUER],
    }]);
    let outcome = env
        .server
        .authorize(&env.tenant, &request(&details))
        .await
        .unwrap();
    let code = query(&outcome, "code").unwrap();
    let response = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ]),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(claims(&response.access_token)["aud"], CREDENTIAL_ISSUER);

    // Two issuers: both, until the token request narrows to one.
    let other = "https://other-issuer.example/acme";
    let mut mdl = granted("mdl");
    mdl["locations"] = json!([other]);
    let redeem = |code: &str, details: Option<&str>| {
        let mut pairs = vec![
            ("grant_type", PRE_AUTHORIZED),
            ("pre-authorized_code", code),
        ];
        pairs.extend(details.map(|d| ("authorization_details", d)));
        form(&pairs)
    };
    let code = mint(&env, json!([granted("pid"), mdl.clone()])).await;
    let response = env
        .server
        .token(&env.tenant, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    assert_eq!(
        claims(&response.access_token)["aud"],
        json!([CREDENTIAL_ISSUER, other])
    );
    let code = mint(&env, json!([granted("pid"), mdl.clone()])).await;
    let ask_mdl =
        json!([{"type": "openid_credential", "credential_configuration_id": "mdl"}]).to_string();
    let response = env
        .server
        .token(&env.tenant, &redeem(&code, Some(&ask_mdl)))
        .await
        .unwrap()
        .response;
    assert_eq!(claims(&response.access_token)["aud"], other);
    assert_eq!(response.authorization_details, Some(json!([mdl])));
    // A token request's `locations` are checked as well.
    let code = mint(&env, json!([granted("pid")])).await;
    let ask_http = json!([{
        "type": "openid_credential", "credential_configuration_id": "pid",
        "locations": ["http://issuer.example/acme"],
    }])
    .to_string();
    let err = env
        .server
        .token(&env.tenant, &redeem(&code, Some(&ask_http)))
        .await
        .unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        bad_locations,
    );

    // A loopback issuer of a local development binding is an acceptable location.
    let local = "http://localhost:8080/acme";
    let code = mint(
        &env,
        json!([{"type": "openid_credential", "credential_configuration_id": "pid",
            "credential_identifiers": ["pid-1"], "locations": [local]}]),
    )
    .await;
    let response = env
        .server
        .token(&env.tenant, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    assert_eq!(claims(&response.access_token)["aud"], local);

    // Without locations, the grant's `resource`, else the AS.
    let mut grant = Grant::new("session:s2");
    grant.resource = Some(CREDENTIAL_ISSUER.to_owned());
    let minted = env
        .server
        .mint_pre_authorized_code(&env.tenant, PreAuthorizedCodeRequest::new(grant))
        .await
        .unwrap();
    let response = env
        .server
        .token(&env.tenant, &redeem(minted.code.expose_secret(), None))
        .await
        .unwrap()
        .response;
    assert_eq!(claims(&response.access_token)["aud"], CREDENTIAL_ISSUER);
    let plain = json!([{"type": "openid_credential", "credential_configuration_id": "pid"}]);
    let code = mint(&env, plain).await;
    let response = env
        .server
        .token(&env.tenant, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    assert_eq!(
        claims(&response.access_token)["aud"],
        "https://as.example/acme"
    );
    env.close().await;
}
on_both_backends!(the_audience_comes_from_locations);

/// An issuer's policy: the end user's dataset of each requested configuration (and `pid` for
/// scope `read`), named after the offer's `issuer_state`; `forbidden` is refused.
#[derive(Debug)]
struct DatasetPolicy;

#[async_trait::async_trait]
impl CredentialGrantPolicy for DatasetPolicy {
    async fn grant(
        &self,
        _tenant: &TenantContext,
        request: &CredentialGrantRequest,
    ) -> Result<Option<Value>, Error> {
        let mut configurations: Vec<&str> = request
            .authorization_details
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["credential_configuration_id"].as_str())
            .collect();
        if request.scopes.iter().any(|scope| scope == "read") && !configurations.contains(&"pid") {
            configurations.push("pid");
        }
        if configurations.contains(&"forbidden") {
            return Err(Error::oauth(
                OAuthErrorCode::AccessDenied,
                "no dataset for `forbidden`",
            ));
        }
        if configurations.is_empty() {
            return Ok(None);
        }
        let state = request.issuer_state.as_deref().unwrap_or("none");
        let subject = &request.subject.subject;
        Ok(Some(Value::Array(
            configurations
                .into_iter()
                .map(|id| {
                    json!({
                        "type": "openid_credential",
                        "credential_configuration_id": id,
                        "credential_identifiers": [format!("{subject}:{state}:{id}")],
                        "locations": [CREDENTIAL_ISSUER],
                    })
                })
                .collect(),
        )))
    }
}

/// Runs an authorization request with `extra` parameters through `server` (PAR when `par`)
/// and redeems its code: the token response, or the error redirect's `error` and
/// `error_description`.
async fn authorize_and_redeem(
    env: &Env,
    server: &AuthorizationServer,
    client: &str,
    par: bool,
    extra: &[(&str, &str)],
) -> Result<edk_oauth::TokenResponse, (String, String)> {
    let (verifier, challenge) = pkce();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    let params = if par {
        let pushed = server.par(&env.tenant, &form(&pairs)).await.unwrap();
        Params::from_pairs([
            ("client_id", client),
            ("request_uri", pushed.request_uri.as_str()),
        ])
    } else {
        Params::from_pairs(pairs.iter().copied())
    };
    let outcome = server.authorize(&env.tenant, &params).await.unwrap();
    let Some(code) = query(&outcome, "code") else {
        return Err((
            query(&outcome, "error").unwrap(),
            query(&outcome, "error_description").unwrap(),
        ));
    };
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ]);
    Ok(server.token(&env.tenant, &call).await.unwrap().response)
}

async fn a_credential_grant_policy_decides_what_a_code_grants(backend: Backend) {
    let env = Env::new(backend).await;
    let server = AuthorizationServer::new(
        Arc::new(SqlStore::new(env.backend.tenancy.clone())),
        env.kms(),
        Arc::new(PreApprovedAuthenticator::new("alice", env.clock.clone())),
        env.clock.clone(),
        AsConfig::default(),
    )
    .with_credential_grant_policy(Arc::new(DatasetPolicy));
    let (client, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let ask = |id: &str| {
        json!([{"type": "openid_credential", "credential_configuration_id": id}]).to_string()
    };
    let dataset = |id: &str, state: &str| {
        json!({
            "type": "openid_credential",
            "credential_configuration_id": id,
            "credential_identifiers": [format!("alice:{state}:{id}")],
            "locations": [CREDENTIAL_ISSUER],
        })
    };
    // Directly and through PAR: the policy's entries, with `issuer_state` carried along.
    for par in [false, true] {
        let response = authorize_and_redeem(
            &env,
            &server,
            &client,
            par,
            &[
                ("authorization_details", &ask("mdl")),
                ("issuer_state", "offer-42"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            response.authorization_details,
            Some(json!([dataset("mdl", "offer-42")]))
        );
        let token = claims(&response.access_token);
        assert_eq!(
            token["authorization_details"],
            json!([dataset("mdl", "offer-42")])
        );
        assert_eq!(token["issuer_state"], "offer-42");
        assert_eq!(token["aud"], CREDENTIAL_ISSUER);
    }
    // By scope alone.
    let response = authorize_and_redeem(&env, &server, &client, false, &[("scope", "read")])
        .await
        .unwrap();
    assert_eq!(
        response.authorization_details,
        Some(json!([dataset("pid", "none")]))
    );
    assert_eq!(claims(&response.access_token).get("issuer_state"), None);
    // The policy refuses: an error redirect with its error.
    let refused = authorize_and_redeem(
        &env,
        &server,
        &client,
        false,
        &[("authorization_details", &ask("forbidden"))],
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused,
        (
            "access_denied".to_owned(),
            "no dataset for `forbidden`".to_owned()
        )
    );

    // Without a policy: the entries as requested, and `issuer_state` all the same.
    let response = authorize_and_redeem(
        &env,
        &env.server,
        &client,
        false,
        &[
            ("authorization_details", &ask("mdl")),
            ("issuer_state", "offer-43"),
        ],
    )
    .await
    .unwrap();
    let requested: Value = serde_json::from_str(&ask("mdl")).unwrap();
    assert_eq!(response.authorization_details, Some(requested));
    assert_eq!(claims(&response.access_token)["issuer_state"], "offer-43");
    // An `issuer_state` beyond the limit of request parameters.
    let long = "x".repeat(edk_oauth::authorize::MAX_PARAMETER_BYTES + 1);
    let refused = authorize_and_redeem(
        &env,
        &env.server,
        &client,
        false,
        &[("issuer_state", &long)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused,
        (
            "invalid_request".to_owned(),
            "`issuer_state` is longer than 512 bytes".to_owned()
        )
    );
    env.close().await;
}
on_both_backends!(a_credential_grant_policy_decides_what_a_code_grants);

async fn refresh_and_client_credentials_requests_cannot_widen_the_grant(backend: Backend) {
    let env = Env::new(backend).await;
    let (client, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    let entry = |id: &str| json!({"type": "openid_credential", "credential_configuration_id": id});
    let both = json!([entry("pid"), entry("mdl")]);
    let (verifier, challenge) = pkce();
    let outcome = env
        .server
        .authorize(
            &env.tenant,
            &Params::from_pairs([
                ("response_type", "code"),
                ("client_id", client.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("authorization_details", both.to_string().as_str()),
            ]),
        )
        .await
        .unwrap();
    let code = query(&outcome, "code").unwrap();
    let authenticated = |pairs: &[(&str, &str)]| {
        let mut pairs = pairs.to_vec();
        pairs.extend([
            ("client_id", client.as_str()),
            ("client_secret", secret.as_str()),
        ]);
        form(&pairs)
    };
    // A code redemption asking for more than the code grants: refused inside the redemption,
    // and the code stays usable.
    let diploma = json!([entry("diploma")]).to_string();
    let err = env
        .server
        .token(
            &env.tenant,
            &authenticated(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("authorization_details", &diploma),
            ]),
        )
        .await
        .unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        NOT_GRANTED,
    );
    let response = env
        .server
        .token(
            &env.tenant,
            &authenticated(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ]),
        )
        .await
        .unwrap()
        .response;
    let refresh_token = response.refresh_token.unwrap();
    let refresh = |token: &str, details: Option<&str>| {
        let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
        pairs.extend(details.map(|d| ("authorization_details", d)));
        authenticated(&pairs)
    };

    // Asking for more than the grant: refused, and the refresh token stays usable.
    let err = env
        .server
        .token(&env.tenant, &refresh(&refresh_token, Some(&diploma)))
        .await
        .unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        NOT_GRANTED,
    );
    // A narrower access token; the new refresh token keeps the whole grant.
    let mdl = json!([entry("mdl")]);
    let response = env
        .server
        .token(
            &env.tenant,
            &refresh(&refresh_token, Some(&mdl.to_string())),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(response.authorization_details, Some(mdl.clone()));
    assert_eq!(claims(&response.access_token)["authorization_details"], mdl);
    let response = env
        .server
        .token(
            &env.tenant,
            &refresh(response.refresh_token.as_deref().unwrap(), None),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(response.authorization_details, Some(both));

    // `client_credentials` grants no credentials.
    let err = env
        .server
        .token(
            &env.tenant,
            &authenticated(&[
                ("grant_type", "client_credentials"),
                ("authorization_details", &mdl.to_string()),
            ]),
        )
        .await
        .unwrap_err();
    assert_oauth_error(
        &err,
        OAuthErrorCode::InvalidAuthorizationDetails,
        NOT_GRANTED,
    );
    env.close().await;
}
on_both_backends!(refresh_and_client_credentials_requests_cannot_widen_the_grant);
