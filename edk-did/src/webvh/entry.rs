//! Log entries and the `did.jsonl` file (did:webvh §"The DID Log File").

use serde_json::{Map, Value};

use super::error::WebvhError;

/// The members a log entry has, in the order they are written.
const MEMBERS: [&str; 5] = ["versionId", "versionTime", "parameters", "state", "proof"];

/// One line of `did.jsonl`, kept as the JSON it was read from so that hashes are computed over
/// exactly what was published.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    value: Value,
}

impl LogEntry {
    /// Checks the shape of an entry: an object with `versionId` and `versionTime` strings,
    /// `parameters` and `state` objects, `proof` an object or array of objects, and nothing
    /// else. `line` (1-based) is used in errors.
    ///
    /// # Errors
    /// [`WebvhError::MalformedEntry`] describing the first problem.
    pub fn from_value(line: usize, value: Value) -> Result<Self, WebvhError> {
        let malformed = |reason: &str| WebvhError::MalformedEntry {
            line,
            reason: reason.to_owned(),
        };
        let object = value.as_object().ok_or(malformed("not a JSON object"))?;
        if let Some(name) = object.keys().find(|name| !MEMBERS.contains(&name.as_str())) {
            return Err(malformed(&format!("unknown member `{name}`")));
        }
        for name in ["versionId", "versionTime"] {
            if !object.get(name).is_some_and(Value::is_string) {
                return Err(malformed(&format!("`{name}` must be a string")));
            }
        }
        for name in ["parameters", "state"] {
            if !object.get(name).is_some_and(Value::is_object) {
                return Err(malformed(&format!("`{name}` must be an object")));
            }
        }
        match object.get("proof") {
            None | Some(Value::Object(_)) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => {}
            Some(_) => return Err(malformed("`proof` must be an object or array of objects")),
        }
        Ok(Self { value })
    }

    /// The `versionId`.
    #[must_use]
    pub fn version_id(&self) -> &str {
        self.value
            .get("versionId")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The `versionTime` as written.
    #[must_use]
    pub fn version_time(&self) -> &str {
        self.value
            .get("versionTime")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The `parameters` object.
    #[must_use]
    pub fn parameters(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.value
            .get("parameters")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY)
    }

    /// The DID document of this version.
    #[must_use]
    pub fn state(&self) -> &Value {
        self.value.get("state").unwrap_or(&Value::Null)
    }

    /// The Data Integrity proofs (an object is read as a one-element list).
    #[must_use]
    pub fn proofs(&self) -> Vec<&Value> {
        match self.value.get("proof") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(proof @ Value::Object(_)) => vec![proof],
            _ => Vec::new(),
        }
    }

    /// The entry as JSON.
    #[must_use]
    pub const fn as_value(&self) -> &Value {
        &self.value
    }

    /// The entry without its `proof`: what proofs and hashes cover.
    #[must_use]
    pub fn without_proof(&self) -> Value {
        let mut value = self.value.clone();
        if let Some(object) = value.as_object_mut() {
            object.remove("proof");
        }
        value
    }

    /// The entry as one minified JSON line (without the newline).
    #[must_use]
    pub fn to_line(&self) -> String {
        self.value.to_string()
    }
}

/// A did:webvh log: the entries of `did.jsonl`, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DidLog {
    entries: Vec<LogEntry>,
}

impl DidLog {
    /// Parses `did.jsonl` (JSON Lines; blank lines are ignored).
    ///
    /// # Errors
    /// [`WebvhError::MalformedEntry`] for a line that is not a log entry,
    /// [`WebvhError::EmptyLog`] when there is none.
    pub fn parse(jsonl: &str) -> Result<Self, WebvhError> {
        let mut entries = Vec::new();
        for (index, line) in jsonl.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(line).map_err(|err| WebvhError::MalformedEntry {
                    line: index + 1,
                    reason: format!("not JSON ({err})"),
                })?;
            entries.push(LogEntry::from_value(index + 1, value)?);
        }
        if entries.is_empty() {
            return Err(WebvhError::EmptyLog);
        }
        Ok(Self { entries })
    }

    /// A log of `entries`.
    #[must_use]
    pub const fn from_entries(entries: Vec<LogEntry>) -> Self {
        Self { entries }
    }

    /// The entries, oldest first.
    #[must_use]
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    /// Appends an entry (the caller has built it with [`update`](super::update)).
    pub fn push(&mut self, entry: LogEntry) {
        self.entries.push(entry);
    }

    /// The log as `did.jsonl` text: one minified entry per line, each ending in `\n`.
    #[must_use]
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            out.push_str(&entry.to_line());
            out.push('\n');
        }
        out
    }
}
