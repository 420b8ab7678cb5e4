//! `authorization_details` of type `openid_credential`: `credential_identifiers` come from the
//! authorization server only, and a token request may narrow what a code grants.

use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::{
    AuthorizeOutcome, EndpointCall, Error, OAuthErrorCode, Params, PreAuthorizedCodeRequest,
};
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
