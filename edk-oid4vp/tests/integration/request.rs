//! Authorization Requests (OpenID4VP 1.0 §5): client identifier prefixes, the combinations of
//! parameters the specification requires, and the query-parameter and Request Object forms.

use edk_core::encoding::b64url_encode;
use edk_oid4vp::{
    AuthorizationRequest, ClientId, ClientMetadata, DcqlError, DcqlQuery, REQUEST_OBJECT_TYP,
    RequestError, RequestUriMethod, ResponseMode, SELF_ISSUED_AUDIENCE,
};
use serde_json::{Map, Value, json};
use url::Url;

use crate::spec_example;

const NONCE: &str = "n-0S6_WzA2Mj";

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn simple() -> DcqlQuery {
    DcqlQuery::from_json(&spec_example("simple")).unwrap()
}

/// The direct_post request of the specification's example (§8.2), with the simple query.
fn direct_post() -> AuthorizationRequest {
    let mut request = AuthorizationRequest::direct_post(
        ClientId::parse("redirect_uri:https://client.example.org/post").unwrap(),
        url("https://client.example.org/post"),
        NONCE,
        simple(),
    );
    request.state = Some("eyJhb-6-sVA".to_owned());
    request
}

fn encryption_metadata() -> ClientMetadata {
    ClientMetadata {
        vp_formats_supported: Some(
            json!({ "dc+sd-jwt": { "sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"] } })
                .as_object()
                .unwrap()
                .clone(),
        ),
        jwks: Some(json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "kid": "ac", "use": "enc", "alg": "ECDH-ES",
            "x": "YO4epjifD-KWeq1sL2tNmm36BhXnkJ0He-WqMYrp9Fk",
            "y": "Hekpm0zfK7C-YccH5iBjcIXgf6YdUvNUac_0At55Okk"
        }] })),
        encrypted_response_enc_values_supported: Some(vec![
            "A128GCM".to_owned(),
            "A256GCM".to_owned(),
        ]),
        other: Map::new(),
    }
}

#[test]
fn client_identifiers_are_read_by_their_prefix() {
    let cases = [
        (
            "redirect_uri:https://client.example.org/cb",
            ClientId::RedirectUri("https://client.example.org/cb".to_owned()),
        ),
        (
            "decentralized_identifier:did:example:123#1",
            ClientId::DecentralizedIdentifier("did:example:123#1".to_owned()),
        ),
        (
            "x509_san_dns:client.example.org",
            ClientId::X509SanDns("client.example.org".to_owned()),
        ),
        (
            "x509_hash:Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk",
            ClientId::X509Hash("Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk".to_owned()),
        ),
        (
            "verifier_attestation:client.example",
            ClientId::VerifierAttestation("client.example".to_owned()),
        ),
        (
            "openid_federation:https://rp.example.com",
            ClientId::OpenidFederation("https://rp.example.com".to_owned()),
        ),
        (
            "client-123",
            ClientId::PreRegistered("client-123".to_owned()),
        ),
        // An unknown prefix is a pre-registered identifier, kept whole.
        (
            "https://client.example.org",
            ClientId::PreRegistered("https://client.example.org".to_owned()),
        ),
    ];
    for (text, expected) in cases {
        let parsed = ClientId::parse(text).unwrap();
        assert_eq!(parsed, expected, "{text}");
        assert_eq!(parsed.to_string(), text, "the full identifier is kept");
    }
    assert!(
        ClientId::parse("x509_san_dns:client.example.org")
            .unwrap()
            .requires_signed_request()
    );
    assert!(
        !ClientId::parse("redirect_uri:https://a.example")
            .unwrap()
            .requires_signed_request()
    );
}

#[test]
fn malformed_client_identifiers_are_refused() {
    for text in [
        "",
        "redirect_uri:",
        "redirect_uri:not a url",
        "decentralized_identifier:example:123",
        "decentralized_identifier:did:Example:123",
        "decentralized_identifier:did:example:",
        "x509_san_dns:client example.org",
        "x509_san_dns:-bad.example",
        "x509_hash:AAAA",
        "x509_hash:not+base64url",
        "verifier_attestation:",
        "openid_federation:rp.example.com",
        "origin:https://verifier.example.com",
    ] {
        assert!(
            matches!(
                ClientId::parse(text),
                Err(RequestError::InvalidClientId { .. })
            ),
            "{text}"
        );
    }
}

#[test]
fn a_direct_post_request_becomes_query_parameters_and_back() {
    let request = direct_post();
    let pairs = request.to_query_pairs().unwrap();
    let names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "client_id",
            "response_type",
            "response_mode",
            "response_uri",
            "nonce",
            "state",
            "dcql_query"
        ]
    );
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    };
    assert_eq!(
        value("client_id"),
        "redirect_uri:https://client.example.org/post"
    );
    assert_eq!(value("response_type"), "vp_token");
    assert_eq!(value("response_mode"), "direct_post");
    // The query travels as JSON text.
    let query: Value = serde_json::from_str(value("dcql_query")).unwrap();
    assert_eq!(query, simple().to_json());

    let again =
        AuthorizationRequest::from_query_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .unwrap();
    assert_eq!(again, request);

    // Form-encoded, it reads back the same through a URL parser.
    let uri = format!("openid4vp://?{}", request.to_query_string().unwrap());
    let parsed = Url::parse(&uri).unwrap();
    let decoded: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    assert_eq!(decoded, pairs);
}

#[test]
fn a_signed_request_has_request_object_claims() {
    let mut request = AuthorizationRequest::direct_post(
        ClientId::parse("x509_san_dns:client.example.org").unwrap(),
        url("https://client.example.org/post"),
        NONCE,
        simple(),
    );
    request.response_mode = ResponseMode::DirectPostJwt;
    request.client_metadata = Some(encryption_metadata());
    request.transaction_data = Some(vec![b64url_encode(
        json!({ "type": "payment", "credential_ids": ["my_credential"], "amount": "10" })
            .to_string(),
    )]);
    let claims = request.to_request_object_claims(None, None).unwrap();
    assert_eq!(REQUEST_OBJECT_TYP, "oauth-authz-req+jwt");
    assert_eq!(claims["aud"], SELF_ISSUED_AUDIENCE);
    assert_eq!(claims["client_id"], "x509_san_dns:client.example.org");
    assert_eq!(claims["response_mode"], "direct_post.jwt");
    // JSON parameters are JSON in a Request Object, not text.
    assert_eq!(claims["dcql_query"], simple().to_json());
    assert_eq!(claims["client_metadata"]["jwks"]["keys"][0]["kid"], "ac");
    assert!(claims["transaction_data"].is_array());
    assert!(claims.get("wallet_nonce").is_none());
    let fetched = request
        .to_request_object_claims(
            Some("https://wallet.example.org"),
            Some("qPmxiNFCR3QTm19POc8u"),
        )
        .unwrap();
    assert_eq!(fetched["aud"], "https://wallet.example.org");
    assert_eq!(fetched["wallet_nonce"], "qPmxiNFCR3QTm19POc8u");

    // Read back from the claims (aud is not a request parameter and is ignored).
    let again = AuthorizationRequest::from_parameters(claims.as_object().unwrap()).unwrap();
    assert_eq!(again, request);

    // By reference: client_id, request_uri, and the method when it is post.
    let request_uri = url("https://client.example.org/request/567545564");
    let get = request
        .reference_query_pairs(&request_uri, RequestUriMethod::Get)
        .unwrap();
    assert_eq!(
        get,
        [
            (
                "client_id".to_owned(),
                "x509_san_dns:client.example.org".to_owned()
            ),
            ("request_uri".to_owned(), request_uri.to_string()),
        ]
    );
    let post = request
        .reference_query_pairs(&request_uri, RequestUriMethod::Post)
        .unwrap();
    assert_eq!(
        post[2],
        ("request_uri_method".to_owned(), "post".to_owned())
    );
    assert_eq!(RequestUriMethod::parse("post"), Ok(RequestUriMethod::Post));
    assert_eq!(
        RequestUriMethod::parse("put"),
        Err(RequestError::InvalidRequestUriMethod("put".to_owned()))
    );
    assert_eq!(
        RequestError::InvalidRequestUriMethod("put".to_owned()).error_code(),
        "invalid_request_uri_method"
    );
}

#[test]
fn a_redirect_uri_client_is_never_signed() {
    assert_eq!(
        direct_post().to_request_object_claims(None, None),
        Err(RequestError::UnsignedClientId)
    );
}

#[test]
fn every_response_mode_is_read_and_written() {
    for mode in [
        ResponseMode::DirectPost,
        ResponseMode::DirectPostJwt,
        ResponseMode::Fragment,
        ResponseMode::DcApi,
        ResponseMode::DcApiJwt,
    ] {
        assert_eq!(ResponseMode::parse(mode.as_str()), Ok(mode));
    }
    assert_eq!(
        ResponseMode::parse("query"),
        Err(RequestError::UnsupportedResponseMode("query".to_owned()))
    );
}

#[test]
fn fragment_and_dc_api_requests_have_their_own_parameters() {
    let mut fragment = direct_post();
    fragment.response_mode = ResponseMode::Fragment;
    fragment.response_uri = None;
    fragment.client_id =
        Some(ClientId::parse("redirect_uri:https://client.example.org/cb").unwrap());
    // The redirect_uri prefix names the redirect URI, which may then be left out.
    fragment.validate().unwrap();
    let mut post = direct_post();
    post.response_uri = None;
    post.validate().unwrap();
    assert!(
        post.to_query_pairs()
            .unwrap()
            .iter()
            .all(|(name, _)| name != "response_uri")
    );
    fragment.redirect_uri = Some(url("https://client.example.org/cb"));
    fragment.validate().unwrap();

    let dc_api = AuthorizationRequest {
        client_id: None,
        response_mode: ResponseMode::DcApi,
        response_uri: None,
        redirect_uri: None,
        nonce: NONCE.to_owned(),
        state: None,
        dcql_query: simple(),
        client_metadata: None,
        transaction_data: None,
        expected_origins: None,
    };
    dc_api.validate().unwrap();
    let pairs = dc_api.to_query_pairs().unwrap();
    assert!(pairs.iter().all(|(name, _)| name != "client_id"));
    // Signed over the DC API: a client_id and expected_origins are needed.
    assert_eq!(
        dc_api.to_request_object_claims(None, None),
        Err(RequestError::MissingParameter("client_id"))
    );
    let mut signed = dc_api;
    signed.client_id = Some(ClientId::parse("x509_san_dns:verifier.example.com").unwrap());
    assert_eq!(
        signed.to_request_object_claims(None, None),
        Err(RequestError::MissingParameter("expected_origins"))
    );
    signed.expected_origins = Some(vec!["https://verifier.example.com".to_owned()]);
    let claims = signed.to_request_object_claims(None, None).unwrap();
    assert_eq!(
        claims["expected_origins"],
        json!(["https://verifier.example.com"])
    );
}

#[test]
fn each_broken_combination_is_refused_with_its_error() {
    type Change = fn(&mut AuthorizationRequest);
    let cases: Vec<(Change, RequestError)> = vec![
        (
            |r| {
                r.response_uri = None;
                r.client_id = Some(ClientId::parse("x509_san_dns:client.example.org").unwrap());
            },
            RequestError::MissingParameter("response_uri"),
        ),
        (
            |r| r.redirect_uri = Some(Url::parse("https://client.example.org/post").unwrap()),
            RequestError::ForbiddenParameter {
                name: "redirect_uri",
                mode: ResponseMode::DirectPost,
            },
        ),
        (
            |r| {
                r.response_mode = ResponseMode::Fragment;
            },
            RequestError::ForbiddenParameter {
                name: "response_uri",
                mode: ResponseMode::Fragment,
            },
        ),
        (
            |r| {
                r.response_mode = ResponseMode::Fragment;
                r.response_uri = None;
                r.client_id = Some(ClientId::parse("x509_san_dns:client.example.org").unwrap());
            },
            RequestError::MissingParameter("redirect_uri"),
        ),
        (
            |r| r.response_mode = ResponseMode::DcApi,
            RequestError::ForbiddenParameter {
                name: "response_uri",
                mode: ResponseMode::DcApi,
            },
        ),
        (
            |r| {
                r.response_mode = ResponseMode::DcApi;
                r.response_uri = None;
                r.client_id = Some(ClientId::parse("x509_san_dns:client.example.org").unwrap());
            },
            RequestError::ForbiddenParameter {
                name: "state",
                mode: ResponseMode::DcApi,
            },
        ),
        (
            |r| r.expected_origins = Some(vec!["https://client.example.org".to_owned()]),
            RequestError::ForbiddenParameter {
                name: "expected_origins",
                mode: ResponseMode::DirectPost,
            },
        ),
        (
            |r| r.client_id = None,
            RequestError::MissingParameter("client_id"),
        ),
        (
            |r| r.nonce = String::new(),
            RequestError::InvalidParameter {
                name: "nonce",
                reason: "must be non-empty and of the characters A-Z a-z 0-9 - . _ ~",
            },
        ),
        (
            |r| r.nonce = "a nonce".to_owned(),
            RequestError::InvalidParameter {
                name: "nonce",
                reason: "must be non-empty and of the characters A-Z a-z 0-9 - . _ ~",
            },
        ),
        (
            |r| r.state = Some("a/b".to_owned()),
            RequestError::InvalidParameter {
                name: "state",
                reason: "must be non-empty and of the characters A-Z a-z 0-9 - . _ ~",
            },
        ),
        (
            |r| r.response_uri = Some(Url::parse("https://client.example.org/other").unwrap()),
            RequestError::ClientIdMismatch(
                "a redirect_uri client identifier must be the response or redirect URI, written alike",
            ),
        ),
        (
            |r| r.client_id = Some(ClientId::parse("x509_san_dns:other.example.org").unwrap()),
            RequestError::ClientIdMismatch(
                "an x509_san_dns client identifier must be the host of the response or redirect URI",
            ),
        ),
        (
            |r| {
                r.client_id = Some(ClientId::parse("client-123").unwrap());
                r.client_metadata = Some(ClientMetadata::default());
            },
            RequestError::ClientMetadataNotAllowed,
        ),
        (
            |r| r.response_mode = ResponseMode::DirectPostJwt,
            RequestError::MissingEncryptionKey,
        ),
        (
            |r| {
                r.response_mode = ResponseMode::DirectPostJwt;
                r.client_metadata = Some(ClientMetadata {
                    jwks: Some(json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "k" }] })),
                    ..ClientMetadata::default()
                });
            },
            RequestError::InvalidParameter {
                name: "client_metadata",
                reason: "every key of jwks needs a kid and an alg",
            },
        ),
        (
            |r| {
                r.state = None;
                r.dcql_query.credentials[0].require_cryptographic_holder_binding = false;
            },
            RequestError::MissingParameter("state"),
        ),
        (
            |r| r.dcql_query.credentials.clear(),
            RequestError::Dcql(DcqlError::NoCredentials),
        ),
        (
            |r| r.transaction_data = Some(vec![]),
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "transaction_data must be a non-empty array",
            },
        ),
        (
            |r| r.transaction_data = Some(vec!["not base64url!".to_owned()]),
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "not base64url",
            },
        ),
        (
            |r| r.transaction_data = Some(vec![b64url_encode("[1]")]),
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "not a JSON object",
            },
        ),
        (
            |r| {
                r.transaction_data = Some(vec![b64url_encode(
                    r#"{"credential_ids":["my_credential"]}"#,
                )])
            },
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "type must be a string",
            },
        ),
        (
            |r| {
                r.transaction_data =
                    Some(vec![b64url_encode(r#"{"type":"t","credential_ids":[]}"#)])
            },
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "credential_ids must be a non-empty array of strings",
            },
        ),
        (
            |r| {
                r.transaction_data = Some(vec![b64url_encode(
                    r#"{"type":"t","credential_ids":["other"]}"#,
                )])
            },
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "credential_ids names an unknown credential query",
            },
        ),
        (
            |r| {
                r.dcql_query.credentials[0].require_cryptographic_holder_binding = false;
                r.transaction_data = Some(vec![b64url_encode(
                    r#"{"type":"t","credential_ids":["my_credential"]}"#,
                )]);
            },
            RequestError::InvalidTransactionData {
                index: 0,
                reason: "credential_ids names a credential query without holder binding",
            },
        ),
        (
            |r| {
                r.transaction_data = Some(vec![
                    b64url_encode(r#"{"type":"t","credential_ids":["my_credential"]}"#),
                    b64url_encode(
                        r#"{"type":"t","credential_ids":["my_credential"],"transaction_data_hashes_alg":[]}"#,
                    ),
                ]);
            },
            RequestError::InvalidTransactionData {
                index: 1,
                reason: "transaction_data_hashes_alg must be a non-empty array of strings",
            },
        ),
    ];
    for (index, (change, expected)) in cases.into_iter().enumerate() {
        let mut request = direct_post();
        change(&mut request);
        assert_eq!(request.validate(), Err(expected.clone()), "case {index}");
        // Serialising validates first.
        assert_eq!(request.to_query_pairs(), Err(expected), "case {index}");
    }
}

#[test]
fn requests_read_from_parameters_are_checked_as_they_are_read() {
    let base = || {
        direct_post()
            .to_query_pairs()
            .unwrap()
            .into_iter()
            .collect::<Vec<(String, String)>>()
    };
    let read = |pairs: &[(String, String)]| {
        AuthorizationRequest::from_query_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    };
    let with = |name: &str, value: &str| {
        let mut pairs: Vec<(String, String)> =
            base().into_iter().filter(|(n, _)| n != name).collect();
        pairs.push((name.to_owned(), value.to_owned()));
        pairs
    };
    let without = |name: &str| -> Vec<(String, String)> {
        base().into_iter().filter(|(n, _)| n != name).collect()
    };
    assert_eq!(
        read(&with("response_type", "vp_token id_token")),
        Err(RequestError::UnsupportedResponseType(
            "vp_token id_token".to_owned()
        ))
    );
    assert_eq!(
        read(&without("response_type")),
        Err(RequestError::MissingParameter("response_type"))
    );
    assert_eq!(
        read(&without("response_mode")),
        Err(RequestError::MissingParameter("response_mode"))
    );
    assert_eq!(
        read(&without("dcql_query")),
        Err(RequestError::MissingParameter("dcql_query"))
    );
    assert_eq!(
        read(&without("nonce")),
        Err(RequestError::MissingParameter("nonce"))
    );
    assert_eq!(
        read(&with("dcql_query", "{not json")),
        Err(RequestError::InvalidParameter {
            name: "dcql_query",
            reason: "is not JSON",
        })
    );
    assert_eq!(
        read(&with("dcql_query", r#"{"credentials":[]}"#)),
        Err(RequestError::Dcql(DcqlError::NoCredentials))
    );
    assert_eq!(
        read(&with("scope", "com.example.pid")),
        Err(RequestError::InvalidParameter {
            name: "scope",
            reason: "is not supported: the query goes in dcql_query",
        })
    );
    assert_eq!(
        read(&with("response_uri", "/relative")),
        Err(RequestError::InvalidParameter {
            name: "response_uri",
            reason: "must be an absolute URI",
        })
    );
    assert_eq!(
        read(&with("client_metadata", "[]")),
        Err(RequestError::InvalidParameter {
            name: "client_metadata",
            reason: "must be an object",
        })
    );
    let mut twice = base();
    twice.push(("nonce".to_owned(), "other".to_owned()));
    assert_eq!(
        read(&twice),
        Err(RequestError::DuplicateParameter("nonce".to_owned()))
    );
    // Unknown parameters are ignored.
    assert_eq!(read(&with("unknown", "x")).unwrap(), direct_post());

    let mut claims = direct_post().to_query_pairs().unwrap();
    claims.retain(|(n, _)| n != "dcql_query");
    let mut object: Map<String, Value> = claims
        .into_iter()
        .map(|(n, v)| (n, Value::String(v)))
        .collect();
    object.insert("dcql_query".to_owned(), simple().to_json());
    object.insert("nonce".to_owned(), json!(7));
    assert_eq!(
        AuthorizationRequest::from_parameters(&object),
        Err(RequestError::InvalidParameter {
            name: "nonce",
            reason: "must be a string",
        })
    );
}
