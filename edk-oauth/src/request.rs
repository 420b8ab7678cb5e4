//! The HTTP-independent shape of a request to a protocol endpoint.

use std::fmt;

use crate::error::Error;

/// Form or query parameters, in order. Names are matched exactly; a repeated name is
/// `invalid_request` when read (RFC 6749 §3.1).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body or query string.
    #[must_use]
    pub fn parse(encoded: &str) -> Self {
        Self(
            url::form_urlencoded::parse(encoded.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Parameters from pairs.
    #[must_use]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    ///
    /// # Errors
    /// `invalid_request` when `name` appears more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut found = None;
        for (key, value) in &self.0 {
            if key == name {
                if found.is_some() {
                    return Err(Error::invalid_request(format!(
                        "parameter `{name}` is repeated"
                    )));
                }
                found = Some(value.as_str());
            }
        }
        Ok(found.filter(|value| !value.is_empty()))
    }

    /// The value of `name`, which must be present.
    ///
    /// # Errors
    /// `invalid_request` when it is missing or repeated.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)?
            .ok_or_else(|| Error::invalid_request(format!("parameter `{name}` is missing")))
    }

    /// Whether `name` is present at all.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// Every pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for Params {
    /// Names only: values may be secrets, codes or tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// A request to a token, PAR, introspection or revocation endpoint, reduced to what the
/// protocol reads. The server crate builds it from the HTTP request.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct EndpointCall {
    /// The HTTP method, upper case.
    pub method: String,
    /// The form body (or the query, for GET endpoints).
    pub params: Params,
    /// The `Authorization` header, if present.
    pub authorization: Option<String>,
    /// Every `DPoP` header value (more than one is refused).
    pub dpop: Vec<String>,
    /// Every `OAuth-Client-Attestation` header value (more than one is refused).
    pub client_attestation: Vec<String>,
    /// Every `OAuth-Client-Attestation-PoP` header value (more than one is refused).
    pub client_attestation_pop: Vec<String>,
}

impl EndpointCall {
    /// A `POST` with `params`.
    #[must_use]
    pub fn post(params: Params) -> Self {
        Self {
            method: "POST".to_owned(),
            params,
            authorization: None,
            dpop: Vec::new(),
            client_attestation: Vec::new(),
            client_attestation_pop: Vec::new(),
        }
    }

    /// The call with an `Authorization` header.
    #[must_use]
    pub fn with_authorization(mut self, value: impl Into<String>) -> Self {
        self.authorization = Some(value.into());
        self
    }

    /// The call with a `DPoP` header.
    #[must_use]
    pub fn with_dpop(mut self, value: impl Into<String>) -> Self {
        self.dpop.push(value.into());
        self
    }

    /// The call with `OAuth-Client-Attestation` and `OAuth-Client-Attestation-PoP` headers.
    #[must_use]
    pub fn with_client_attestation(
        mut self,
        attestation: impl Into<String>,
        pop: impl Into<String>,
    ) -> Self {
        self.client_attestation.push(attestation.into());
        self.client_attestation_pop.push(pop.into());
        self
    }
}

impl fmt::Debug for EndpointCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointCall")
            .field("method", &self.method)
            .field("params", &self.params)
            .field("authorization", &self.authorization.as_ref().map(|_| ".."))
            .field("dpop", &self.dpop.len())
            .field("client_attestation", &self.client_attestation.len())
            .field("client_attestation_pop", &self.client_attestation_pop.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let params = Params::parse("a=1&a=2&b=");
        assert!(params.get("a").is_err());
        assert_eq!(params.get("b").unwrap(), None);
        assert!(params.require("c").is_err());
    }
}
