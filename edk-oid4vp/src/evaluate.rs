//! Evaluating a [`DcqlQuery`] (OpenID4VP 1.0 §6.4): on the wallet's side, which of its
//! credentials answer which credential query and which claims to disclose
//! ([`DcqlQuery::evaluate`]); on the verifier's side, whether the credentials of a `vp_token`
//! answer the query ([`DcqlQuery::check_presentations`]).
//!
//! Both work on [`Credential`]s: what a credential says once its signatures are verified and
//! its disclosures processed. Cryptography and trust are the caller's.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::dcql::{
    ClaimsQuery, CredentialFormat, CredentialMeta, CredentialQuery, DcqlQuery,
    TrustedAuthoritiesQuery, TrustedAuthorityType,
};
use crate::error::PresentationError;
use crate::path::ClaimPath;

/// The claims of a credential, in the shape its format gives them.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialClaims {
    /// A JSON credential: the processed claims of an SD-JWT VC (disclosures applied), or the
    /// W3C credential.
    Json(Value),
    /// An mdoc: each namespace mapped to an object of its data elements, their CBOR values
    /// converted to JSON (RFC 8949 §6.1).
    Mdoc(Map<String, Value>),
}

/// What identifies the issuer of a credential to a trusted authorities query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The kind of identifier.
    pub kind: TrustedAuthorityType,
    /// The identifiers of this kind (e.g. every AuthorityKeyIdentifier in the chain).
    pub values: Vec<String>,
}

/// A credential as DCQL sees it: format, type, claims, holder binding and issuer identifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// The format.
    pub format: CredentialFormat,
    /// The credential types: the `vct` of an SD-JWT VC, the doctype of an mdoc, the `type`
    /// entries of a W3C credential; empty for other formats.
    pub types: Vec<String>,
    /// The claims.
    pub claims: CredentialClaims,
    /// Whether the credential (or its presentation) has cryptographic holder binding.
    pub holder_binding: bool,
    /// The issuer's identifiers for `trusted_authorities`.
    pub authorities: Vec<Authority>,
}

impl Credential {
    /// An SD-JWT VC of type `vct` with its processed `claims`, holder-bound.
    #[must_use]
    pub fn sd_jwt_vc(vct: impl Into<String>, claims: Value) -> Self {
        Self {
            format: CredentialFormat::SdJwtVc,
            types: vec![vct.into()],
            claims: CredentialClaims::Json(claims),
            holder_binding: true,
            authorities: Vec::new(),
        }
    }

    /// An mdoc of `doctype` with its `namespaces`, holder-bound (mdocs always have a device
    /// key).
    #[must_use]
    pub fn mdoc(doctype: impl Into<String>, namespaces: Map<String, Value>) -> Self {
        Self {
            format: CredentialFormat::MsoMdoc,
            types: vec![doctype.into()],
            claims: CredentialClaims::Mdoc(namespaces),
            holder_binding: true,
            authorities: Vec::new(),
        }
    }

    /// A W3C credential (`jwt_vc_json` or `ldp_vc`) with its `type` entries and its JSON,
    /// holder-bound.
    #[must_use]
    pub fn w3c(format: CredentialFormat, types: Vec<String>, claims: Value) -> Self {
        Self {
            format,
            types,
            claims: CredentialClaims::Json(claims),
            holder_binding: true,
            authorities: Vec::new(),
        }
    }

    /// The same credential with `holder_binding` set.
    #[must_use]
    pub fn with_holder_binding(mut self, holder_binding: bool) -> Self {
        self.holder_binding = holder_binding;
        self
    }

    /// The same credential with one more issuer identifier.
    #[must_use]
    pub fn with_authority(mut self, kind: TrustedAuthorityType, values: Vec<String>) -> Self {
        self.authorities.push(Authority { kind, values });
        self
    }

    /// The values `path` selects in this credential; `None` when it selects nothing or
    /// cannot be applied.
    #[must_use]
    pub fn select(&self, path: &ClaimPath) -> Option<Vec<&Value>> {
        match &self.claims {
            CredentialClaims::Json(root) => path.select_json(root).ok(),
            CredentialClaims::Mdoc(namespaces) => {
                path.select_mdoc(namespaces).ok().map(|value| vec![value])
            }
        }
    }

    fn has_type(&self, meta: &CredentialMeta) -> bool {
        match meta {
            CredentialMeta::SdJwtVc { vct_values } => {
                self.types.iter().any(|vct| vct_values.contains(vct))
            }
            CredentialMeta::MsoMdoc { doctype_value } => {
                self.types.iter().any(|doctype| doctype == doctype_value)
            }
            CredentialMeta::W3c { type_values } => type_values
                .iter()
                .any(|alternative| alternative.iter().all(|t| self.types.contains(t))),
            CredentialMeta::Opaque(_) => true,
        }
    }

    fn is_issued_by(&self, authorities: &[TrustedAuthoritiesQuery]) -> bool {
        authorities.iter().any(|query| {
            self.authorities.iter().any(|authority| {
                authority.kind == query.kind
                    && authority
                        .values
                        .iter()
                        .any(|value| query.values.contains(value))
            })
        })
    }
}

/// How a claims query fares against one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimOutcome {
    Present,
    Missing,
    WrongValue,
}

fn claim_outcome(credential: &Credential, claim: &ClaimsQuery) -> ClaimOutcome {
    let Some(selected) = credential.select(&claim.path) else {
        return ClaimOutcome::Missing;
    };
    match &claim.values {
        Some(values) if !selected.iter().any(|value| values.contains(value)) => {
            ClaimOutcome::WrongValue
        }
        _ => ClaimOutcome::Present,
    }
}

/// One credential that answers a credential query, and what to disclose of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialMatch {
    /// The index of the credential in the slice given to [`DcqlQuery::evaluate`].
    pub credential: usize,
    /// The index of the `claim_sets` option used (the first satisfied), when the query has
    /// `claim_sets`.
    pub claim_set: Option<usize>,
    /// The paths of the claims to disclose, in the order of the query's `claims`; empty when
    /// the query has no `claims`.
    pub disclose: Vec<ClaimPath>,
}

/// The credentials that answer one credential query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialQueryResult {
    /// The credential query's id.
    pub id: String,
    /// Every matching credential, in the order given. With `multiple: false` the wallet
    /// presents one of them.
    pub matches: Vec<CredentialMatch>,
}

/// How one credential set query fares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSetResult {
    /// Whether the set is required.
    pub required: bool,
    /// The indices of the options whose every credential query has a match.
    pub satisfied_options: Vec<usize>,
}

/// The result of [`DcqlQuery::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// One entry per credential query, in the query's order.
    pub credentials: Vec<CredentialQueryResult>,
    /// One entry per credential set query, when the query has `credential_sets`.
    pub credential_sets: Option<Vec<CredentialSetResult>>,
    /// Whether the wallet can answer: every credential query has a match (no
    /// `credential_sets`), or every required set has a satisfied option.
    pub satisfied: bool,
}

impl QueryResult {
    /// The matches of the credential query `id` (empty when it has none or is unknown).
    #[must_use]
    pub fn matches(&self, id: &str) -> &[CredentialMatch] {
        self.credentials
            .iter()
            .find(|result| result.id == id)
            .map_or(&[], |result| result.matches.as_slice())
    }
}

impl CredentialQuery {
    /// Whether `credential` answers this query and, if so, the claims to disclose: the format
    /// and type match, holder binding is there when required, the issuer is one of
    /// `trusted_authorities` when given, and the claims are present with allowed values (all
    /// of them, or the first satisfiable option of `claim_sets`).
    #[must_use]
    pub fn matches(&self, credential: &Credential) -> Option<(Option<usize>, Vec<ClaimPath>)> {
        if credential.format != self.format || !credential.has_type(&self.meta) {
            return None;
        }
        if self.require_cryptographic_holder_binding && !credential.holder_binding {
            return None;
        }
        if let Some(authorities) = &self.trusted_authorities
            && !credential.is_issued_by(authorities)
        {
            return None;
        }
        let Some(claims) = &self.claims else {
            return Some((None, Vec::new()));
        };
        let present =
            |claim: &ClaimsQuery| claim_outcome(credential, claim) == ClaimOutcome::Present;
        match &self.claim_sets {
            None => claims.iter().all(present).then(|| {
                (
                    None,
                    claims.iter().map(|claim| claim.path.clone()).collect(),
                )
            }),
            Some(claim_sets) => claim_sets.iter().enumerate().find_map(|(index, option)| {
                let chosen: Vec<&ClaimsQuery> = claims
                    .iter()
                    .filter(|claim| claim.id.as_ref().is_some_and(|id| option.contains(id)))
                    .collect();
                (chosen.len() == option.len() && chosen.iter().all(|claim| present(claim))).then(
                    || {
                        (
                            Some(index),
                            chosen.iter().map(|claim| claim.path.clone()).collect(),
                        )
                    },
                )
            }),
        }
    }

    /// Why `credential`, presented for this query, does not answer it.
    fn check(&self, credential: &Credential) -> Result<(), PresentationError> {
        let id = || self.id.clone();
        if credential.format != self.format {
            return Err(PresentationError::FormatMismatch {
                id: id(),
                expected: self.format.as_str().to_owned(),
                found: credential.format.as_str().to_owned(),
            });
        }
        if !credential.has_type(&self.meta) {
            return Err(PresentationError::TypeMismatch(id()));
        }
        if self.require_cryptographic_holder_binding && !credential.holder_binding {
            return Err(PresentationError::HolderBindingMissing(id()));
        }
        if let Some(authorities) = &self.trusted_authorities
            && !credential.is_issued_by(authorities)
        {
            return Err(PresentationError::UntrustedIssuer(id()));
        }
        let Some(claims) = &self.claims else {
            return Ok(());
        };
        let check_claim = |claim: &ClaimsQuery| match claim_outcome(credential, claim) {
            ClaimOutcome::Present => Ok(()),
            ClaimOutcome::Missing => Err(PresentationError::ClaimMissing {
                id: id(),
                path: claim.path.clone(),
            }),
            ClaimOutcome::WrongValue => Err(PresentationError::ValueMismatch {
                id: id(),
                path: claim.path.clone(),
            }),
        };
        match &self.claim_sets {
            None => claims.iter().try_for_each(check_claim),
            Some(_) if self.matches(credential).is_some() => Ok(()),
            Some(_) => Err(PresentationError::NoClaimSetSatisfied(id())),
        }
    }
}

impl DcqlQuery {
    /// The wallet's side: which of `credentials` answer each credential query, which credential
    /// sets can be satisfied, and whether the whole query can be answered.
    #[must_use]
    pub fn evaluate(&self, credentials: &[Credential]) -> QueryResult {
        let results: Vec<CredentialQueryResult> = self
            .credentials
            .iter()
            .map(|query| CredentialQueryResult {
                id: query.id.clone(),
                matches: credentials
                    .iter()
                    .enumerate()
                    .filter_map(|(index, credential)| {
                        query
                            .matches(credential)
                            .map(|(claim_set, disclose)| CredentialMatch {
                                credential: index,
                                claim_set,
                                disclose,
                            })
                    })
                    .collect(),
            })
            .collect();
        let answered = |id: &str| {
            results
                .iter()
                .any(|result| result.id == id && !result.matches.is_empty())
        };
        let (credential_sets, satisfied) = self.sets_outcome(answered);
        QueryResult {
            credentials: results,
            credential_sets,
            satisfied,
        }
    }

    /// The verifier's side: checks that `presented` (the `vp_token`'s shape: for each answered
    /// credential query id, the credentials presented, verified and with their disclosures
    /// processed) answers this query: every presentation satisfies its credential query
    /// (format, type, holder binding, issuer among `trusted_authorities` when the query has
    /// them, claims, values, `claim_sets`), `multiple` is respected, and every credential query
    /// (without `credential_sets`) or every required credential set is answered.
    ///
    /// The credentials' [`Credential::authorities`] come from what the verifier verified (e.g.
    /// the AuthorityKeyIdentifiers of the issuer's chain); matching `trusted_authorities` does
    /// not replace the verifier's own trust decision.
    ///
    /// # Errors
    ///
    /// The [`PresentationError`] of the first rule broken.
    pub fn check_presentations(
        &self,
        presented: &BTreeMap<String, Vec<Credential>>,
    ) -> Result<(), PresentationError> {
        for (id, credentials) in presented {
            let query = self
                .credential(id)
                .ok_or_else(|| PresentationError::UnknownCredentialQuery(id.clone()))?;
            if credentials.is_empty() {
                return Err(PresentationError::EmptyEntry(id.clone()));
            }
            if !query.multiple && credentials.len() > 1 {
                return Err(PresentationError::MultipleNotAllowed {
                    id: id.clone(),
                    count: credentials.len(),
                });
            }
            for credential in credentials {
                query.check(credential)?;
            }
        }
        let answered = |id: &str| presented.contains_key(id);
        if self.credential_sets.is_none()
            && let Some(missing) = self.credentials.iter().find(|query| !answered(&query.id))
        {
            return Err(PresentationError::CredentialQueryMissing(
                missing.id.clone(),
            ));
        }
        if let (Some(sets), _) = self.sets_outcome(answered)
            && let Some(index) = sets
                .iter()
                .position(|set| set.required && set.satisfied_options.is_empty())
        {
            return Err(PresentationError::CredentialSetNotSatisfied(index));
        }
        Ok(())
    }

    /// The credential sets' outcome and whether the query is satisfied, given which credential
    /// queries are answered.
    fn sets_outcome(
        &self,
        answered: impl Fn(&str) -> bool,
    ) -> (Option<Vec<CredentialSetResult>>, bool) {
        let Some(sets) = &self.credential_sets else {
            let all = self.credentials.iter().all(|query| answered(&query.id));
            return (None, all);
        };
        let results: Vec<CredentialSetResult> = sets
            .iter()
            .map(|set| CredentialSetResult {
                required: set.required,
                satisfied_options: set
                    .options
                    .iter()
                    .enumerate()
                    .filter(|(_, option)| option.iter().all(|id| answered(id)))
                    .map(|(index, _)| index)
                    .collect(),
            })
            .collect();
        let satisfied = results
            .iter()
            .all(|set| !set.required || !set.satisfied_options.is_empty());
        (Some(results), satisfied)
    }
}
