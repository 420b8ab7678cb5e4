//! Request and response bodies of the admin and registrar APIs, and their conversions.

use std::borrow::Cow;

use edk_core::ErrorKind;
use edk_core::jose::Algorithm;
use edk_did::document::Relationship;
use edk_did::methods::web::DidWeb;
use edk_did::registrar::{CreateDid, NewMethod};
use edk_did::store::{StoredDid, StoredService};
use edk_did::webvh::{Multikey, WebvhDid, WitnessConfig};
use edk_kms::KeyAlias;
use edk_server::ApiError;
use poem_openapi::Object;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, Type};
use serde_json::Value;

/// The request bodies (and their parts) that refuse members they do not declare
/// (`deny_unknown_fields`).
const CLOSED_OBJECTS: [&str; 11] = [
    "CreateIdentifier",
    "DocumentTemplate",
    "KeyRequest",
    "RegistrarCreate",
    "RegistrarCreateOptions",
    "RegistrarDeactivate",
    "RegistrarUpdate",
    "RegistrarUpdateOptions",
    "ServiceDto",
    "WitnessProofRequest",
    "WitnessRequest",
];

/// A request body whose OpenAPI schema says that undeclared members are refused, as the
/// server does. poem-openapi cannot write `additionalProperties: false`, so the objects of
/// [`CLOSED_OBJECTS`] get an `additionalProperties` schema that no value satisfies (a string
/// of at least one and at most zero characters), which means the same.
#[derive(Debug)]
pub struct Closed<T>(pub T);

impl<T: Type> Type for Closed<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        for name in CLOSED_OBJECTS {
            if let Some(schema) = registry.schemas.get_mut(name) {
                schema.additional_properties =
                    Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema {
                        description: Some("No other members are accepted."),
                        min_length: Some(1),
                        max_length: Some(0),
                        ..MetaSchema::new("string")
                    }))));
            }
        }
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_raw_value()
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        self.0.raw_element_iter()
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Closed<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        T::parse_from_json(value)
            .map(Closed)
            .map_err(ParseError::propagate)
    }
}

/// A verification method to add: a KMS key alias, created when it does not exist.
#[derive(Clone, Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct KeyRequest {
    /// The alias (`did.<purpose>`); `did.<name>` (then `did.<name>-2`, ...) when absent.
    pub alias: Option<String>,
    /// The algorithm of a key created for a missing alias: `ES256` (default), `ES384`,
    /// `ES256K` or `EdDSA`.
    pub algorithm: Option<String>,
    /// Verification relationships (`authentication`, `assertionMethod`, `keyAgreement`,
    /// `capabilityInvocation`, `capabilityDelegation`); `authentication` and
    /// `assertionMethod` when empty.
    #[oai(default)]
    pub relationships: Vec<String>,
}

/// A service of a DID document.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ServiceDto {
    /// The fragment of the service id (without `#`).
    pub id: String,
    /// The service type.
    #[oai(rename = "type")]
    pub service_type: String,
    /// The endpoint: a URL, a map or a list.
    #[oai(rename = "serviceEndpoint")]
    pub service_endpoint: Value,
}

/// The did:webvh `witness` parameter: `threshold` of `witnesses` must approve each log entry
/// (their proofs are added with `POST /api/did/v1/identifiers/{did}/witness-proofs` and
/// published in `did-witness.json`). `{}` means no witnesses (on update: turns them off).
#[derive(Clone, Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct WitnessRequest {
    /// How many distinct witnesses must approve each entry: 1 to the number of witnesses.
    pub threshold: Option<u64>,
    /// The witnesses: Ed25519 `did:key` DIDs (`did:key:z6Mk...`) or their Multikeys
    /// (`z6Mk...`), without duplicates.
    #[oai(default)]
    pub witnesses: Vec<String>,
}

/// A DID to create.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateIdentifier {
    /// `web`, `webvh`, `key` or `jwk`.
    pub method: String,
    /// Path below the tenant's DID endpoint binding (`issuer` or `dids/issuer`); the binding
    /// itself when absent. did:web and did:webvh only.
    pub path: Option<String>,
    /// The stem of the KMS key aliases (`did.<name>`); derived when absent.
    pub name: Option<String>,
    /// Verification methods; one `ES256` key when empty.
    #[oai(default)]
    pub keys: Vec<KeyRequest>,
    /// Services. did:web and did:webvh only.
    #[oai(default)]
    pub services: Vec<ServiceDto>,
    /// Witnesses of the log. did:webvh only.
    pub witness: Option<WitnessRequest>,
}

/// A verification method of a DID.
#[derive(Clone, Debug, Object)]
pub struct MethodView {
    /// The KMS key alias.
    pub alias: String,
    /// The verification relationships. The document lists one `JsonWebKey` method per
    /// verifiable key version of the alias, `<did>#<kid>`.
    pub relationships: Vec<String>,
}

/// A DID of the tenant.
#[derive(Clone, Debug, Object)]
pub struct IdentifierView {
    /// The DID.
    pub did: String,
    /// The method (`web`, `webvh`, `key`, `jwk`).
    pub method: String,
    /// The stem of its key aliases.
    pub name: String,
    /// Where `did.json` is published (did:web, and the parallel did:web of a did:webvh).
    #[oai(skip_serializing_if_is_none)]
    pub document_url: Option<String>,
    /// Where `did.jsonl` is published (did:webvh).
    #[oai(skip_serializing_if_is_none)]
    pub log_url: Option<String>,
    /// Whether it is deactivated.
    pub deactivated: bool,
    /// The did:webvh update key alias.
    #[oai(skip_serializing_if_is_none)]
    pub update_key: Option<String>,
    /// The number of published did:webvh log entries.
    pub log_entries: u64,
    /// The `versionId` of the last published did:webvh entry.
    #[oai(skip_serializing_if_is_none)]
    pub version_id: Option<String>,
    /// did:webvh entries signed but held back until their witnesses approve them (add proofs
    /// with `POST /api/did/v1/identifiers/{did}/witness-proofs`); a proof for the last one
    /// approves them all.
    pub pending_version_ids: Vec<String>,
    /// Its verification methods.
    pub verification_methods: Vec<MethodView>,
    /// Its services.
    pub services: Vec<ServiceDto>,
    /// The current DID document.
    pub document: Value,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it last changed (Unix seconds).
    pub updated_at: i64,
}

/// The tenant's DIDs.
#[derive(Clone, Debug, Object)]
pub struct IdentifierList {
    /// The DIDs, ordered by DID.
    pub identifiers: Vec<IdentifierView>,
}

/// The verification methods of a DID.
#[derive(Clone, Debug, Object)]
pub struct MethodList {
    /// The methods, in document order.
    pub verification_methods: Vec<MethodView>,
}

/// DIF registrar `options` of a create request.
#[derive(Clone, Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct RegistrarCreateOptions {
    /// Path below the tenant's DID endpoint binding.
    pub path: Option<String>,
    /// The stem of the KMS key aliases.
    pub name: Option<String>,
    /// Verification methods; one `ES256` key when empty.
    #[oai(default)]
    pub keys: Vec<KeyRequest>,
    /// Witnesses of the log. did:webvh only.
    pub witness: Option<WitnessRequest>,
}

/// The parts of a DID document a registrar request may set.
#[derive(Clone, Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct DocumentTemplate {
    /// Services (replacing all on update).
    pub service: Option<Vec<ServiceDto>>,
}

/// DIF registrar create request (the method is the `method` query parameter). Secrets are
/// refused: keys never leave the KMS.
#[derive(Clone, Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct RegistrarCreate {
    /// A client job id, echoed.
    #[oai(rename = "jobId")]
    pub job_id: Option<String>,
    /// Options.
    #[oai(default)]
    pub options: RegistrarCreateOptions,
    /// Document parts.
    #[oai(rename = "didDocument")]
    pub did_document: Option<DocumentTemplate>,
}

/// DIF registrar `options` of an update request.
#[derive(Clone, Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct RegistrarUpdateOptions {
    /// Verification methods to add.
    #[oai(default, rename = "addKeys")]
    pub add_keys: Vec<KeyRequest>,
    /// Aliases whose verification methods are removed.
    #[oai(default, rename = "removeKeys")]
    pub remove_keys: Vec<String>,
    /// A new witness rule for the log (`{}` turns witnesses off); the old rule's witnesses
    /// approve the entry that changes it. did:webvh only.
    pub witness: Option<WitnessRequest>,
}

/// DIF registrar update request.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RegistrarUpdate {
    /// A client job id, echoed.
    #[oai(rename = "jobId")]
    pub job_id: Option<String>,
    /// The DID.
    pub did: String,
    /// Options.
    #[oai(default)]
    pub options: RegistrarUpdateOptions,
    /// Document parts; `service` replaces the services.
    #[oai(rename = "didDocument")]
    pub did_document: Option<DocumentTemplate>,
}

/// DIF registrar deactivate request.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RegistrarDeactivate {
    /// A client job id, echoed.
    #[oai(rename = "jobId")]
    pub job_id: Option<String>,
    /// The DID.
    pub did: String,
}

/// A witness's approval of a did:webvh log version, as an item of `did-witness.json` holds
/// it.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct WitnessProofRequest {
    /// The approved `versionId` (`<n>-<hash>`) of the DID's log; it approves every earlier
    /// entry too.
    #[oai(rename = "versionId")]
    pub version_id: String,
    /// The witness's Data Integrity proof: `type` `DataIntegrityProof`, `cryptosuite`
    /// `eddsa-jcs-2022` over `{"versionId": "<versionId>"}`, `proofPurpose`
    /// `assertionMethod`, `verificationMethod` `did:key:<multikey>#<multikey>` of a witness.
    pub proof: Value,
}

/// The published witness file of a did:webvh.
#[derive(Clone, Debug, Object)]
pub struct WitnessFileView {
    /// The DID.
    pub did: String,
    /// The `versionId` of the last published log entry (`null` while the first entry awaits
    /// its witnesses).
    #[oai(skip_serializing_if_is_none)]
    pub version_id: Option<String>,
    /// Entries still held back until their witnesses approve them.
    pub pending_version_ids: Vec<String>,
    /// The `did-witness.json` now published: `[{"versionId": ..., "proof": [...]}, ...]`.
    pub witness_file: Value,
}

/// DIF registrar `didState`.
#[derive(Clone, Debug, Object)]
pub struct DidState {
    /// `finished`, or `wait` while a did:webvh entry awaits witness proofs
    /// (`didRegistrationMetadata.pendingVersionId`).
    pub state: String,
    /// The DID.
    pub did: String,
    /// The DID document after the operation (`null` once deactivated).
    #[oai(rename = "didDocument")]
    pub did_document: Value,
}

/// DIF registrar answer.
#[derive(Clone, Debug, Object)]
pub struct RegistrarState {
    /// The client's job id, if it sent one.
    #[oai(rename = "jobId")]
    #[oai(skip_serializing_if_is_none)]
    pub job_id: Option<String>,
    /// The outcome.
    #[oai(rename = "didState")]
    pub did_state: DidState,
    /// Registration metadata: `method`, and for did:webvh `versionId` (the last published
    /// entry), `logUrl` and, while an entry awaits witness proofs, `pendingVersionId`.
    #[oai(rename = "didRegistrationMetadata")]
    pub did_registration_metadata: Value,
    /// Document metadata: `created`, `updated`, `deactivated`.
    #[oai(rename = "didDocumentMetadata")]
    pub did_document_metadata: Value,
}

pub(crate) fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, Some(detail.into()))
}

pub(crate) fn new_method(key: KeyRequest) -> Result<NewMethod, ApiError> {
    let mut method = NewMethod::default();
    if let Some(alias) = key.alias {
        method.alias = Some(
            alias
                .parse::<KeyAlias>()
                .map_err(|_| invalid("`alias` must be `did.<purpose>`"))?,
        );
    }
    if let Some(algorithm) = key.algorithm {
        method.algorithm = match Algorithm::from_name(&algorithm) {
            Some(alg @ (Algorithm::Es256 | Algorithm::Es384 | Algorithm::Es256K)) => alg,
            Some(Algorithm::EdDsa | Algorithm::Ed25519) => Algorithm::EdDsa,
            _ => return Err(invalid("`algorithm` must be ES256, ES384, ES256K or EdDSA")),
        };
    }
    for name in key.relationships {
        let relationship: Relationship = serde_json::from_value(Value::String(name))
            .map_err(|_| invalid("unknown verification relationship"))?;
        if !method.relationships.contains(&relationship) {
            method.relationships.push(relationship);
        }
    }
    Ok(method)
}

/// The witness rule of `dto`: `None` for `{}`.
pub(crate) fn witness_config(dto: &WitnessRequest) -> Result<Option<WitnessConfig>, ApiError> {
    if dto.threshold.is_none() && dto.witnesses.is_empty() {
        return Ok(None);
    }
    let threshold = dto
        .threshold
        .ok_or_else(|| invalid("`witness.threshold` is required with witnesses"))?;
    let witnesses = dto
        .witnesses
        .iter()
        .map(|id| {
            let body = id.strip_prefix("did:key:").unwrap_or(id);
            Multikey::parse(body).map_err(|_| {
                invalid("`witness.witnesses` holds Ed25519 `did:key` DIDs or Multikeys")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    WitnessConfig::new(threshold, witnesses)
        .map(Some)
        .map_err(|err| invalid(err.to_string()))
}

pub(crate) fn service(dto: ServiceDto) -> StoredService {
    StoredService::new(dto.id, dto.service_type, dto.service_endpoint)
}

pub(crate) fn path_segments(path: Option<&str>) -> Vec<String> {
    path.map(|path| {
        path.trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

pub(crate) fn create_request(
    method: String,
    path: Option<&str>,
    name: Option<String>,
    keys: Vec<KeyRequest>,
    services: Vec<ServiceDto>,
    witness: Option<&WitnessRequest>,
) -> Result<CreateDid, ApiError> {
    let mut request = CreateDid::new(method);
    request.witness = witness.map(witness_config).transpose()?.flatten();
    request.path = path_segments(path);
    request.name = name;
    request.methods = keys.into_iter().map(new_method).collect::<Result<_, _>>()?;
    request.services = services.into_iter().map(service).collect();
    Ok(request)
}

fn method_view(alias: &KeyAlias, relationships: &[Relationship]) -> MethodView {
    MethodView {
        alias: alias.to_string(),
        relationships: relationships
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
    }
}

pub(crate) fn methods(stored: &StoredDid) -> Vec<MethodView> {
    stored
        .verification_methods
        .iter()
        .map(|m| method_view(&m.alias, &m.relationships))
        .collect()
}

pub(crate) fn view(stored: &StoredDid) -> IdentifierView {
    let (document_url, log_url) = urls(stored);
    IdentifierView {
        did: stored.did.to_string(),
        method: stored.method.clone(),
        name: stored.name.clone(),
        document_url,
        log_url,
        deactivated: stored.deactivated,
        update_key: stored.update_key.as_ref().map(ToString::to_string),
        log_entries: u64::try_from(stored.log.len()).unwrap_or(u64::MAX),
        version_id: stored.version_id(),
        pending_version_ids: stored.pending_version_ids(),
        verification_methods: methods(stored),
        services: stored
            .services
            .iter()
            .map(|s| ServiceDto {
                id: s.id.clone(),
                service_type: s.service_type.clone(),
                service_endpoint: s.endpoint.clone(),
            })
            .collect(),
        document: stored.document.clone(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

/// The `did.json` and `did.jsonl` URLs of a published DID.
pub(crate) fn urls(stored: &StoredDid) -> (Option<String>, Option<String>) {
    match stored.method.as_str() {
        "web" => (
            DidWeb::document_url(&stored.did)
                .ok()
                .map(|u| u.to_string()),
            None,
        ),
        "webvh" => match WebvhDid::parse(stored.did.as_str()) {
            Ok(did) => (
                Some(did.log_url().replace("/did.jsonl", "/did.json")),
                Some(did.log_url()),
            ),
            Err(_) => (None, None),
        },
        _ => (None, None),
    }
}

pub(crate) fn registrar_state(job_id: Option<String>, stored: &StoredDid) -> RegistrarState {
    let (_, log_url) = urls(stored);
    let mut registration = serde_json::Map::new();
    registration.insert("method".to_owned(), Value::String(stored.method.clone()));
    if let Some(log_url) = log_url {
        registration.insert("logUrl".to_owned(), Value::String(log_url));
    }
    if let Some(version) = stored.version_id() {
        registration.insert("versionId".to_owned(), Value::String(version));
    }
    let pending = stored.pending_version_ids().pop();
    if let Some(version) = &pending {
        registration.insert(
            "pendingVersionId".to_owned(),
            Value::String(version.clone()),
        );
    }
    let time = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
            .unwrap_or(Value::Null)
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("created".to_owned(), time(stored.created_at));
    if stored.updated_at != stored.created_at || stored.revision > 1 {
        metadata.insert("updated".to_owned(), time(stored.updated_at));
    }
    if stored.deactivated {
        metadata.insert("deactivated".to_owned(), Value::Bool(true));
    }
    RegistrarState {
        job_id,
        did_state: DidState {
            state: if pending.is_some() {
                "wait"
            } else {
                "finished"
            }
            .to_owned(),
            did: stored.did.to_string(),
            did_document: if stored.deactivated {
                Value::Null
            } else {
                stored.document.clone()
            },
        },
        did_registration_metadata: Value::Object(registration),
        did_document_metadata: Value::Object(metadata),
    }
}
