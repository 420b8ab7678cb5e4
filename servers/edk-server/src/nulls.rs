//! JSON request bodies held to the OpenAPI document where poem-openapi is lenient: it reads
//! `null` for an optional member as if the member were absent, and a boolean or number where
//! the document says string as its text, while the generated document declares neither. A
//! client following the document never sends those; one that does gets a 400 naming the
//! member instead of having its value silently reinterpreted.

use poem::http::Method;
use poem::{Request, Response};
use serde_json::{Map, Value};

use crate::problem::{Problem, ProblemType};

/// The JSON request body schema of each operation of an OpenAPI document.
#[derive(Debug, Default)]
pub(crate) struct BodySchemas {
    operations: Vec<(Vec<String>, Method, Value)>,
    components: Map<String, Value>,
}

impl BodySchemas {
    pub(crate) fn from_spec(spec: &str) -> Self {
        let document: Value = serde_json::from_str(spec).unwrap_or_default();
        let components = document
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut operations = Vec::new();
        if let Some(paths) = document.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                for (method, operation) in item {
                    let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    else {
                        continue;
                    };
                    let json_schema = operation
                        .pointer("/requestBody/content")
                        .and_then(Value::as_object)
                        .and_then(|content| {
                            content
                                .iter()
                                .find(|(media, _)| media.starts_with("application/json"))
                                .and_then(|(_, media)| media.get("schema"))
                        });
                    if let Some(schema) = json_schema {
                        operations.push((
                            template.split('/').map(str::to_owned).collect(),
                            method,
                            schema.clone(),
                        ));
                    }
                }
            }
        }
        Self {
            operations,
            components,
        }
    }

    fn schema_for(&self, path: &str, method: &Method) -> Option<&Value> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|(template, want, _)| {
                want == method
                    && template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(want, got)| {
                        (want.starts_with('{') && want.ends_with('}') && !got.is_empty())
                            || want == got
                    })
            })
            .max_by_key(|(template, _, _)| template.iter().filter(|s| !s.starts_with('{')).count())
            .map(|(_, _, schema)| schema)
    }

    /// A 400 problem when the JSON body of `req` carries `null` for a member its schema does
    /// not declare nullable; the body is put back for the operation otherwise.
    pub(crate) async fn refuse_null_members(
        &self,
        req: &mut Request,
    ) -> poem::Result<Option<Response>> {
        let Some(schema) = self.schema_for(req.uri().path(), req.method()) else {
            return Ok(None);
        };
        let body = req.take_body().into_bytes().await?;
        let refusal = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|value| self.null_member(&value, schema, "", 0));
        req.set_body(body);
        Ok(refusal
            .map(|detail| Problem::new(ProblemType::InvalidRequest, Some(detail)).into_response()))
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        for _ in 0..8 {
            // poem-openapi writes a described reference as `allOf: [{$ref}, {description}]`.
            let reference = schema
                .get("$ref")
                .and_then(Value::as_str)
                .or_else(|| described_reference(schema));
            match reference
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| self.components.get(name))
            {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn nullable(&self, schema: &Value) -> bool {
        let schema = self.resolve(schema);
        schema.get("nullable") == Some(&Value::Bool(true))
            || schema
                .get("type")
                .and_then(Value::as_array)
                .is_some_and(|types| types.iter().any(|t| t == "null"))
            // A schema without a type or members (a free-form value) takes anything.
            || ["type", "properties", "items", "oneOf", "anyOf", "allOf", "enum", "$ref"]
                .iter()
                .all(|key| schema.get(key).is_none())
    }

    /// The schema `value` is checked against: through a discriminator's mapping when the
    /// schema is a tagged union, else the schema itself (resolved).
    fn select<'a>(&'a self, value: &Value, schema: &'a Value) -> Option<&'a Value> {
        let schema = self.resolve(schema);
        let alternatives = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array);
        let Some(alternatives) = alternatives else {
            return Some(schema);
        };
        let discriminator = schema.get("discriminator")?;
        let tag = value
            .get(discriminator.get("propertyName")?.as_str()?)?
            .as_str()?;
        let target = discriminator.get("mapping")?.get(tag)?.as_str()?;
        alternatives
            .iter()
            .find(|alternative| alternative.get("$ref").and_then(Value::as_str) == Some(target))
            .map(|alternative| self.resolve(alternative))
            .or_else(|| {
                target
                    .strip_prefix("#/components/schemas/")
                    .and_then(|name| self.components.get(name))
            })
    }

    /// What is wrong with the first member (named as a dotted path) whose value is `null`
    /// where its schema does not allow it, or whose JSON type is not its schema's.
    fn null_member(&self, value: &Value, schema: &Value, at: &str, depth: usize) -> Option<String> {
        if depth > 32 {
            return None;
        }
        let schema = self.select(value, schema)?;
        if !at.is_empty() {
            let expected = schema.get("type").and_then(Value::as_str);
            let fits = match expected {
                Some("string") => value.is_string(),
                Some("integer") => value.is_i64() || value.is_u64(),
                Some("number") => value.is_number(),
                Some("boolean") => value.is_boolean(),
                Some("array") => value.is_array(),
                Some("object") => value.is_object(),
                _ => true,
            };
            if !fits {
                return Some(format!(
                    "`{at}` must be {}",
                    article(expected.unwrap_or_default())
                ));
            }
        }
        match value {
            Value::Object(members) => {
                let properties = schema.get("properties").and_then(Value::as_object)?;
                for (name, member) in members {
                    let Some(property) = properties.get(name) else {
                        continue;
                    };
                    let here = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    if member.is_null() {
                        if !self.nullable(property) {
                            return Some(format!(
                                "`{here}` must not be null: leave it out instead"
                            ));
                        }
                    } else if let Some(found) = self.null_member(member, property, &here, depth + 1)
                    {
                        return Some(found);
                    }
                }
                None
            }
            Value::Array(items) => {
                let item_schema = schema.get("items")?;
                items.iter().enumerate().find_map(|(i, item)| {
                    let here = format!("{at}[{i}]");
                    if item.is_null() {
                        (!self.nullable(item_schema)).then(|| format!("`{here}` must not be null"))
                    } else {
                        self.null_member(item, item_schema, &here, depth + 1)
                    }
                })
            }
            _ => None,
        }
    }
}

fn article(kind: &str) -> String {
    match kind {
        "integer" | "array" | "object" => format!("an {kind}"),
        other => format!("a {other}"),
    }
}

/// The reference of `allOf: [{$ref}, {annotations…}]`: one `$ref`, the rest only descriptions.
fn described_reference(schema: &Value) -> Option<&str> {
    let parts = schema.get("allOf").and_then(Value::as_array)?;
    let mut references = parts.iter().filter_map(|part| part.get("$ref"));
    let reference = references.next()?;
    let only_annotations = parts.iter().all(|part| {
        part.get("$ref").is_some()
            || part.as_object().is_some_and(|part| {
                part.keys()
                    .all(|key| matches!(key.as_str(), "description" | "title" | "default"))
            })
    });
    if references.next().is_none() && only_annotations {
        reference.as_str()
    } else {
        None
    }
}
