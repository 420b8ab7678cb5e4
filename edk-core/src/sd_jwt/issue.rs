//! Issuance (RFC 9901 §4.1, §4.2).

use std::collections::BTreeMap;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Map, Value};

use super::disclosure::is_reserved;
use super::error::truncate;
use super::{ClaimPath, Disclosure, SdJwt, SdJwtError};
use crate::encoding::{HashAlg, b64url_encode};
use crate::jose::{Header, Signer, jws};
use crate::limits::Limits;

/// How [`issue`] builds the SD-JWT.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct IssueOptions {
    /// The digest function, written to `_sd_alg` (RFC 9901 §4.1.1). Default `sha-256`.
    pub hash: HashAlg,
    /// The fewest decoy digests added to each `_sd` array (RFC 9901 §4.2.5). Default 1.
    pub min_decoys: usize,
    /// The most decoy digests added to each `_sd` array; the number is drawn at random
    /// between the two bounds so that it does not reveal how many claims are hidden.
    /// Default 3.
    pub max_decoys: usize,
    /// Bounds on the claims set (its nesting depth).
    pub limits: Limits,
}

impl Default for IssueOptions {
    fn default() -> Self {
        Self {
            hash: HashAlg::Sha256,
            min_decoys: 1,
            max_decoys: 3,
            limits: Limits::DEFAULT,
        }
    }
}

impl IssueOptions {
    /// The options with another digest function.
    #[must_use]
    pub const fn with_hash(mut self, hash: HashAlg) -> Self {
        self.hash = hash;
        self
    }

    /// The options adding between `min` and `max` decoy digests to each `_sd` array.
    #[must_use]
    pub const fn with_decoys(mut self, min: usize, max: usize) -> Self {
        self.min_decoys = min;
        self.max_decoys = if max < min { min } else { max };
        self
    }

    /// The options with other limits.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// Issues an SD-JWT (RFC 9901 §4): the claims named by `disclose` become disclosures, the
/// rest stays in the clear, and the payload is signed under `header` by `signer`.
///
/// A path may name an object member or an array element (see [`ClaimPath`]); naming both a
/// claim and something inside it makes a recursive disclosure (§4.2.6). Salts are 128 bits
/// from the system CSPRNG; each `_sd` array gets decoys and is sorted (§4.2.4.1, §4.2.5).
///
/// # Errors
/// [`SdJwtError::PathNotFound`] when a path names no claim, [`SdJwtError::ReservedClaimName`]
/// when the claims use `_sd` or `...` (or `_sd_alg` at the top level),
/// [`SdJwtError::TooDeep`], [`SdJwtError::Crypto`] and [`SdJwtError::Signing`].
pub async fn issue(
    header: Header,
    claims: Map<String, Value>,
    disclose: &[ClaimPath],
    options: &IssueOptions,
    signer: &(dyn Signer + '_),
) -> Result<SdJwt, SdJwtError> {
    let (payload, disclosures) = build(claims, disclose, options)?;
    let payload = serde_json::to_vec(&payload).map_err(|_| SdJwtError::Crypto)?;
    let jwt = jws::sign(header, &payload, signer)
        .await
        .map_err(SdJwtError::Signing)?;
    Ok(SdJwt::from_parts(jwt, disclosures, None))
}

/// The paths to disclose, as a tree over path segments.
#[derive(Default)]
struct Node {
    disclose: bool,
    children: BTreeMap<String, Self>,
}

impl Node {
    fn from_paths(paths: &[ClaimPath]) -> Self {
        let mut root = Self::default();
        for path in paths {
            let mut node = &mut root;
            for segment in path.segments() {
                node = node.children.entry(segment.clone()).or_default();
            }
            node.disclose = true;
        }
        root
    }
}

struct Builder<'a> {
    options: &'a IssueOptions,
    rng: SystemRandom,
    disclosures: Vec<Disclosure>,
}

/// Builds the payload and the disclosures; the payload gets `_sd_alg`.
pub(crate) fn build(
    mut claims: Map<String, Value>,
    disclose: &[ClaimPath],
    options: &IssueOptions,
) -> Result<(Map<String, Value>, Vec<Disclosure>), SdJwtError> {
    if claims.contains_key("_sd_alg") {
        return Err(SdJwtError::ReservedClaimName("_sd_alg".to_owned()));
    }
    let root = Node::from_paths(disclose);
    if root.disclose {
        return Err(SdJwtError::PathNotFound(String::new()));
    }
    for path in disclose {
        check_path(&claims, path)?;
    }
    let mut builder = Builder {
        options,
        rng: SystemRandom::new(),
        disclosures: Vec::with_capacity(disclose.len()),
    };
    builder.object(&mut claims, Some(&root), 1)?;
    claims.insert("_sd_alg".to_owned(), Value::from(options.hash.iana_name()));
    Ok((claims, builder.disclosures))
}

/// Checks that `path` names a claim of `claims`.
fn check_path(claims: &Map<String, Value>, path: &ClaimPath) -> Result<(), SdJwtError> {
    let not_found = || SdJwtError::PathNotFound(truncate(&path.to_string()));
    let mut segments = path.segments().iter();
    let first = segments.next().ok_or_else(not_found)?;
    let mut value = claims.get(first).ok_or_else(not_found)?;
    for segment in segments {
        value = match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => None,
        }
        .ok_or_else(not_found)?;
    }
    Ok(())
}

impl Builder<'_> {
    fn check_depth(&self, depth: usize) -> Result<(), SdJwtError> {
        if depth > self.options.limits.max_depth {
            return Err(SdJwtError::TooDeep {
                limit: self.options.limits.max_depth,
            });
        }
        Ok(())
    }

    fn value(
        &mut self,
        value: &mut Value,
        node: Option<&Node>,
        depth: usize,
    ) -> Result<(), SdJwtError> {
        match value {
            Value::Object(map) => self.object(map, node, depth + 1),
            Value::Array(items) => self.array(items, node, depth + 1),
            _ => Ok(()),
        }
    }

    fn object(
        &mut self,
        map: &mut Map<String, Value>,
        node: Option<&Node>,
        depth: usize,
    ) -> Result<(), SdJwtError> {
        self.check_depth(depth)?;
        if let Some(name) = map.keys().find(|name| is_reserved(name)) {
            return Err(SdJwtError::ReservedClaimName(name.clone()));
        }
        let mut digests = Vec::new();
        for (name, value) in map.iter_mut() {
            let child = node.and_then(|node| node.children.get(name));
            self.value(value, child, depth)?;
        }
        if let Some(node) = node {
            for (name, child) in &node.children {
                if !child.disclose {
                    continue;
                }
                let Some(value) = map.remove(name) else {
                    continue;
                };
                let disclosure = Disclosure::property(self.salt()?, name.clone(), value)?;
                digests.push(Value::from(disclosure.digest(self.options.hash)));
                self.disclosures.push(disclosure);
            }
        }
        if !digests.is_empty() {
            for _ in 0..self.decoy_count()? {
                digests.push(Value::from(self.decoy()?));
            }
            digests.sort_unstable_by(|a, b| a.as_str().cmp(&b.as_str()));
            map.insert("_sd".to_owned(), Value::Array(digests));
        }
        Ok(())
    }

    fn array(
        &mut self,
        items: &mut [Value],
        node: Option<&Node>,
        depth: usize,
    ) -> Result<(), SdJwtError> {
        self.check_depth(depth)?;
        for (index, item) in items.iter_mut().enumerate() {
            let child = node.and_then(|node| node.children.get(&index.to_string()));
            self.value(item, child, depth)?;
            if child.is_some_and(|child| child.disclose) {
                let disclosure = Disclosure::element(self.salt()?, item.take());
                let mut reference = Map::with_capacity(1);
                reference.insert(
                    "...".to_owned(),
                    Value::from(disclosure.digest(self.options.hash)),
                );
                *item = Value::Object(reference);
                self.disclosures.push(disclosure);
            }
        }
        Ok(())
    }

    /// A fresh salt: 128 bits from the CSPRNG, base64url (RFC 9901 §4.2.1).
    fn salt(&self) -> Result<String, SdJwtError> {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes).map_err(|_| SdJwtError::Crypto)?;
        Ok(b64url_encode(bytes))
    }

    /// A decoy digest: the hash of a random value (RFC 9901 §4.2.5).
    fn decoy(&self) -> Result<String, SdJwtError> {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes).map_err(|_| SdJwtError::Crypto)?;
        Ok(self.options.hash.digest_b64url(&bytes))
    }

    fn decoy_count(&self) -> Result<usize, SdJwtError> {
        let (min, max) = (self.options.min_decoys, self.options.max_decoys);
        if max <= min {
            return Ok(min);
        }
        let mut bytes = [0u8; 8];
        self.rng.fill(&mut bytes).map_err(|_| SdJwtError::Crypto)?;
        let spread = u64::try_from(max - min + 1).unwrap_or(u64::MAX);
        let offset = usize::try_from(u64::from_le_bytes(bytes) % spread).unwrap_or(0);
        Ok(min + offset)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(paths: &[&str]) -> Vec<ClaimPath> {
        paths.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn nested_and_array_claims_become_disclosures() {
        let claims = object(json!({
            "a": 1,
            "address": {"street": "x", "city": "y"},
            "list": ["p", "q", {"r": 1}],
        }));
        let options = IssueOptions::default().with_decoys(2, 2);
        let (payload, disclosures) = build(
            claims,
            &paths(&["a", "address", "address.street", "list.1", "list.2.r"]),
            &options,
        )
        .unwrap();
        assert_eq!(disclosures.len(), 5);
        assert_eq!(payload["_sd_alg"], "sha-256");
        assert!(payload.get("a").is_none() && payload.get("address").is_none());
        assert_eq!(payload["_sd"].as_array().unwrap().len(), 2 + 2);
        let list = payload["list"].as_array().unwrap();
        assert_eq!(list[0], "p");
        assert!(list[1].get("...").is_some());
        assert_eq!(list[2]["_sd"].as_array().unwrap().len(), 1 + 2);
        let address = disclosures
            .iter()
            .find(|d| d.name() == Some("address"))
            .unwrap();
        assert_eq!(address.value()["city"], "y");
        assert_eq!(address.value()["_sd"].as_array().unwrap().len(), 1 + 2);
        assert!(disclosures.iter().all(|d| d.salt().len() == 22));
    }

    #[test]
    fn unknown_paths_and_reserved_names_are_refused() {
        let claims = object(json!({"a": {"b": [1]}}));
        let options = IssueOptions::default();
        for path in ["x", "a.c", "a.b.1", "a.b.x", "a.b.0.z"] {
            assert!(
                matches!(
                    build(claims.clone(), &paths(&[path]), &options),
                    Err(SdJwtError::PathNotFound(_))
                ),
                "{path}"
            );
        }
        for bad in [
            json!({"_sd": []}),
            json!({"a": {"...": 1}}),
            json!({"_sd_alg": "x"}),
        ] {
            assert!(matches!(
                build(object(bad), &[], &options),
                Err(SdJwtError::ReservedClaimName(_))
            ));
        }
    }

    #[test]
    fn no_disclosable_claims_means_no_sd_array() {
        let (payload, disclosures) =
            build(object(json!({"a": 1})), &[], &IssueOptions::default()).unwrap();
        assert!(disclosures.is_empty());
        assert!(payload.get("_sd").is_none());
    }

    #[test]
    fn deep_claims_are_refused() {
        let options = IssueOptions::default().with_limits(Limits::DEFAULT.with_max_depth(2));
        assert!(matches!(
            build(object(json!({"a": {"b": {"c": 1}}})), &[], &options),
            Err(SdJwtError::TooDeep { .. })
        ));
    }
}
