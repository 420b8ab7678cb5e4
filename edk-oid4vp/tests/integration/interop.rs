//! Agreement with npm `dcql` through `interop/node/dcql.mjs`: the same queries accepted and
//! refused, the same credentials matched (and the same `claim_sets` option chosen), the same
//! `vp_token`s accepted and refused.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use edk_oid4vp::{
    Credential, CredentialClaims, CredentialFormat, DcqlError, DcqlQuery, QueryResult,
    TrustedAuthorityType,
};
use serde_json::{Value, json};

use crate::{SPEC_EXAMPLES, spec_example};

/// `interop/node`, where `scripts/test` installed the Node peers.
fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/node");
    assert!(
        dir.join("node_modules/dcql").exists(),
        "{}/node_modules is missing: run scripts/test --setup-only",
        dir.display()
    );
    dir
}

/// Runs `interop/node/dcql.mjs` on `cases` and returns its answer for each.
fn npm_dcql(cases: &[Value]) -> Vec<Value> {
    let count = cases.len();
    let mut child = Command::new("node")
        .arg("dcql.mjs")
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!({ "cases": cases }).to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "dcql.mjs failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answers.len(), count);
    answers
}

/// A credential in npm `dcql`'s shape.
fn to_npm(credential: &Credential) -> Value {
    let mut out = json!({
        "credential_format": credential.format.as_str(),
        "cryptographic_holder_binding": credential.holder_binding,
    });
    match (&credential.format, &credential.claims) {
        (CredentialFormat::SdJwtVc, CredentialClaims::Json(claims)) => {
            out["vct"] = json!(credential.types[0]);
            out["claims"] = claims.clone();
        }
        (CredentialFormat::MsoMdoc, CredentialClaims::Mdoc(namespaces)) => {
            out["doctype"] = json!(credential.types[0]);
            out["namespaces"] = Value::Object(namespaces.clone());
        }
        (_, CredentialClaims::Json(claims)) => {
            out["type"] = json!(credential.types);
            out["claims"] = claims.clone();
        }
        (format, claims) => panic!("no npm shape for {format} with {claims:?}"),
    }
    if let Some(authority) = credential.authorities.first() {
        out["authority"] = json!({ "type": authority.kind.as_str(), "values": authority.values });
    }
    out
}

/// Queries both libraries refuse, and the error EDK gives each.
/// A query and a test of the error EDK refuses it with.
type Refusal = (Value, fn(&DcqlError) -> bool);

fn refused_by_both() -> Vec<Refusal> {
    let sd = |member: Value| {
        let mut credential = json!({
            "id": "pid", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] },
            "claims": [{ "id": "a", "path": ["given_name"] }]
        });
        for (key, value) in member.as_object().unwrap() {
            credential[key] = value.clone();
        }
        json!({ "credentials": [credential] })
    };
    let mdoc_path = |path: Value| {
        json!({ "credentials": [{
            "id": "m", "format": "mso_mdoc", "meta": { "doctype_value": "d" },
            "claims": [{ "path": path }]
        }] })
    };
    let one = json!([{ "id": "a", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] } }]);
    vec![
        (json!({ "credentials": [] }), |e| {
            matches!(e, DcqlError::NoCredentials)
        }),
        (
            json!({ "credentials": [{ "id": "a b", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] } }] }),
            |e| matches!(e, DcqlError::InvalidId(_)),
        ),
        (
            json!({ "credentials": [
                { "id": "a", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] } },
                { "id": "a", "format": "dc+sd-jwt", "meta": { "vct_values": ["w"] } }
            ] }),
            |e| matches!(e, DcqlError::DuplicateCredentialId(_)),
        ),
        (
            json!({ "credentials": [{ "id": "w", "format": "jwt_vc_json", "meta": {} }] }),
            |e| matches!(e, DcqlError::MissingMeta { .. }),
        ),
        (
            json!({ "credentials": [{ "id": "w", "format": "ldp_vc", "meta": { "type_values": ["VC"] } }] }),
            |e| matches!(e, DcqlError::InvalidMeta { .. }),
        ),
        (
            json!({ "credentials": [{ "id": "w", "format": "ldp_vc", "meta": { "type_values": [[]] } }] }),
            |e| matches!(e, DcqlError::InvalidMeta { .. }),
        ),
        (sd(json!({ "trusted_authorities": [] })), |e| {
            matches!(e, DcqlError::EmptyTrustedAuthorities(_))
        }),
        (
            sd(json!({ "trusted_authorities": [{ "type": "aki", "values": [] }] })),
            |e| matches!(e, DcqlError::EmptyTrustedAuthorityValues { .. }),
        ),
        (sd(json!({ "claims": [] })), |e| {
            matches!(e, DcqlError::EmptyClaims(_))
        }),
        (
            json!({ "credentials": [{
                "id": "pid", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] },
                "claim_sets": [["a"]]
            }] }),
            |e| matches!(e, DcqlError::ClaimSetsWithoutClaims(_)),
        ),
        (sd(json!({ "claim_sets": [] })), |e| {
            matches!(e, DcqlError::EmptyClaimSet(_))
        }),
        (sd(json!({ "claim_sets": [["a"], []] })), |e| {
            matches!(e, DcqlError::EmptyClaimSet(_))
        }),
        (sd(json!({ "claim_sets": [["a", "z"]] })), |e| {
            matches!(e, DcqlError::UnknownClaimId { .. })
        }),
        (
            sd(json!({ "claims": [{ "id": "a.b", "path": ["a"] }] })),
            |e| matches!(e, DcqlError::InvalidId(_)),
        ),
        (sd(json!({ "claims": [{ "path": [] }] })), |e| {
            matches!(e, DcqlError::InvalidPath { .. })
        }),
        (sd(json!({ "claims": [{ "path": ["a", -1] }] })), |e| {
            matches!(e, DcqlError::InvalidPath { .. })
        }),
        (sd(json!({ "claims": [{ "path": ["a", 1.5] }] })), |e| {
            matches!(e, DcqlError::InvalidPath { .. })
        }),
        (sd(json!({ "claims": [{ "path": [true] }] })), |e| {
            matches!(e, DcqlError::InvalidPath { .. })
        }),
        (mdoc_path(json!(["org.iso.18013.5.1"])), |e| {
            matches!(e, DcqlError::MdocPath { .. })
        }),
        (mdoc_path(json!(["org.iso.18013.5.1", null])), |e| {
            matches!(e, DcqlError::MdocPath { .. })
        }),
        (
            sd(json!({ "claims": [{ "path": ["a"], "values": ["x", 1.5] }] })),
            |e| matches!(e, DcqlError::InvalidValue { .. }),
        ),
        (
            sd(json!({ "claims": [{ "path": ["a"], "values": [null] }] })),
            |e| matches!(e, DcqlError::InvalidValue { .. }),
        ),
        (json!({ "credentials": one, "credential_sets": [] }), |e| {
            matches!(e, DcqlError::EmptyCredentialSets)
        }),
        (
            json!({ "credentials": one, "credential_sets": [{ "options": [] }] }),
            |e| matches!(e, DcqlError::EmptyOptions(0)),
        ),
        (
            json!({ "credentials": one, "credential_sets": [{ "options": [["a", "b"]] }] }),
            |e| matches!(e, DcqlError::UnknownCredentialId { .. }),
        ),
    ]
}

#[test]
fn both_accept_the_specification_examples_and_refuse_the_same_broken_queries() {
    let refused = refused_by_both();
    let mut queries: Vec<Value> = SPEC_EXAMPLES
        .iter()
        .map(|name| spec_example(name))
        .collect();
    queries.push(json!({ "credentials": [{
        "id": "all-members", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] },
        "multiple": true, "require_cryptographic_holder_binding": false,
        "trusted_authorities": [{ "type": "openid_federation", "values": ["https://ta.example.com"] }],
        "claims": [{ "id": "n", "path": ["nationalities", null], "values": ["DE", 7, true] }],
        "claim_sets": [["n"]]
    }] }));
    let accepted = queries.len();
    queries.extend(refused.iter().map(|(query, _)| query.clone()));
    let answers = npm_dcql(
        &queries
            .iter()
            .map(|query| json!({ "query": query }))
            .collect::<Vec<_>>(),
    );
    for (query, answer) in queries.iter().zip(&answers).take(accepted) {
        assert_eq!(answer["valid"], true, "npm dcql refused {query}: {answer}");
        DcqlQuery::from_json(query).unwrap();
    }
    for ((query, is_expected), answer) in refused.iter().zip(&answers[accepted..]) {
        assert_eq!(answer["valid"], false, "npm dcql accepted {query}");
        let error = DcqlQuery::from_json(query).unwrap_err();
        assert!(is_expected(&error), "{query}: {error:?}");
    }
}

#[test]
fn where_npm_dcql_is_laxer_than_the_specification_edk_follows_the_specification() {
    // Each breaks a MUST of OpenID4VP 1.0 §6 that npm dcql 3.0.0 does not check.
    let sd = |claims: Value, claim_sets: Option<Value>| {
        let mut credential = json!({
            "id": "pid", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] }, "claims": claims
        });
        if let Some(claim_sets) = claim_sets {
            credential["claim_sets"] = claim_sets;
        }
        json!({ "credentials": [credential] })
    };
    let cases = [
        // `meta` is REQUIRED, and so are `vct_values` (non-empty) and `doctype_value`.
        json!({ "credentials": [{ "id": "a", "format": "dc+sd-jwt" }] }),
        json!({ "credentials": [{ "id": "a", "format": "dc+sd-jwt", "meta": {} }] }),
        json!({ "credentials": [{ "id": "a", "format": "dc+sd-jwt", "meta": { "vct_values": [] } }] }),
        json!({ "credentials": [{ "id": "m", "format": "mso_mdoc", "meta": {} }] }),
        // Claim ids are REQUIRED with claim_sets, and unique.
        sd(
            json!([{ "id": "a", "path": ["a"] }, { "path": ["b"] }]),
            Some(json!([["a"]])),
        ),
        sd(
            json!([{ "id": "a", "path": ["a"] }, { "id": "a", "path": ["b"] }]),
            None,
        ),
        // The same claim pointed to twice.
        sd(json!([{ "path": ["a", 0] }, { "path": ["a", 0] }]), None),
        // `values` non-empty.
        sd(json!([{ "path": ["a"], "values": [] }]), None),
        // An mdoc path is exactly a namespace and an element.
        json!({ "credentials": [{
            "id": "m", "format": "mso_mdoc", "meta": { "doctype_value": "d" },
            "claims": [{ "path": ["ns", "element", 0] }]
        }] }),
        // Each option of a credential set is non-empty.
        json!({
            "credentials": [{ "id": "a", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] } }],
            "credential_sets": [{ "options": [["a"], []] }]
        }),
    ];
    let answers = npm_dcql(
        &cases
            .iter()
            .map(|query| json!({ "query": query }))
            .collect::<Vec<_>>(),
    );
    for (query, answer) in cases.iter().zip(answers) {
        assert_eq!(answer["valid"], true, "npm dcql now refuses {query}");
        assert!(DcqlQuery::from_json(query).is_err(), "EDK accepted {query}");
    }
}

#[test]
fn formats_and_authority_types_npm_dcql_does_not_know_are_kept_opaque_by_edk() {
    // Other formats and trusted authority types are extension points of OpenID4VP 1.0 (§6.1,
    // §6.1.1); npm dcql 3.0.0 refuses them, EDK keeps them and matches them only by equality.
    let cases = [
        json!({ "credentials": [{ "id": "x", "format": "vendor_format", "meta": { "any": 1 } }] }),
        json!({ "credentials": [{
            "id": "pid", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] },
            "trusted_authorities": [{ "type": "vendor_list", "values": ["https://list.example"] }]
        }] }),
    ];
    let answers = npm_dcql(
        &cases
            .iter()
            .map(|query| json!({ "query": query }))
            .collect::<Vec<_>>(),
    );
    for (query, answer) in cases.iter().zip(answers) {
        assert_eq!(answer["valid"], false, "npm dcql now accepts {query}");
        DcqlQuery::from_json(query).unwrap();
    }
}

#[test]
fn where_npm_dcql_matches_an_empty_array_under_a_wildcard_edk_follows_the_specification() {
    // §7.1: a selection that ends empty is an error, so `["nationalities", null]` on an empty
    // array selects no claim. npm dcql 3.0.0 counts the empty array as the claim.
    let query = json!({ "credentials": [{
        "id": "n", "format": "dc+sd-jwt", "meta": { "vct_values": ["v"] },
        "claims": [{ "path": ["nationalities", null] }]
    }] });
    let wallet = [
        Credential::sd_jwt_vc("v", json!({ "nationalities": [] })),
        Credential::sd_jwt_vc("v", json!({ "nationalities": ["DE"] })),
    ];
    let answers = npm_dcql(&[json!({
        "query": query,
        "credentials": wallet.iter().map(to_npm).collect::<Vec<_>>(),
    })]);
    assert_eq!(answers[0]["matches"]["n"], json!([0, 1]));
    let ours = DcqlQuery::from_json(&query).unwrap().evaluate(&wallet);
    let matched: Vec<usize> = ours.matches("n").iter().map(|m| m.credential).collect();
    assert_eq!(matched, [1]);
}

/// A deterministic stream of choices (an LCG), so the generated cases are the same each run.
struct Choices(u64);

impl Choices {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from((self.0 >> 33) % u64::try_from(bound).unwrap()).unwrap()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.next(100) < percent
    }
}

const VCTS: [&str; 5] = [
    "https://credentials.example.com/identity_credential",
    "https://othercredentials.example/pid",
    "https://credentials.example.com/reduced_identity_credential",
    "https://cred.example/residence_credential",
    "https://company.example/company_rewards",
];

const DOCTYPES: [&str; 3] = [
    "org.iso.18013.5.1.mDL",
    "org.iso.23220.photoid.1",
    "org.iso.7367.1.mVRC",
];

/// A JSON credential with a random subset of the claims the examples ask for, some with the
/// values of the value matching example and some with others.
fn random_sd_jwt(choices: &mut Choices) -> Credential {
    let mut claims = serde_json::Map::new();
    let pick =
        |choices: &mut Choices, options: &[Value]| options[choices.next(options.len())].clone();
    for (name, values) in [
        ("given_name", vec![json!("Arthur")]),
        ("family_name", vec![json!("Doe"), json!("Dent")]),
        ("last_name", vec![json!("Dent")]),
        (
            "postal_code",
            vec![json!("90210"), json!("90211"), json!("12345"), json!(90210)],
        ),
        ("locality", vec![json!("Milliways")]),
        ("region", vec![json!("Betelgeuse")]),
        ("date_of_birth", vec![json!("1952-03-11")]),
        ("rewards_number", vec![json!(42)]),
        ("nationalities", vec![json!(["DE", "GB"]), json!(["FR"])]),
    ] {
        if choices.chance(70) {
            claims.insert(name.to_owned(), pick(choices, &values));
        }
    }
    if choices.chance(70) {
        let street = if choices.chance(80) {
            json!({ "street_address": "42 Market Street" })
        } else {
            json!("42 Market Street")
        };
        claims.insert("address".to_owned(), street);
    }
    let vct = VCTS[choices.next(VCTS.len())];
    let mut credential =
        Credential::sd_jwt_vc(vct, Value::Object(claims)).with_holder_binding(choices.chance(85));
    if choices.chance(30) {
        let aki = ["s9tIpPmhxdiuNkHMEWNpYim8S8Y", "AAAAAAAAAAAAAAAAAAAAAAAAAAA"][choices.next(2)];
        credential = credential.with_authority(TrustedAuthorityType::Aki, vec![aki.to_owned()]);
    }
    credential
}

/// An mdoc with a random subset of the elements the examples ask for.
fn random_mdoc(choices: &mut Choices) -> Credential {
    let mut iso = serde_json::Map::new();
    for (name, value) in [
        ("given_name", json!("Erika")),
        ("family_name", json!("Mustermann")),
        ("portrait", json!("ffd8ffe0")),
        ("resident_address", json!("Heidestraße 17")),
        ("resident_country", json!("DE")),
        ("age_over_18", json!(true)),
    ] {
        if choices.chance(75) {
            iso.insert(name.to_owned(), value);
        }
    }
    let mut namespaces = serde_json::Map::new();
    namespaces.insert("org.iso.18013.5.1".to_owned(), Value::Object(iso));
    if choices.chance(60) {
        namespaces.insert(
            "org.iso.7367.1".to_owned(),
            json!({ "vehicle_holder": "Erika Mustermann" }),
        );
    }
    Credential::mdoc(DOCTYPES[choices.next(DOCTYPES.len())], namespaces)
}

/// The queries the generated wallets are evaluated against: the specification's examples and
/// a few exercising what the examples do not (values of other types, wildcards with and without
/// values, holder binding, trusted authorities, `multiple`).
fn evaluation_queries() -> Vec<Value> {
    let mut queries: Vec<Value> = SPEC_EXAMPLES
        .iter()
        .map(|name| spec_example(name))
        .collect();
    queries.push(json!({ "credentials": [{
        "id": "typed", "format": "dc+sd-jwt", "meta": { "vct_values": VCTS },
        "multiple": true,
        "claims": [
            { "path": ["postal_code"], "values": [90210, "12345"] },
            { "path": ["rewards_number"], "values": [42] }
        ]
    }] }));
    queries.push(json!({ "credentials": [{
        "id": "wildcard", "format": "dc+sd-jwt", "meta": { "vct_values": VCTS },
        "require_cryptographic_holder_binding": false,
        "claims": [{ "path": ["nationalities", null] }]
    }] }));
    queries.push(json!({ "credentials": [{
        "id": "german", "format": "dc+sd-jwt", "meta": { "vct_values": VCTS },
        "claims": [{ "path": ["nationalities", null], "values": ["DE"] }]
    }] }));
    queries.push(json!({ "credentials": [{
        "id": "trusted", "format": "dc+sd-jwt", "meta": { "vct_values": VCTS },
        "trusted_authorities": [{ "type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"] }]
    }] }));
    queries.push(json!({ "credentials": [
        {
            "id": "age", "format": "mso_mdoc", "meta": { "doctype_value": "org.iso.18013.5.1.mDL" },
            "claims": [
                { "id": "over", "path": ["org.iso.18013.5.1", "age_over_18"], "values": [true], "intent_to_retain": false },
                { "id": "name", "path": ["org.iso.18013.5.1", "family_name"] }
            ],
            "claim_sets": [["over"], ["name"]]
        },
        { "id": "pid", "format": "dc+sd-jwt", "meta": { "vct_values": [VCTS[0]] } }
    ], "credential_sets": [{ "options": [["age"], ["pid"]] }] }));
    queries
}

/// The matched credential indices per credential query, as npm dcql reports them.
fn matches_of(result: &QueryResult) -> Value {
    let mut matches = serde_json::Map::new();
    let mut claim_sets = serde_json::Map::new();
    for answer in &result.credentials {
        matches.insert(
            answer.id.clone(),
            json!(
                answer
                    .matches
                    .iter()
                    .map(|m| m.credential)
                    .collect::<Vec<_>>()
            ),
        );
        claim_sets.insert(
            answer.id.clone(),
            json!(
                answer
                    .matches
                    .iter()
                    .map(|m| m.claim_set)
                    .collect::<Vec<_>>()
            ),
        );
    }
    json!({ "matches": matches, "claim_sets": claim_sets })
}

/// The `vp_token`s a verifier may receive for `result`: the wallet's first match per answered
/// query, that token with every presentation doubled (refused unless `multiple`), with the
/// first entry dropped, and with a presentation swapped for an unmatched credential.
fn tokens(
    query: &DcqlQuery,
    result: &QueryResult,
    wallet: &[Credential],
) -> Vec<BTreeMap<String, Vec<Credential>>> {
    let first: BTreeMap<String, Vec<Credential>> = result
        .credentials
        .iter()
        .filter_map(|answer| {
            let chosen = answer.matches.first()?;
            Some((answer.id.clone(), vec![wallet[chosen.credential].clone()]))
        })
        .collect();
    let mut out = Vec::new();
    let doubled = first
        .iter()
        .map(|(id, credentials)| {
            (
                id.clone(),
                vec![credentials[0].clone(), credentials[0].clone()],
            )
        })
        .collect();
    out.push(doubled);
    if let Some(dropped) = first.keys().next() {
        let mut fewer = first.clone();
        fewer.remove(dropped);
        out.push(fewer);
    }
    for credential_query in &query.credentials {
        let unmatched = wallet.iter().enumerate().find(|(index, _)| {
            !result
                .matches(&credential_query.id)
                .iter()
                .any(|m| m.credential == *index)
        });
        if let (Some((_, credential)), true) = (unmatched, first.contains_key(&credential_query.id))
        {
            let mut swapped = first.clone();
            swapped.insert(credential_query.id.clone(), vec![credential.clone()]);
            out.push(swapped);
            break;
        }
    }
    out.push(first);
    out
}

fn to_npm_token(token: &BTreeMap<String, Vec<Credential>>) -> Value {
    token
        .iter()
        .map(|(id, credentials)| {
            (
                id.clone(),
                json!(credentials.iter().map(to_npm).collect::<Vec<_>>()),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn both_match_the_same_credentials_and_accept_the_same_vp_tokens() {
    let queries = evaluation_queries();
    let mut choices = Choices(0x0d0c_a11e);
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    let (mut satisfiable, mut accepted_tokens, mut refused_tokens) = (0, 0, 0);
    for round in 0..60 {
        for query_json in &queries {
            let query = DcqlQuery::from_json(query_json).unwrap();
            let size = 1 + choices.next(5);
            let wallet: Vec<Credential> = (0..size)
                .map(|_| {
                    if choices.chance(30) {
                        random_mdoc(&mut choices)
                    } else {
                        random_sd_jwt(&mut choices)
                    }
                })
                .collect();
            let result = query.evaluate(&wallet);
            satisfiable += usize::from(result.satisfied);
            for token in tokens(&query, &result, &wallet) {
                let accepted = query.check_presentations(&token).is_ok();
                if accepted {
                    accepted_tokens += 1;
                } else {
                    refused_tokens += 1;
                }
                cases.push(json!({
                    "query": query_json,
                    "credentials": wallet.iter().map(to_npm).collect::<Vec<_>>(),
                    "presentation": to_npm_token(&token),
                }));
                expected.push((round, result.clone(), accepted, token));
            }
        }
    }
    // The generated cases exercise both outcomes on each side.
    assert!(
        satisfiable > 20 && satisfiable < cases.len(),
        "{satisfiable}"
    );
    assert!(
        accepted_tokens > 50 && refused_tokens > 50,
        "{accepted_tokens}/{refused_tokens}"
    );

    let answers = npm_dcql(&cases);
    for ((case, answer), (round, result, accepted, token)) in
        cases.iter().zip(&answers).zip(&expected)
    {
        let context = || {
            format!(
                "round {round}\ncase {case:#}\nnpm {answer:#}\nedk {result:#?}\ntoken {token:#?}"
            )
        };
        assert_eq!(answer["valid"], true, "{}", context());
        assert_eq!(
            answer["can_be_satisfied"],
            result.satisfied,
            "{}",
            context()
        );
        let ours = matches_of(result);
        assert_eq!(answer["matches"], ours["matches"], "{}", context());
        assert_eq!(answer["claim_sets"], ours["claim_sets"], "{}", context());
        assert_eq!(answer["presentation_accepted"], *accepted, "{}", context());
    }
}
