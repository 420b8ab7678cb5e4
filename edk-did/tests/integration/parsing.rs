//! Arbitrary input into the parsers: never a panic, always a client error.

use edk_core::{Did, ErrorKind, HasKind};
use edk_did::methods::web::DidWeb;
use edk_did::multikey::Multikey;
use edk_did::{DidResolver, ResolveOptions};
use proptest::prelude::*;

use crate::support::local_resolver;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_resolve_to_client_errors(
        input in prop_oneof![
            any::<String>(),
            "did:key:z[1-9A-HJ-NP-Za-km-z]{0,60}",
            "did:key:[a-z0-9:%]{0,20}",
            "did:jwk:[A-Za-z0-9_-]{0,200}",
            "did:[a-z]{1,6}:[ -~]{0,40}",
        ]
    ) {
        let resolver = local_resolver();
        let opts = ResolveOptions::default();
        let outcome = runtime().block_on(resolver.resolve(None, &input, &opts));
        if let Err(err) = outcome {
            prop_assert!(err.kind().is_client_error(), "{input:?}: {err}");
            prop_assert!(!err.to_string().is_empty());
        }
        let outcome = runtime().block_on(resolver.dereference(None, &input, &opts));
        if let Err(err) = outcome {
            prop_assert!(err.kind().is_client_error(), "{input:?}: {err}");
        }
    }

    #[test]
    fn arbitrary_did_web_ids_give_a_url_or_invalid_did(msid in "[a-zA-Z0-9.%:_-]{1,60}") {
        if let Ok(did) = Did::new(format!("did:web:{msid}")) {
            match DidWeb::document_url(&did) {
                Ok(url) => {
                    prop_assert_eq!(url.scheme(), "https");
                    prop_assert!(url.path().ends_with("/did.json"));
                    prop_assert!(!url.path().contains("/../") && !url.path().contains("/./"));
                }
                Err(err) => prop_assert_eq!(err.kind(), ErrorKind::InvalidInput),
            }
        }
    }

    #[test]
    fn arbitrary_multicodec_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(key) = Multikey::from_multicodec(&bytes) {
            // Whatever decodes re-encodes to the same bytes and converts to a JWK.
            prop_assert_eq!(key.to_multicodec(), bytes);
            prop_assert!(key.to_jwk().is_ok());
        }
    }
}
