//! Properties over generated claims, disclosure choices and garbage input.

use std::sync::OnceLock;

use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{self, ClaimPath, IssueOptions, KeyBindingClaims, SdJwt, VerifyOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::NOW;

fn keys() -> &'static (SigningKey, SigningKey) {
    static KEYS: OnceLock<(SigningKey, SigningKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            SigningKey::generate(Algorithm::Es256).unwrap(),
            SigningKey::generate(Algorithm::Es256).unwrap(),
        )
    })
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z]{1,5}", json_value(), 1..6)
        .prop_map(|map| map.into_iter().collect())
}

/// Every path in `value`, parents before children.
fn all_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<ClaimPath>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (segment, child) in children {
        prefix.push(segment);
        out.push(ClaimPath::new(prefix.clone()));
        all_paths(child, prefix, out);
        prefix.pop();
    }
}

fn pick(paths: &[ClaimPath], mask: &[bool]) -> Vec<ClaimPath> {
    paths
        .iter()
        .zip(mask.iter().cycle())
        .filter(|(_, keep)| **keep)
        .map(|(p, _)| p.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn issue_present_verify_round_trips(
        mut claims in claims(),
        sd_mask in prop::collection::vec(any::<bool>(), 1..16),
        show_mask in prop::collection::vec(any::<bool>(), 1..16),
    ) {
        let (issuer, holder) = keys();
        claims.insert("cnf".to_owned(), json!({"jwk": holder.public_jwk()}));
        let mut every = Vec::new();
        all_paths(&Value::Object(claims.clone()), &mut Vec::new(), &mut every);
        every.retain(|p| p.segments()[0] != "cnf");
        let sd = pick(&every, &sd_mask);
        let shown = pick(&every, &show_mask);
        let resolver = JwksResolver::from_keys([&issuer.public_jwk()]);
        block_on(async {
            let issued = sd_jwt::issue(Header::new(Algorithm::Es256), claims.clone(), &sd,
                &IssueOptions::default(), issuer).await.unwrap();
            // Everything disclosed gives the claims back.
            let full = issued.verify(&resolver, &VerifyOptions::default(), NOW).await.unwrap();
            let (mut got, mut want) = (full.into_claims(), claims.clone());
            got.sort_keys();
            want.sort_keys();
            prop_assert_eq!(Value::Object(got), Value::Object(want));
            // Any choice presents and verifies with key binding.
            let kb = KeyBindingClaims::new("aud", "nonce", NOW);
            let presented = issued.present(&shown, Some((&kb, holder))).await.unwrap();
            prop_assert!(presented.disclosures().len() <= issued.disclosures().len());
            let parsed = SdJwt::parse(&presented.to_string(), &Limits::DEFAULT).unwrap();
            let verified = parsed
                .verify(&resolver, &VerifyOptions::default().with_key_binding("aud", "nonce"), NOW)
                .await
                .unwrap();
            prop_assert_eq!(verified.disclosed().len(), presented.disclosures().len());
            Ok(())
        })?;
    }

    #[test]
    fn garbage_never_panics(input in "[A-Za-z0-9_.~{}\":\\[\\], -]{0,300}") {
        let resolver = JwksResolver::from_keys([&keys().0.public_jwk()]);
        if let Ok(parsed) = SdJwt::parse(&input, &Limits::DEFAULT) {
            let _ = block_on(parsed.verify(&resolver, &VerifyOptions::default(), NOW));
            let _ = parsed.select(&[]);
        }
    }

    #[test]
    fn garbage_disclosures_never_panic(
        disclosures in prop::collection::vec("[A-Za-z0-9_-]{0,80}", 0..6),
        kb in "[A-Za-z0-9_.-]{0,40}",
    ) {
        let (issuer, _) = keys();
        let resolver = JwksResolver::from_keys([&issuer.public_jwk()]);
        let jwt = block_on(sd_jwt::issue(Header::new(Algorithm::Es256), Map::new(), &[],
            &IssueOptions::default(), issuer)).unwrap();
        let text = format!("{}~{}~{kb}", jwt.issuer_jwt(), disclosures.join("~"));
        if let Ok(parsed) = SdJwt::parse(&text, &Limits::DEFAULT) {
            let options = VerifyOptions::default().with_key_binding("a", "n");
            prop_assert!(block_on(parsed.verify(&resolver, &options, NOW)).is_err());
        }
    }
}
