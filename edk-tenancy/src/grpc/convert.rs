//! Conversions between the registry model and the `edk.tenancy.v1` messages, and between
//! errors and [`tonic::Status`]. Every field read from the wire is parsed into a domain type;
//! a malformed one is an error naming it, never a panic.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use edk_core::{ErrorChain, ErrorKind, HasKind, TenantId};
use tonic::{Code, Status};

use super::proto;
use crate::config::TenantConfig;
use crate::endpoint::{EndpointBinding, EndpointScheme, ServiceType, WellKnownLayout};
use crate::error::Error;
use crate::tenant::{Tenant, TenantStatus};

/// The status of a server-side error: client kinds carry the error's text, `Unavailable` and
/// `Internal` a generic message, with the whole chain logged here.
pub(crate) fn status_for(err: &Error) -> Status {
    let kind = err.kind();
    let code = match kind {
        ErrorKind::InvalidInput => Code::InvalidArgument,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::Forbidden => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => Code::AlreadyExists,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Unavailable => Code::Unavailable,
        _ => Code::Internal,
    };
    if kind.is_client_error() {
        return Status::new(code, err.to_string());
    }
    tracing::error!(error = %ErrorChain(err), kind = %kind, "tenant directory call failed");
    Status::new(code, kind.to_string())
}

/// The client-side error of a failed call.
pub(crate) fn error_from_status(status: &Status) -> Error {
    let kind = match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            ErrorKind::Unavailable
        }
        Code::NotFound => return Error::TenantNotFound,
        _ => ErrorKind::Internal,
    };
    Error::RemoteDirectory {
        kind,
        reason: format!("{:?}: {}", status.code(), status.message()),
    }
}

pub(crate) fn bad_response(what: &str) -> Error {
    Error::RemoteDirectory {
        kind: ErrorKind::Internal,
        reason: format!("the directory sent a malformed {what}"),
    }
}

pub(crate) fn binding_to_proto(binding: &EndpointBinding) -> proto::Binding {
    proto::Binding {
        tenant_id: binding.tenant().to_string(),
        service: binding.service().as_str().to_owned(),
        scheme: binding.scheme().as_str().to_owned(),
        host: binding.host().to_owned(),
        port: binding.port().map(u32::from),
        path_prefix: binding.path_prefix(),
        well_known: binding.well_known().as_str().to_owned(),
    }
}

pub(crate) fn binding_from_proto(binding: &proto::Binding) -> Result<EndpointBinding, Error> {
    let tenant: TenantId = binding
        .tenant_id
        .parse()
        .map_err(|_| bad_response("binding tenant id"))?;
    let service: ServiceType = binding
        .service
        .parse()
        .map_err(|_| bad_response("binding service"))?;
    let scheme: EndpointScheme = binding
        .scheme
        .parse()
        .map_err(|_| bad_response("binding scheme"))?;
    let well_known: WellKnownLayout = binding
        .well_known
        .parse()
        .map_err(|_| bad_response("binding well-known layout"))?;
    let port = binding
        .port
        .map(u16::try_from)
        .transpose()
        .map_err(|_| bad_response("binding port"))?;
    EndpointBinding::with_scheme(
        tenant,
        service,
        scheme,
        &binding.host,
        port,
        &binding.path_prefix,
        well_known,
    )
    .map_err(|_| bad_response("binding"))
}

pub(crate) fn tenant_to_proto(tenant: &Tenant) -> proto::Tenant {
    proto::Tenant {
        id: tenant.id.to_string(),
        slug: tenant.slug.to_string(),
        display_name: tenant.display_name.clone(),
        status: tenant.status.as_str().to_owned(),
        created_at: tenant.created_at.to_rfc3339(),
        updated_at: tenant.updated_at.to_rfc3339(),
        deleted_at: tenant.deleted_at.map(|at| at.to_rfc3339()),
    }
}

fn time(value: &str, what: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| bad_response(what))
}

pub(crate) fn tenant_from_proto(tenant: &proto::Tenant) -> Result<Tenant, Error> {
    Ok(Tenant {
        id: tenant.id.parse().map_err(|_| bad_response("tenant id"))?,
        slug: tenant
            .slug
            .parse()
            .map_err(|_| bad_response("tenant slug"))?,
        display_name: tenant.display_name.clone(),
        status: tenant
            .status
            .parse::<TenantStatus>()
            .map_err(|_| bad_response("tenant status"))?,
        created_at: time(&tenant.created_at, "tenant creation time")?,
        updated_at: time(&tenant.updated_at, "tenant update time")?,
        deleted_at: tenant
            .deleted_at
            .as_deref()
            .map(|at| time(at, "tenant deletion time"))
            .transpose()?,
    })
}

pub(crate) fn config_to_proto(config: &TenantConfig) -> Result<BTreeMap<String, String>, Error> {
    config
        .values()
        .iter()
        .map(|(key, value)| {
            serde_json::to_string(value)
                .map(|json| (key.clone(), json))
                .map_err(|_| Error::RemoteDirectory {
                    kind: ErrorKind::Internal,
                    reason: format!("cannot encode the configuration value of `{key}`"),
                })
        })
        .collect()
}

pub(crate) fn config_from_proto<'a>(
    config: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<TenantConfig, Error> {
    let values = config
        .into_iter()
        .map(|(key, json)| {
            serde_json::from_str(json)
                .map(|value| (key.clone(), value))
                .map_err(|_| bad_response("configuration value"))
        })
        .collect::<Result<_, _>>()?;
    Ok(TenantConfig::from_values(values))
}
