//! Operations read from a committed OpenAPI 3 document, so that tests can be generated from
//! the reviewed contract: every operation, its path and query parameters, the scope its
//! description requires, and a minimal request body that satisfies the body's schema.
//!
//! ```
//! let doc = serde_json::json!({
//!     "paths": { "/api/kms/v1/keys/{alias}": { "delete": {
//!         "summary": "Destroys a key. Scope `kms:write`.",
//!         "security": [{ "AdminBearer": [] }],
//!         "parameters": [{ "name": "alias", "in": "path", "required": true,
//!                          "schema": { "type": "string" } }],
//!     } } },
//! });
//! let ops = edk_testkit::openapi::operations(&doc);
//! assert_eq!(ops[0].scopes, ["kms:write"]);
//! assert_eq!(ops[0].path_with(|_| "a.b".to_owned()), "/api/kms/v1/keys/a.b");
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The HTTP methods an OpenAPI path item can hold operations for.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of the document.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The method in upper case, e.g. `POST`.
    pub method: String,
    /// The path template, e.g. `/api/kms/v1/keys/{alias}`.
    pub path: String,
    /// The `operationId`, when there is one.
    pub operation_id: Option<String>,
    /// Whether the operation carries a non-empty `security` requirement.
    pub secured: bool,
    /// The scopes its summary or description requires: every `` scope `x` `` phrase, in
    /// order, without duplicates.
    pub scopes: Vec<String>,
    /// The names of its path parameters.
    pub path_parameters: Vec<String>,
    /// Its required query parameters, each with a value satisfying its schema.
    pub query: Vec<(String, Value)>,
    /// The request body's media type and a minimal value satisfying its schema.
    pub body: Option<(String, Value)>,
}

impl Operation {
    /// The path with each `{name}` replaced by `value(name)` (inserted as given: callers pass
    /// percent-encoded values where needed).
    pub fn path_with(&self, mut value: impl FnMut(&str) -> String) -> String {
        let mut path = self.path.clone();
        for name in &self.path_parameters {
            path = path.replace(&format!("{{{name}}}"), &value(name));
        }
        path
    }

    /// `METHOD path`, for assertion messages.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The problem `type` of a missing scope.
pub const FORBIDDEN: &str = "https://edk.dev/problems/forbidden";
/// The problem `type` of a missing or invalid token.
pub const UNAUTHENTICATED: &str = "https://edk.dev/problems/unauthenticated";

/// Sends each secured operation of `ops` to the server at `base` twice, filling path
/// parameters with `path_value` and the body with its minimal example: once with
/// `token_without[scope]`, a token lacking the one scope the operation documents, expecting
/// `403` `application/problem+json` of type [`FORBIDDEN`] whose detail names the scope; once
/// without a token, expecting `401` of type [`UNAUTHENTICATED`]. Returns one line per
/// operation that answered otherwise (or documents other than exactly one scope), and the
/// number of operations checked.
pub async fn scope_failures(
    client: &reqwest::Client,
    base: &str,
    ops: &[Operation],
    path_value: impl Fn(&str) -> String,
    token_without: &BTreeMap<String, String>,
) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for op in ops.iter().filter(|op| op.secured) {
        checked += 1;
        let [scope] = op.scopes.as_slice() else {
            failures.push(format!("{}: documents scopes {:?}", op.label(), op.scopes));
            continue;
        };
        let Some(token) = token_without.get(scope) else {
            failures.push(format!("{}: no token without {scope}", op.label()));
            continue;
        };
        let send = |token: Option<&str>| {
            let method = reqwest::Method::from_bytes(op.method.as_bytes()).unwrap();
            let url = format!("{base}{}", op.path_with(&path_value));
            let mut request = client.request(method, url).query(&op.query);
            if let Some((media, body)) = &op.body {
                request = request.header("content-type", media).body(body.to_string());
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let (status, media, body) = read(send(Some(token)).await.unwrap()).await;
        let detail = format!("the token lacks the scope `{scope}`");
        if status != 403
            || media != "application/problem+json"
            || body["type"] != FORBIDDEN
            || body["detail"] != detail.as_str()
        {
            failures.push(format!(
                "{} without {scope}: {status} {media} {body}",
                op.label()
            ));
        }
        let (status, media, body) = read(send(None).await.unwrap()).await;
        if status != 401 || media != "application/problem+json" || body["type"] != UNAUTHENTICATED {
            failures.push(format!(
                "{} without a token: {status} {media} {body}",
                op.label()
            ));
        }
    }
    (failures, checked)
}

async fn read(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, media, body)
}

/// Every operation of `doc`, in the document's path order.
#[must_use]
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let parameters = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let of = |location: &str| {
                parameters
                    .iter()
                    .filter(move |p| p.get("in").and_then(Value::as_str) == Some(location))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let path_parameters = of("path")
                .iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect();
            let query = of("query")
                .iter()
                .filter(|p| p.get("required").and_then(Value::as_bool) == Some(true))
                .filter_map(|p| {
                    let name = p.get("name").and_then(Value::as_str)?.to_owned();
                    let schema = p.get("schema").cloned().unwrap_or(Value::Null);
                    Some((name, example(doc, &schema)))
                })
                .collect();
            let body = op
                .get("requestBody")
                .and_then(|b| b.get("content"))
                .and_then(Value::as_object)
                .and_then(|content| content.iter().next())
                .map(|(media, spec)| {
                    let schema = spec.get("schema").cloned().unwrap_or(Value::Null);
                    (media.clone(), example(doc, &schema))
                });
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let text = ["summary", "description"]
                .iter()
                .filter_map(|key| op.get(*key).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            out.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                operation_id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                secured,
                scopes: scopes_in(&text),
                path_parameters,
                query,
                body,
            });
        }
    }
    out
}

/// The scopes named in `text` as `` scope `x` `` (any case, any whitespace between).
#[must_use]
pub fn scopes_in(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut scopes: Vec<String> = Vec::new();
    let mut rest = lower.as_str();
    let mut offset = 0;
    while let Some(at) = rest.find("scope") {
        let after = &rest[at + "scope".len()..];
        let trimmed = after.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('`')
            && let Some(end) = quoted.find('`')
        {
            // Taken from the original text: scopes are case-sensitive.
            let start = offset + at + "scope".len() + (after.len() - trimmed.len()) + 1;
            let scope = text[start..start + end].to_owned();
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let step = at + "scope".len();
        offset += step;
        rest = &rest[step..];
    }
    scopes
}

/// A minimal value satisfying `schema`: `$ref`s followed, `allOf` merged, the first of
/// `oneOf`/`anyOf`/`enum`, an object's required properties only, an array's minimum items.
#[must_use]
pub fn example(doc: &Value, schema: &Value) -> Value {
    example_at(doc, schema, 0)
}

fn example_at(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return example_at(doc, &resolve(doc, reference), depth + 1);
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        let mut scalar = None;
        for part in parts {
            match example_at(doc, part, depth + 1) {
                Value::Object(fields) => merged.extend(fields),
                // A part with no type (a description alone) constrains nothing.
                Value::Null => {}
                other => scalar = scalar.or(Some(other)),
            }
        }
        return scalar.unwrap_or(Value::Object(merged));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|v| v.first())
        {
            return example_at(doc, first, depth + 1);
        }
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
    {
        return first.clone();
    }
    if let Some(value) = schema.get("default") {
        return value.clone();
    }
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or(
        if schema.get("properties").is_some() {
            "object"
        } else {
            ""
        },
    );
    match kind {
        "object" => {
            let mut fields = Map::new();
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for name in required.iter().filter_map(Value::as_str) {
                let property = schema
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .cloned()
                    .unwrap_or(Value::Null);
                fields.insert(name.to_owned(), example_at(doc, &property, depth + 1));
            }
            Value::Object(fields)
        }
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            let count = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            (0..count)
                .map(|_| example_at(doc, &items, depth + 1))
                .collect()
        }
        "integer" => json!(
            schema
                .get("minimum")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(1)
        ),
        "number" => json!(
            schema
                .get("minimum")
                .and_then(Value::as_f64)
                .unwrap_or(1.0)
                .max(1.0)
        ),
        "boolean" => Value::Bool(false),
        "string" => string_example(schema),
        _ => Value::Null,
    }
}

fn string_example(schema: &Value) -> Value {
    let value = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2030-01-01T00:00:00Z",
        Some("date") => "2030-01-01",
        Some("uri" | "url") => "https://example.test/x",
        Some("uuid") => "0190c7a4-8e2b-7cde-9f00-0123456789ab",
        Some("byte") => "AAAA",
        Some("email") => "ops@example.test",
        _ => "x",
    };
    let min = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut value = value.to_owned();
    while value.len() < min {
        value.push('x');
    }
    Value::String(value)
}

/// Follows a local `#/...` JSON pointer; `Null` when it does not resolve.
fn resolve(doc: &Value, reference: &str) -> Value {
    reference
        .strip_prefix('#')
        .and_then(|pointer| doc.pointer(pointer))
        .cloned()
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_from_requires_scope_phrases() {
        assert_eq!(
            scopes_in("Lists. Requires scope\n`oauth2:read`. Scope `x:y`, scope `x:y`."),
            ["oauth2:read", "x:y"]
        );
        assert!(scopes_in("No scopes here; scopes are elsewhere.").is_empty());
    }

    #[test]
    fn examples_follow_references_and_keep_required_fields() {
        let doc = json!({ "components": { "schemas": {
            "Alg": { "type": "string", "enum": ["ES256", "EdDSA"] },
            "Req": {
                "type": "object",
                "required": ["alg", "n", "tags", "at"],
                "properties": {
                    "alg": { "$ref": "#/components/schemas/Alg" },
                    "n": { "type": "integer", "minimum": 3 },
                    "tags": { "type": "array", "minItems": 1, "items": { "type": "string" } },
                    "at": { "type": "string", "format": "date-time" },
                    "optional": { "type": "string" },
                },
            },
        } } });
        let schema = json!({ "allOf": [{ "$ref": "#/components/schemas/Req" }] });
        let described = json!({ "allOf": [
            { "$ref": "#/components/schemas/Alg" },
            { "description": "documentation only" },
        ] });
        assert_eq!(example(&doc, &described), json!("ES256"));
        assert_eq!(
            example(&doc, &schema),
            json!({ "alg": "ES256", "n": 3, "tags": ["x"], "at": "2030-01-01T00:00:00Z" })
        );
    }
}
