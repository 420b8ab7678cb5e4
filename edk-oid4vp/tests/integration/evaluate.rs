//! Evaluating DCQL queries (OpenID4VP 1.0 §6.4): which credentials a wallet may present and
//! what it discloses, and whether a verifier's `vp_token` answers its query.

use std::collections::BTreeMap;

use edk_oid4vp::{
    ClaimPath, Credential, CredentialFormat, CredentialMatch, DcqlQuery, PresentationError,
    TrustedAuthorityType,
};
use serde_json::{Value, json};

use crate::spec_example;

const PID: &str = "https://credentials.example.com/identity_credential";

fn keys(keys: &[&str]) -> ClaimPath {
    ClaimPath::keys(keys.iter().copied()).unwrap()
}

fn parse(json: Value) -> DcqlQuery {
    serde_json::from_value(json).unwrap()
}

fn pid(claims: Value) -> Credential {
    Credential::sd_jwt_vc(PID, claims)
}

fn mdoc(doctype: &str, namespaces: Value) -> Credential {
    let Value::Object(namespaces) = namespaces else {
        panic!("not an object: {namespaces}");
    };
    Credential::mdoc(doctype, namespaces)
}

fn arthur() -> Value {
    json!({
        "given_name": "Arthur",
        "family_name": "Dent",
        "last_name": "Dent",
        "date_of_birth": "1952-03-11",
        "postal_code": "90210",
        "locality": "Milliways",
        "address": { "street_address": "42 Market Street" }
    })
}

#[test]
fn the_simple_example_matches_a_credential_with_its_claims_and_discloses_them() {
    let query = DcqlQuery::from_json(&spec_example("simple")).unwrap();
    let without_address = {
        let mut claims = arthur();
        claims.as_object_mut().unwrap().remove("address");
        pid(claims)
    };
    let other_type = Credential::sd_jwt_vc("https://example.com/other", arthur());
    let credentials = [without_address, pid(arthur()), other_type];
    let result = query.evaluate(&credentials);
    assert!(result.satisfied);
    assert_eq!(
        result.matches("my_credential"),
        [CredentialMatch {
            credential: 1,
            claim_set: None,
            disclose: vec![
                keys(&["family_name"]),
                keys(&["given_name"]),
                keys(&["address", "street_address"])
            ],
        }]
    );
    let unsatisfied = query.evaluate(&credentials[..1]);
    assert!(!unsatisfied.satisfied);
    assert!(unsatisfied.matches("my_credential").is_empty());
}

#[test]
fn claim_sets_choose_the_first_option_the_credential_satisfies() {
    let query = DcqlQuery::from_json(&spec_example("claims_alternatives")).unwrap();
    // Has locality but not region: the first option fails, the second (a, b, e) holds.
    let result = query.evaluate(&[pid(arthur())]);
    assert_eq!(
        result.matches("pid"),
        [CredentialMatch {
            credential: 0,
            claim_set: Some(1),
            disclose: vec![
                keys(&["last_name"]),
                keys(&["postal_code"]),
                keys(&["date_of_birth"])
            ],
        }]
    );
    // With region too, the preferred first option (a, c, d, e) is chosen.
    let mut claims = arthur();
    claims["region"] = json!("Betelgeuse");
    let result = query.evaluate(&[pid(claims)]);
    assert_eq!(result.matches("pid")[0].claim_set, Some(0));
    assert_eq!(result.matches("pid")[0].disclose.len(), 4);
    // Without date_of_birth, no option holds and the credential is not returned.
    let mut claims = arthur();
    claims.as_object_mut().unwrap().remove("date_of_birth");
    assert!(!query.evaluate(&[pid(claims)]).satisfied);
}

#[test]
fn values_must_match_by_type_and_value() {
    let query = DcqlQuery::from_json(&spec_example("value_matching_simple")).unwrap();
    let mut doe = arthur();
    doe["family_name"] = json!("Doe");
    let result = query.evaluate(&[pid(arthur()), pid(doe.clone())]);
    assert_eq!(result.matches("my_credential").len(), 1);
    assert_eq!(result.matches("my_credential")[0].credential, 1);
    // 90212 is not among the values; the claim counts as absent.
    let mut elsewhere = doe.clone();
    elsewhere["postal_code"] = json!("90212");
    assert!(!query.evaluate(&[pid(elsewhere)]).satisfied);
    // The number 90210 is not the string "90210".
    let mut number = doe;
    number["postal_code"] = json!(90210);
    assert!(!query.evaluate(&[pid(number)]).satisfied);

    let typed = parse(json!({ "credentials": [{
        "id": "c", "format": "dc+sd-jwt", "meta": { "vct_values": [PID] },
        "claims": [
            { "path": ["age_over_18"], "values": [true] },
            { "path": ["children"], "values": [2, 3] },
            { "path": ["nationalities", null], "values": ["DE"] }
        ]
    }] }));
    let holder = |age: Value, children: Value, nationalities: Value| {
        pid(json!({ "age_over_18": age, "children": children, "nationalities": nationalities }))
    };
    let results: Vec<bool> = [
        holder(json!(true), json!(2), json!(["FR", "DE"])),
        holder(json!("true"), json!(2), json!(["DE"])),
        holder(json!(true), json!(4), json!(["DE"])),
        holder(json!(true), json!(3), json!(["FR"])),
    ]
    .iter()
    .map(|credential| typed.evaluate(std::slice::from_ref(credential)).satisfied)
    .collect();
    assert_eq!(results, [true, false, false, false]);
}

#[test]
fn credential_sets_pick_among_alternatives_and_leave_optional_sets_optional() {
    let query = DcqlQuery::from_json(&spec_example("credentials_alternatives")).unwrap();
    let reduced_1 = Credential::sd_jwt_vc(
        "https://credentials.example.com/reduced_identity_credential",
        json!({ "family_name": "Dent", "given_name": "Arthur" }),
    );
    let reduced_2 = Credential::sd_jwt_vc(
        "https://cred.example/residence_credential",
        json!({ "postal_code": "90210", "locality": "Milliways", "region": "Betelgeuse" }),
    );
    let rewards = Credential::sd_jwt_vc(
        "https://company.example/company_rewards",
        json!({ "rewards_number": 42 }),
    );

    // Both reduced credentials: the third option of the required set.
    let result = query.evaluate(&[reduced_1.clone(), reduced_2.clone()]);
    assert!(result.satisfied);
    let sets = result.credential_sets.as_ref().unwrap();
    assert_eq!(sets[0].satisfied_options, [2]);
    assert!(sets[0].required);
    assert!(sets[1].satisfied_options.is_empty());
    assert!(!sets[1].required);

    // One reduced credential alone satisfies nothing required, rewards or not.
    assert!(!query.evaluate(&[reduced_1, rewards.clone()]).satisfied);

    // The full PID plus rewards: the first option and the optional set.
    let result = query.evaluate(&[rewards, reduced_2, pid(arthur())]);
    assert!(result.satisfied);
    let sets = result.credential_sets.as_ref().unwrap();
    assert_eq!(sets[0].satisfied_options, [0]);
    assert_eq!(sets[1].satisfied_options, [0]);
    assert_eq!(result.matches("pid")[0].credential, 2);
    assert_eq!(result.matches("nice_to_have")[0].credential, 0);
}

#[test]
fn mdoc_queries_match_doctype_and_elements() {
    let query = DcqlQuery::from_json(&spec_example("complex_mdoc")).unwrap();
    let mdl = mdoc(
        "org.iso.18013.5.1.mDL",
        json!({ "org.iso.18013.5.1": {
            "given_name": "Erika", "family_name": "Mustermann", "portrait": "ffd8"
        } }),
    );
    let photo_id = mdoc(
        "org.iso.23220.photoid.1",
        json!({ "org.iso.18013.5.1": {
            "given_name": "Erika", "family_name": "Mustermann", "portrait": "ffd8",
            "resident_address": "Heidestraße 17", "resident_country": "DE"
        } }),
    );
    let result = query.evaluate(&[mdl, photo_id]);
    assert!(result.satisfied);
    assert_eq!(result.matches("mdl-id")[0].credential, 0);
    assert_eq!(result.matches("photo_card-id")[0].credential, 1);
    assert!(result.matches("mdl-address").is_empty());
    assert_eq!(result.matches("photo_card-address")[0].credential, 1);
    let sets = result.credential_sets.unwrap();
    assert_eq!(sets[0].satisfied_options, [0, 1]);
    assert_eq!(sets[1].satisfied_options, [1]);

    // A doctype alone does not make an mdoc match: the elements must be there.
    let simple = DcqlQuery::from_json(&spec_example("simple_mdoc")).unwrap();
    let mvrc = mdoc(
        "org.iso.7367.1.mVRC",
        json!({ "org.iso.7367.1": { "vehicle_holder": "Erika" } }),
    );
    assert!(!simple.evaluate(&[mvrc]).satisfied);
}

#[test]
fn holder_binding_trusted_authorities_and_formats_filter_credentials() {
    let bound = parse(json!({ "credentials": [{
        "id": "c", "format": "dc+sd-jwt", "meta": { "vct_values": [PID] }
    }] }));
    let unbound_ok = parse(json!({ "credentials": [{
        "id": "c", "format": "dc+sd-jwt", "meta": { "vct_values": [PID] },
        "require_cryptographic_holder_binding": false
    }] }));
    let unbound = pid(json!({})).with_holder_binding(false);
    assert!(!bound.evaluate(std::slice::from_ref(&unbound)).satisfied);
    // Without claims, nothing selectively disclosable is asked for.
    let result = unbound_ok.evaluate(std::slice::from_ref(&unbound));
    assert!(result.satisfied);
    assert!(result.matches("c")[0].disclose.is_empty());

    let trusted = parse(json!({ "credentials": [{
        "id": "c", "format": "dc+sd-jwt", "meta": { "vct_values": [PID] },
        "trusted_authorities": [{ "type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"] }]
    }] }));
    let by_aki =
        |aki: &str| pid(json!({})).with_authority(TrustedAuthorityType::Aki, vec![aki.to_owned()]);
    let by_federation = pid(json!({})).with_authority(
        TrustedAuthorityType::OpenidFederation,
        vec!["s9tIpPmhxdiuNkHMEWNpYim8S8Y".to_owned()],
    );
    let result = trusted.evaluate(&[
        pid(json!({})),
        by_aki("other"),
        by_federation,
        by_aki("s9tIpPmhxdiuNkHMEWNpYim8S8Y"),
    ]);
    let matched: Vec<usize> = result.matches("c").iter().map(|m| m.credential).collect();
    assert_eq!(matched, [3]);
    // The verifier's check applies the same rule to what was presented.
    assert_eq!(
        trusted.check_presentations(&presented(vec![("c", vec![by_aki("other")])])),
        Err(PresentationError::UntrustedIssuer("c".to_owned()))
    );
    trusted
        .check_presentations(&presented(vec![(
            "c",
            vec![by_aki("s9tIpPmhxdiuNkHMEWNpYim8S8Y")],
        )]))
        .unwrap();

    let w3c = parse(json!({ "credentials": [{
        "id": "w", "format": "jwt_vc_json",
        "meta": { "type_values": [["VerifiableCredential", "UniversityDegreeCredential"], ["IDCredential"]] },
        "claims": [{ "path": ["credentialSubject", "name"] }]
    }] }));
    let vc = |format: CredentialFormat, types: &[&str]| {
        Credential::w3c(
            format,
            types.iter().map(|t| (*t).to_owned()).collect(),
            json!({ "credentialSubject": { "name": "Arthur" } }),
        )
    };
    let result = w3c.evaluate(&[
        vc(CredentialFormat::JwtVcJson, &["VerifiableCredential"]),
        vc(CredentialFormat::LdpVc, &["IDCredential"]),
        vc(
            CredentialFormat::JwtVcJson,
            &["VerifiableCredential", "UniversityDegreeCredential"],
        ),
        vc(
            CredentialFormat::JwtVcJson,
            &["VerifiableCredential", "IDCredential"],
        ),
    ]);
    let matched: Vec<usize> = result.matches("w").iter().map(|m| m.credential).collect();
    assert_eq!(matched, [2, 3]);
}

/// A query, a `vp_token` and the error the check should report.
type Case<'a> = (
    &'a DcqlQuery,
    BTreeMap<String, Vec<Credential>>,
    PresentationError,
);

fn presented(entries: Vec<(&str, Vec<Credential>)>) -> BTreeMap<String, Vec<Credential>> {
    entries
        .into_iter()
        .map(|(id, credentials)| (id.to_owned(), credentials))
        .collect()
}

#[test]
fn a_vp_token_answering_the_query_is_accepted() {
    let simple = DcqlQuery::from_json(&spec_example("simple")).unwrap();
    simple
        .check_presentations(&presented(vec![("my_credential", vec![pid(arthur())])]))
        .unwrap();

    let alternatives = DcqlQuery::from_json(&spec_example("credentials_alternatives")).unwrap();
    alternatives
        .check_presentations(&presented(vec![("pid", vec![pid(arthur())])]))
        .unwrap();

    let claims = DcqlQuery::from_json(&spec_example("claims_alternatives")).unwrap();
    claims
        .check_presentations(&presented(vec![("pid", vec![pid(arthur())])]))
        .unwrap();
}

#[test]
fn a_vp_token_that_does_not_answer_is_refused_with_the_reason() {
    let simple = DcqlQuery::from_json(&spec_example("simple")).unwrap();
    let no_street = pid(json!({ "family_name": "Dent", "given_name": "Arthur", "address": {} }));
    let cases: Vec<Case<'_>> = vec![
        (
            &simple,
            presented(vec![]),
            PresentationError::CredentialQueryMissing("my_credential".to_owned()),
        ),
        (
            &simple,
            presented(vec![("my_credential", vec![])]),
            PresentationError::EmptyEntry("my_credential".to_owned()),
        ),
        (
            &simple,
            presented(vec![("my_credential", vec![pid(arthur()), pid(arthur())])]),
            PresentationError::MultipleNotAllowed {
                id: "my_credential".to_owned(),
                count: 2,
            },
        ),
        (
            &simple,
            presented(vec![
                ("my_credential", vec![pid(arthur())]),
                ("other", vec![pid(arthur())]),
            ]),
            PresentationError::UnknownCredentialQuery("other".to_owned()),
        ),
        (
            &simple,
            presented(vec![("my_credential", vec![no_street])]),
            PresentationError::ClaimMissing {
                id: "my_credential".to_owned(),
                path: keys(&["address", "street_address"]),
            },
        ),
        (
            &simple,
            presented(vec![(
                "my_credential",
                vec![Credential::sd_jwt_vc("https://example.com/other", arthur())],
            )]),
            PresentationError::TypeMismatch("my_credential".to_owned()),
        ),
        (
            &simple,
            presented(vec![(
                "my_credential",
                vec![mdoc("org.iso.18013.5.1.mDL", json!({}))],
            )]),
            PresentationError::FormatMismatch {
                id: "my_credential".to_owned(),
                expected: "dc+sd-jwt".to_owned(),
                found: "mso_mdoc".to_owned(),
            },
        ),
        (
            &simple,
            presented(vec![(
                "my_credential",
                vec![pid(arthur()).with_holder_binding(false)],
            )]),
            PresentationError::HolderBindingMissing("my_credential".to_owned()),
        ),
    ];
    for (query, token, expected) in cases {
        assert_eq!(query.check_presentations(&token), Err(expected));
    }

    let values = DcqlQuery::from_json(&spec_example("value_matching_simple")).unwrap();
    assert_eq!(
        values.check_presentations(&presented(vec![("my_credential", vec![pid(arthur())])])),
        Err(PresentationError::ValueMismatch {
            id: "my_credential".to_owned(),
            path: keys(&["family_name"]),
        })
    );

    let claims = DcqlQuery::from_json(&spec_example("claims_alternatives")).unwrap();
    assert_eq!(
        claims.check_presentations(&presented(vec![(
            "pid",
            vec![pid(json!({ "last_name": "Dent", "postal_code": "90210" }))]
        )])),
        Err(PresentationError::NoClaimSetSatisfied("pid".to_owned()))
    );

    // Only half of the third option, and only the optional set: the required set fails.
    let alternatives = DcqlQuery::from_json(&spec_example("credentials_alternatives")).unwrap();
    let reduced_1 = Credential::sd_jwt_vc(
        "https://credentials.example.com/reduced_identity_credential",
        json!({ "family_name": "Dent", "given_name": "Arthur" }),
    );
    let rewards = Credential::sd_jwt_vc(
        "https://company.example/company_rewards",
        json!({ "rewards_number": 42 }),
    );
    assert_eq!(
        alternatives.check_presentations(&presented(vec![
            ("pid_reduced_cred_1", vec![reduced_1]),
            ("nice_to_have", vec![rewards]),
        ])),
        Err(PresentationError::CredentialSetNotSatisfied(0))
    );
}

#[test]
fn multiple_allows_several_presentations_each_checked() {
    let query = parse(json!({ "credentials": [{
        "id": "c", "format": "dc+sd-jwt", "meta": { "vct_values": [PID] }, "multiple": true,
        "claims": [{ "path": ["given_name"] }]
    }] }));
    query
        .check_presentations(&presented(vec![("c", vec![pid(arthur()), pid(arthur())])]))
        .unwrap();
    assert_eq!(
        query.check_presentations(&presented(vec![("c", vec![pid(arthur()), pid(json!({}))])])),
        Err(PresentationError::ClaimMissing {
            id: "c".to_owned(),
            path: keys(&["given_name"]),
        })
    );
    let result = query.evaluate(&[pid(arthur()), pid(json!({})), pid(arthur())]);
    let matched: Vec<usize> = result.matches("c").iter().map(|m| m.credential).collect();
    assert_eq!(matched, [0, 2]);
}

#[test]
fn what_the_wallet_selects_the_verifier_accepts() {
    // For each example: the matches the wallet finds, presented one per query, pass the
    // verifier's check.
    let credentials = [
        pid(arthur()),
        mdoc(
            "org.iso.7367.1.mVRC",
            json!({
                "org.iso.7367.1": { "vehicle_holder": "Arthur" },
                "org.iso.18013.5.1": { "given_name": "Arthur" }
            }),
        ),
        mdoc(
            "org.iso.18013.5.1.mDL",
            json!({ "org.iso.18013.5.1": {
                "given_name": "Arthur", "family_name": "Dent", "portrait": "ffd8",
                "resident_address": "Earth", "resident_country": "GB"
            } }),
        ),
    ];
    for name in crate::SPEC_EXAMPLES {
        let query = DcqlQuery::from_json(&spec_example(name)).unwrap();
        let result = query.evaluate(&credentials);
        let token: BTreeMap<String, Vec<Credential>> = result
            .credentials
            .iter()
            .filter_map(|answer| {
                let first = answer.matches.first()?;
                Some((
                    answer.id.clone(),
                    vec![credentials[first.credential].clone()],
                ))
            })
            .collect();
        assert_eq!(
            query.check_presentations(&token).is_ok(),
            result.satisfied,
            "{name}"
        );
    }
}

#[test]
fn a_format_this_crate_does_not_know_matches_by_format_and_claims() {
    let query = parse(json!({ "credentials": [{
        "id": "x", "format": "vendor_format", "meta": { "opaque": true },
        "require_cryptographic_holder_binding": false,
        "claims": [{ "path": ["a", 0] }]
    }] }));
    let vendor = |claims: Value| Credential {
        format: CredentialFormat::Other("vendor_format".to_owned()),
        types: Vec::new(),
        claims: edk_oid4vp::CredentialClaims::Json(claims),
        holder_binding: false,
        authorities: Vec::new(),
    };
    let other_format = Credential {
        format: CredentialFormat::Other("another_format".to_owned()),
        ..vendor(json!({ "a": [1] }))
    };
    let result = query.evaluate(&[
        vendor(json!({ "a": [] })),
        other_format,
        vendor(json!({ "a": [1] })),
    ]);
    let matched: Vec<usize> = result.matches("x").iter().map(|m| m.credential).collect();
    assert_eq!(matched, [2]);
}
