//! Which tenant a public request is for: the tenant binding of a service that serves the
//! request's host and path.

use edk_tenancy::{
    EndpointRequest, Resolution, RoutedPath, ServiceType, Tenancy, TenantDirectory as _,
};
use poem::Request;
use poem::http::header;

/// Resolves `req` by its `Host` header (or URI host) and path to the binding of `service` that
/// serves it, under the public scheme `https` (the servers run behind TLS termination). The
/// tenant found is recorded for the request's span and metrics
/// ([`record_tenant`](crate::observe::record_tenant)).
///
/// A metadata document named in `appended` is also served at
/// `<identifier>/.well-known/<name>`, whatever the binding's well-known layout: OpenID
/// Connect Discovery knows only that form, and so do wallets of some earlier drafts.
pub async fn resolve_public(
    tenancy: &Tenancy,
    service: ServiceType,
    req: &Request,
    appended: &[&str],
) -> Option<Resolution> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())?;
    let (host, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || name.starts_with('[') => {
            (name, port.parse::<u16>().ok())
        }
        _ => (host, None),
    };
    let path = req.uri().path();
    let appended_name = appended.iter().find_map(|name| {
        path.strip_suffix(name)
            .and_then(|head| head.strip_suffix("/.well-known/"))
            .map(|prefix| (prefix, *name))
    });
    let resolved = tenancy
        .resolve(service, &EndpointRequest::new("https", host, port, path))
        .await;
    if let Ok(resolution) = &resolved {
        crate::observe::record_tenant(req, resolution.context.id());
    }
    let Some((prefix, name)) = appended_name else {
        return resolved.ok();
    };
    if let Ok(resolution) = &resolved
        && !matches!(&resolution.path, RoutedPath::Service { rest }
            if rest.strip_prefix("/.well-known/") == Some(name))
    {
        return resolved.ok();
    }
    let prefix = if prefix.is_empty() { "/" } else { prefix };
    let resolution = tenancy
        .resolve(service, &EndpointRequest::new("https", host, port, prefix))
        .await
        .ok()?;
    crate::observe::record_tenant(req, resolution.context.id());
    match &resolution.path {
        RoutedPath::Service { rest } if rest.is_empty() || rest == "/" => Some(Resolution {
            context: resolution.context,
            path: RoutedPath::WellKnown {
                name: name.to_owned(),
                rest: String::new(),
            },
        }),
        _ => None,
    }
}
