//! DCQL queries (OpenID4VP 1.0 §6): the specification's examples read into their typed form,
//! written back unchanged, and malformed queries refused with the error of the rule they break.

use edk_oid4vp::{
    ClaimPath, ClaimsQuery, CredentialFormat, CredentialMeta, CredentialQuery, DcqlError,
    DcqlQuery, PathElement, TrustedAuthorityType,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{SPEC_EXAMPLES, spec_example};

fn keys(keys: &[&str]) -> ClaimPath {
    ClaimPath::keys(keys.iter().copied()).unwrap()
}

#[test]
fn every_example_of_the_specification_is_read_and_written_back() {
    for name in SPEC_EXAMPLES {
        let json = spec_example(name);
        let query = DcqlQuery::from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        query.validate().unwrap();
        // Written back, it reads as the same query (defaults are left out when writing).
        let again = DcqlQuery::from_json(&query.to_json()).unwrap();
        assert_eq!(again, query, "{name}");
        // Through serde too.
        let via_serde: DcqlQuery = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(via_serde, query, "{name}");
        assert_eq!(serde_json::to_value(&query).unwrap(), query.to_json());
    }
}

#[test]
fn the_simple_example_asks_for_three_claims_of_an_sd_jwt_vc() {
    let query = DcqlQuery::from_json(&spec_example("simple")).unwrap();
    assert_eq!(query.credentials.len(), 1);
    assert!(query.credential_sets.is_none());
    let credential = &query.credentials[0];
    assert_eq!(credential.id, "my_credential");
    assert_eq!(credential.format, CredentialFormat::SdJwtVc);
    assert_eq!(
        credential.meta,
        CredentialMeta::SdJwtVc {
            vct_values: vec!["https://credentials.example.com/identity_credential".to_owned()]
        }
    );
    assert!(!credential.multiple);
    assert!(credential.require_cryptographic_holder_binding);
    let paths: Vec<&ClaimPath> = credential
        .claims
        .iter()
        .flatten()
        .map(|claim| &claim.path)
        .collect();
    assert_eq!(
        paths,
        [
            &keys(&["family_name"]),
            &keys(&["given_name"]),
            &keys(&["address", "street_address"])
        ]
    );
}

#[test]
fn the_mdoc_examples_have_doctypes_and_namespace_element_paths() {
    let query = DcqlQuery::from_json(&spec_example("simple_mdoc")).unwrap();
    let credential = &query.credentials[0];
    assert_eq!(credential.format, CredentialFormat::MsoMdoc);
    assert_eq!(
        credential.meta,
        CredentialMeta::MsoMdoc {
            doctype_value: "org.iso.7367.1.mVRC".to_owned()
        }
    );
    let claims = credential.claims.as_ref().unwrap();
    assert_eq!(
        claims[0].path.as_mdoc(),
        Some(("org.iso.7367.1", "vehicle_holder"))
    );

    let complex = DcqlQuery::from_json(&spec_example("complex_mdoc")).unwrap();
    let ids: Vec<&str> = complex.credentials.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "mdl-id",
            "mdl-address",
            "photo_card-id",
            "photo_card-address"
        ]
    );
    let sets = complex.credential_sets.as_ref().unwrap();
    assert!(sets[0].required, "required defaults to true");
    assert!(!sets[1].required);
    assert_eq!(
        sets[1].options,
        [
            vec!["mdl-address".to_owned()],
            vec!["photo_card-address".to_owned()]
        ]
    );
}

#[test]
fn the_alternatives_examples_keep_their_sets_in_order() {
    let query = DcqlQuery::from_json(&spec_example("credentials_alternatives")).unwrap();
    let sets = query.credential_sets.as_ref().unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].options.len(), 3);
    assert_eq!(
        sets[0].options[2],
        ["pid_reduced_cred_1", "pid_reduced_cred_2"]
    );

    let claims = DcqlQuery::from_json(&spec_example("claims_alternatives")).unwrap();
    let pid = claims.credential("pid").unwrap();
    assert_eq!(
        pid.claim_sets.as_ref().unwrap(),
        &[
            vec!["a", "c", "d", "e"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            vec!["a", "b", "e"].into_iter().map(String::from).collect(),
        ]
    );
    assert_eq!(pid.claim("b").unwrap().path, keys(&["postal_code"]));
}

#[test]
fn the_value_matching_example_keeps_its_values() {
    let query = DcqlQuery::from_json(&spec_example("value_matching_simple")).unwrap();
    let claims = query.credentials[0].claims.as_ref().unwrap();
    assert_eq!(claims[0].values, Some(vec![json!("Doe")]));
    assert_eq!(claims[1].values, None);
    assert_eq!(claims[3].values, Some(vec![json!("90210"), json!("90211")]));
}

#[test]
fn optional_members_and_unknown_ones_are_read() {
    let query = DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "pid",
            "format": "dc+sd-jwt",
            "multiple": true,
            "require_cryptographic_holder_binding": false,
            "meta": { "vct_values": ["urn:eudi:pid:1"], "future": 1 },
            "trusted_authorities": [
                { "type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"] },
                { "type": "etsi_tl", "values": ["https://lotl.example.com"] },
                { "type": "openid_federation", "values": ["https://trustanchor.example.com"] }
            ],
            "claims": [
                { "path": ["nationalities", null], "values": ["DE", 1, true] },
                { "path": ["degrees", 0, "type"] }
            ],
            "an_extension": { "ignored": true }
        }],
        "also_ignored": []
    }))
    .unwrap();
    let pid = &query.credentials[0];
    assert!(pid.multiple);
    assert!(!pid.require_cryptographic_holder_binding);
    let kinds: Vec<&TrustedAuthorityType> = pid
        .trusted_authorities
        .iter()
        .flatten()
        .map(|a| &a.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            &TrustedAuthorityType::Aki,
            &TrustedAuthorityType::EtsiTl,
            &TrustedAuthorityType::OpenidFederation
        ]
    );
    let claims = pid.claims.as_ref().unwrap();
    assert_eq!(
        claims[0].path.elements(),
        [
            PathElement::Key("nationalities".to_owned()),
            PathElement::All
        ]
    );
    assert_eq!(
        claims[1].path.elements(),
        [
            PathElement::Key("degrees".to_owned()),
            PathElement::Index(0),
            PathElement::Key("type".to_owned())
        ]
    );
}

#[test]
fn a_format_this_crate_does_not_know_keeps_its_meta_opaque() {
    let query = DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "x",
            "format": "vendor_format",
            "meta": { "anything": ["goes", 1] },
            "claims": [{ "path": ["a", 1, null] }]
        }]
    }))
    .unwrap();
    let credential = &query.credentials[0];
    assert_eq!(
        credential.format,
        CredentialFormat::Other("vendor_format".to_owned())
    );
    let CredentialMeta::Opaque(meta) = &credential.meta else {
        panic!("not opaque: {:?}", credential.meta);
    };
    assert_eq!(meta["anything"], json!(["goes", 1]));
    assert_eq!(
        query.to_json()["credentials"][0]["meta"],
        json!({ "anything": ["goes", 1] })
    );
}

/// A query of one `dc+sd-jwt` credential query, with `member` merged into it.
fn sd_jwt_with(member: Value) -> Value {
    let mut credential = json!({
        "id": "pid",
        "format": "dc+sd-jwt",
        "meta": { "vct_values": ["urn:eudi:pid:1"] },
        "claims": [{ "id": "a", "path": ["given_name"] }]
    });
    let Value::Object(member) = member else {
        panic!("not an object: {member}");
    };
    for (key, value) in member {
        credential[key] = value;
    }
    json!({ "credentials": [credential] })
}

fn refused(query: &Value) -> DcqlError {
    match DcqlQuery::from_json(query) {
        Ok(parsed) => panic!("accepted {query}: {parsed:?}"),
        Err(error) => error,
    }
}

#[test]
fn malformed_queries_are_refused_as_such() {
    for query in [
        json!({}),
        json!({ "credentials": {} }),
        json!({ "credentials": [{ "format": "dc+sd-jwt", "meta": {} }] }),
        json!({ "credentials": [{ "id": "a", "meta": {} }] }),
        json!({ "credentials": [{ "id": 1, "format": "dc+sd-jwt", "meta": {} }] }),
        sd_jwt_with(json!({ "multiple": "yes" })),
        sd_jwt_with(json!({ "claims": [{ "id": "a" }] })),
        sd_jwt_with(json!({ "claim_sets": "a" })),
        json!({ "credentials": [{ "id": "a", "format": "x", "meta": {} }], "credential_sets": [{}] }),
    ] {
        assert!(
            matches!(refused(&query), DcqlError::Malformed(_)),
            "{query}"
        );
    }
    assert!(matches!(
        DcqlQuery::from_json_str("{\"credentials\": ["),
        Err(DcqlError::Malformed(_))
    ));
}

#[test]
fn each_broken_rule_is_refused_with_its_error() {
    let pid = || "pid".to_owned();
    let cases: Vec<(Value, DcqlError)> = vec![
        (json!({ "credentials": [] }), DcqlError::NoCredentials),
        (
            json!({ "credentials": [{ "id": "a b", "format": "x", "meta": {} }] }),
            DcqlError::InvalidId("a b".to_owned()),
        ),
        (
            json!({ "credentials": [{ "id": "", "format": "x", "meta": {} }] }),
            DcqlError::InvalidId(String::new()),
        ),
        (
            json!({ "credentials": [{ "id": "ü", "format": "x", "meta": {} }] }),
            DcqlError::InvalidId("ü".to_owned()),
        ),
        (
            json!({ "credentials": [
                { "id": "a", "format": "x", "meta": {} },
                { "id": "a", "format": "y", "meta": {} }
            ] }),
            DcqlError::DuplicateCredentialId("a".to_owned()),
        ),
        (
            json!({ "credentials": [{ "id": "a", "format": "x" }] }),
            DcqlError::MissingMeta {
                credential: "a".to_owned(),
                format: "x".to_owned(),
                field: "meta",
            },
        ),
        (
            json!({ "credentials": [{ "id": "pid", "format": "dc+sd-jwt", "meta": {} }] }),
            DcqlError::MissingMeta {
                credential: pid(),
                format: "dc+sd-jwt".to_owned(),
                field: "meta.vct_values",
            },
        ),
        (
            sd_jwt_with(json!({ "meta": { "vct_values": [] } })),
            DcqlError::InvalidMeta {
                credential: pid(),
                field: "meta.vct_values",
                reason: "must be a non-empty array",
            },
        ),
        (
            sd_jwt_with(json!({ "meta": { "vct_values": "urn:eudi:pid:1" } })),
            DcqlError::InvalidMeta {
                credential: pid(),
                field: "meta.vct_values",
                reason: "must be an array of strings",
            },
        ),
        (
            json!({ "credentials": [{ "id": "m", "format": "mso_mdoc", "meta": { "vct_values": ["x"] } }] }),
            DcqlError::MissingMeta {
                credential: "m".to_owned(),
                format: "mso_mdoc".to_owned(),
                field: "meta.doctype_value",
            },
        ),
        (
            json!({ "credentials": [{ "id": "m", "format": "mso_mdoc", "meta": { "doctype_value": ["x"] } }] }),
            DcqlError::InvalidMeta {
                credential: "m".to_owned(),
                field: "meta.doctype_value",
                reason: "must be a string",
            },
        ),
        (
            json!({ "credentials": [{ "id": "w", "format": "jwt_vc_json", "meta": {} }] }),
            DcqlError::MissingMeta {
                credential: "w".to_owned(),
                format: "jwt_vc_json".to_owned(),
                field: "meta.type_values",
            },
        ),
        (
            json!({ "credentials": [{ "id": "w", "format": "ldp_vc", "meta": { "type_values": ["VerifiableCredential"] } }] }),
            DcqlError::InvalidMeta {
                credential: "w".to_owned(),
                field: "meta.type_values",
                reason: "must be an array of arrays of strings",
            },
        ),
        (
            json!({ "credentials": [{ "id": "w", "format": "ldp_vc", "meta": { "type_values": [[]] } }] }),
            DcqlError::InvalidMeta {
                credential: "w".to_owned(),
                field: "meta.type_values",
                reason: "must be a non-empty array of non-empty arrays",
            },
        ),
        (
            sd_jwt_with(json!({ "trusted_authorities": [] })),
            DcqlError::EmptyTrustedAuthorities(pid()),
        ),
        (
            sd_jwt_with(json!({ "trusted_authorities": [{ "type": "aki", "values": [] }] })),
            DcqlError::EmptyTrustedAuthorityValues {
                credential: pid(),
                kind: "aki".to_owned(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [] })),
            DcqlError::EmptyClaims(pid()),
        ),
        (
            json!({ "credentials": [{
                "id": "pid", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] },
                "claim_sets": [["a"]]
            }] }),
            DcqlError::ClaimSetsWithoutClaims(pid()),
        ),
        (
            sd_jwt_with(json!({ "claim_sets": [] })),
            DcqlError::EmptyClaimSet(pid()),
        ),
        (
            sd_jwt_with(json!({ "claim_sets": [["a"], []] })),
            DcqlError::EmptyClaimSet(pid()),
        ),
        (
            sd_jwt_with(json!({
                "claims": [{ "id": "a", "path": ["a"] }, { "path": ["b"] }],
                "claim_sets": [["a"]]
            })),
            DcqlError::ClaimWithoutId(pid()),
        ),
        (
            sd_jwt_with(json!({ "claim_sets": [["a", "z"]] })),
            DcqlError::UnknownClaimId {
                credential: pid(),
                claim: "z".to_owned(),
            },
        ),
        (
            sd_jwt_with(
                json!({ "claims": [{ "id": "a", "path": ["a"] }, { "id": "a", "path": ["b"] }] }),
            ),
            DcqlError::DuplicateClaimId {
                credential: pid(),
                claim: "a".to_owned(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "id": "a.b", "path": ["a"] }] })),
            DcqlError::InvalidId("a.b".to_owned()),
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a", 0] }, { "path": ["a", 0] }] })),
            DcqlError::DuplicateClaimPath {
                credential: pid(),
                path: ClaimPath::new(vec![
                    PathElement::Key("a".to_owned()),
                    PathElement::Index(0),
                ])
                .unwrap(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": [] }] })),
            DcqlError::InvalidPath {
                credential: pid(),
                reason: "a claims path pointer must be non-empty".to_owned(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a", -1] }] })),
            DcqlError::InvalidPath {
                credential: pid(),
                reason: "-1 is not a non-negative integer".to_owned(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a", 1.5] }] })),
            DcqlError::InvalidPath {
                credential: pid(),
                reason: "1.5 is not a non-negative integer".to_owned(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": [true] }] })),
            DcqlError::InvalidPath {
                credential: pid(),
                reason: "true is not a string, a non-negative integer or null".to_owned(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": "given_name" }] })),
            DcqlError::InvalidPath {
                credential: pid(),
                reason: "\"given_name\" is not an array".to_owned(),
            },
        ),
        (
            json!({ "credentials": [{
                "id": "m", "format": "mso_mdoc", "meta": { "doctype_value": "org.iso.18013.5.1.mDL" },
                "claims": [{ "path": ["org.iso.18013.5.1"] }]
            }] }),
            DcqlError::MdocPath {
                credential: "m".to_owned(),
                path: keys(&["org.iso.18013.5.1"]),
            },
        ),
        (
            json!({ "credentials": [{
                "id": "m", "format": "mso_mdoc", "meta": { "doctype_value": "org.iso.18013.5.1.mDL" },
                "claims": [{ "path": ["org.iso.18013.5.1", "driving_privileges", 0] }]
            }] }),
            DcqlError::MdocPath {
                credential: "m".to_owned(),
                path: ClaimPath::new(vec![
                    PathElement::Key("org.iso.18013.5.1".to_owned()),
                    PathElement::Key("driving_privileges".to_owned()),
                    PathElement::Index(0),
                ])
                .unwrap(),
            },
        ),
        (
            json!({ "credentials": [{
                "id": "m", "format": "mso_mdoc", "meta": { "doctype_value": "org.iso.18013.5.1.mDL" },
                "claims": [{ "path": ["org.iso.18013.5.1", null] }]
            }] }),
            DcqlError::MdocPath {
                credential: "m".to_owned(),
                path: ClaimPath::new(vec![
                    PathElement::Key("org.iso.18013.5.1".to_owned()),
                    PathElement::All,
                ])
                .unwrap(),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a"], "values": [] }] })),
            DcqlError::EmptyValues(pid()),
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a"], "values": ["x", 1.5] }] })),
            DcqlError::InvalidValue {
                credential: pid(),
                value: json!(1.5),
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a"], "values": [null] }] })),
            DcqlError::InvalidValue {
                credential: pid(),
                value: Value::Null,
            },
        ),
        (
            sd_jwt_with(json!({ "claims": [{ "path": ["a"], "values": [{ "x": 1 }] }] })),
            DcqlError::InvalidValue {
                credential: pid(),
                value: json!({ "x": 1 }),
            },
        ),
        (
            json!({ "credentials": [{ "id": "a", "format": "x", "meta": {} }], "credential_sets": [] }),
            DcqlError::EmptyCredentialSets,
        ),
        (
            json!({ "credentials": [{ "id": "a", "format": "x", "meta": {} }], "credential_sets": [{ "options": [] }] }),
            DcqlError::EmptyOptions(0),
        ),
        (
            json!({ "credentials": [{ "id": "a", "format": "x", "meta": {} }],
                    "credential_sets": [{ "options": [["a"]] }, { "options": [["a"], []] }] }),
            DcqlError::EmptyOptions(1),
        ),
        (
            json!({ "credentials": [{ "id": "a", "format": "x", "meta": {} }],
                    "credential_sets": [{ "options": [["a", "b"]], "required": false }] }),
            DcqlError::UnknownCredentialId {
                set: 0,
                id: "b".to_owned(),
            },
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(refused(&query), expected, "{query}");
    }
}

#[test]
fn a_query_built_in_code_is_validated_by_the_same_rules() {
    let mut query = DcqlQuery {
        credentials: vec![
            CredentialQuery::sd_jwt_vc("pid", ["urn:eudi:pid:1"])
                .with_claim(ClaimsQuery::new(keys(&["given_name"]))),
            CredentialQuery::mso_mdoc("mdl", "org.iso.18013.5.1.mDL").with_claim(ClaimsQuery::new(
                keys(&["org.iso.18013.5.1", "family_name"]),
            )),
        ],
        credential_sets: None,
    };
    query.validate().unwrap();
    assert_eq!(DcqlQuery::from_json(&query.to_json()).unwrap(), query);

    // The meta of one format given to another is refused.
    query.credentials[1].meta = CredentialMeta::SdJwtVc {
        vct_values: vec!["x".to_owned()],
    };
    assert_eq!(
        query.validate(),
        Err(DcqlError::MissingMeta {
            credential: "mdl".to_owned(),
            format: "mso_mdoc".to_owned(),
            field: "meta.doctype_value",
        })
    );
    query.credentials[1] = CredentialQuery::new(
        "v",
        CredentialFormat::Other("vendor".to_owned()),
        CredentialMeta::MsoMdoc {
            doctype_value: "d".to_owned(),
        },
    );
    assert!(matches!(
        query.validate(),
        Err(DcqlError::InvalidMeta { field: "meta", .. })
    ));
}

proptest! {
    /// An id is accepted exactly when it is non-empty ASCII letters, digits, `_` and `-`.
    #[test]
    fn ids_are_accepted_by_their_charset(id in "\\PC{0,12}") {
        let expected = !id.is_empty()
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let query = json!({ "credentials": [{ "id": id, "format": "x", "meta": {} }] });
        let result = DcqlQuery::from_json(&query);
        prop_assert_eq!(result.is_ok(), expected, "{:?}", result);
        if !expected {
            prop_assert_eq!(result, Err(DcqlError::InvalidId(id)));
        }
    }

    /// Whatever JSON is given as a query, reading it returns a query or an error.
    #[test]
    fn arbitrary_json_never_panics(query in crate::path::arbitrary_json()) {
        let _ = DcqlQuery::from_json(&query);
        let _ = DcqlQuery::from_json(&json!({ "credentials": [query] }));
    }
}

/// A valid query: up to four credential queries of the four kinds of format, with claims
/// (unique ids and paths), optional values, claim_sets and credential_sets.
fn arbitrary_query() -> impl Strategy<Value = DcqlQuery> {
    let value = prop_oneof![
        "[a-z]{0,4}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ];
    let claim = (
        prop::collection::vec(
            prop_oneof![
                "[a-z]{1,3}".prop_map(PathElement::Key),
                (0u64..3).prop_map(PathElement::Index),
                Just(PathElement::All),
            ],
            0..3,
        ),
        prop::option::of(prop::collection::vec(value, 1..3)),
        prop::option::of(any::<bool>()),
    );
    let credential = (
        0usize..4,
        prop::collection::vec(claim, 0..4),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(0usize..4, 1..3), 0..3),
    );
    (
        prop::collection::vec(credential, 1..5),
        prop::option::of(prop::collection::vec(
            (
                prop::collection::vec(prop::collection::vec(0usize..5, 1..3), 1..3),
                any::<bool>(),
            ),
            1..3,
        )),
    )
        .prop_map(|(credentials, sets)| {
            let count = credentials.len();
            let credentials: Vec<CredentialQuery> = credentials
                .into_iter()
                .enumerate()
                .map(|(index, (kind, claims, multiple, binding, claim_sets))| {
                    let id = format!("c{index}");
                    let mut query = match kind {
                        0 => CredentialQuery::sd_jwt_vc(id, ["urn:example:vct"]),
                        1 => CredentialQuery::mso_mdoc(id, "org.iso.18013.5.1.mDL"),
                        2 => CredentialQuery::new(
                            id,
                            CredentialFormat::JwtVcJson,
                            CredentialMeta::W3c {
                                type_values: vec![vec!["VerifiableCredential".to_owned()]],
                            },
                        ),
                        _ => CredentialQuery::new(
                            id,
                            CredentialFormat::Other("vendor".to_owned()),
                            CredentialMeta::Opaque(serde_json::Map::new()),
                        ),
                    };
                    query.multiple = multiple;
                    query.require_cryptographic_holder_binding = binding;
                    let claim_count = claims.len();
                    for (number, (tail, values, retain)) in claims.into_iter().enumerate() {
                        // The first component makes every path unique.
                        let head = PathElement::Key(format!("claim{number}"));
                        let path = if kind == 1 {
                            ClaimPath::keys(["org.iso.18013.5.1".to_owned(), format!("e{number}")])
                        } else {
                            ClaimPath::new(std::iter::once(head).chain(tail).collect())
                        }
                        .unwrap();
                        query = query.with_claim(ClaimsQuery {
                            id: Some(format!("k{number}")),
                            path,
                            values,
                            intent_to_retain: retain,
                        });
                    }
                    if claim_count > 0 && !claim_sets.is_empty() {
                        query.claim_sets = Some(
                            claim_sets
                                .into_iter()
                                .map(|option| {
                                    option
                                        .into_iter()
                                        .map(|n| format!("k{}", n % claim_count))
                                        .collect()
                                })
                                .collect(),
                        );
                    }
                    query
                })
                .collect();
            let credential_sets = sets.map(|sets| {
                sets.into_iter()
                    .map(|(options, required)| edk_oid4vp::CredentialSetQuery {
                        options: options
                            .into_iter()
                            .map(|option| {
                                option
                                    .into_iter()
                                    .map(|n| format!("c{}", n % count))
                                    .collect()
                            })
                            .collect(),
                        required,
                    })
                    .collect()
            });
            DcqlQuery {
                credentials,
                credential_sets,
            }
        })
}

proptest! {
    /// A valid query built in code is valid, and reads back from its JSON as itself.
    #[test]
    fn queries_survive_their_json(query in arbitrary_query()) {
        prop_assert_eq!(query.validate(), Ok(()));
        let json = query.to_json();
        prop_assert_eq!(DcqlQuery::from_json(&json), Ok(query.clone()));
        let text = serde_json::to_string(&query).unwrap();
        prop_assert_eq!(DcqlQuery::from_json_str(&text), Ok(query));
    }
}
