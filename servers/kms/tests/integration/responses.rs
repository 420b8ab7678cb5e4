//! Responses match the served OpenAPI document: every documented property has its declared
//! type, required properties are present, and an optional property without a value is
//! absent rather than `null` (the document declares no nullable field).

use serde_json::{Value, json};

use crate::support::{Backend, Harness, expect_json};

/// Where `value` breaks `schema` (an OpenAPI 3.0 schema whose `$ref`s point into `doc`).
fn violations(doc: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        return violations(doc, &doc["components"]["schemas"][name], value, path, out);
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        violations(doc, part, value, path, out);
    }
    if value.is_null() {
        if schema.get("type").is_some() && schema.get("nullable") != Some(&Value::Bool(true)) {
            out.push(format!("{path} is null, documented as {}", schema["type"]));
        }
        return;
    }
    let fits = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        Some(other) => panic!("unexpected schema type {other}"),
    };
    if !fits {
        out.push(format!(
            "{path} is {value}, documented as {}",
            schema["type"]
        ));
        return;
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (index, item) in values.iter().enumerate() {
            violations(doc, items, item, &format!("{path}[{index}]"), out);
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                out.push(format!("{path}.{name} is required and missing"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, item) in object {
                if let Some(property) = properties.get(name) {
                    violations(doc, property, item, &format!("{path}.{name}"), out);
                }
            }
        }
    }
}

/// Checks `body`, the 200 or 201 JSON answer of `method path` (`path` as documented).
fn assert_matches(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let content = &doc["paths"][path][method]["responses"][status.to_string()]["content"];
    let schema = content
        .as_object()
        .and_then(|types| types.values().next())
        .map(|media| &media["schema"])
        .unwrap_or_else(|| panic!("{method} {path} documents no {status} body"));
    let mut out = Vec::new();
    violations(doc, schema, body, "$", &mut out);
    assert!(out.is_empty(), "{method} {path}: {out:#?}\n{body:#}");
}

#[tokio::test]
async fn key_responses_carry_no_null_for_documented_types() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let doc: Value = h
        .client
        .get(h.server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A generated key without a rotation period, and a registered external key (no
    // provider), so that every optional field of a key is missing somewhere.
    let created = expect_json(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        201,
    )
    .await;
    assert_matches(&doc, "post", "/api/kms/v1/keys", 201, &created);
    let external = edk_core::jose::SigningKey::generate(edk_core::jose::Algorithm::Es256)
        .unwrap()
        .public_jwk();
    expect_json(
        h.post(
            "/keys/register",
            &token,
            &json!({ "alias": "verifier.partner", "public_jwk": external }),
        )
        .await,
        201,
    )
    .await;

    let rotated = expect_json(
        h.post("/keys/issuer.credential-signing/rotate", &token, &json!({}))
            .await,
        200,
    )
    .await;
    assert_matches(
        &doc,
        "post",
        "/api/kms/v1/keys/{alias}/rotate",
        200,
        &rotated,
    );
    assert!(
        rotated["rotation"].get("period_secs").is_none(),
        "{rotated}"
    );
    let active = &rotated["versions"][0];
    assert!(active.get("retired_at").is_none(), "{active}");
    assert!(active.get("destroyed_at").is_none(), "{active}");

    let listed = expect_json(h.get("/keys", &token).await, 200).await;
    assert_matches(&doc, "get", "/api/kms/v1/keys", 200, &listed);
    let partner = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["alias"] == "verifier.partner")
        .unwrap();
    assert!(partner.get("provider").is_none(), "{partner}");

    let history = expect_json(
        h.get("/keys/issuer.credential-signing/rotations", &token)
            .await,
        200,
    )
    .await;
    assert_matches(
        &doc,
        "get",
        "/api/kms/v1/keys/{alias}/rotations",
        200,
        &history,
    );
    h.stop().await;
}
