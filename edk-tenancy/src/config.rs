//! Typed tenant configuration properties.
//!
//! Crates declare their keys as constants of [`ConfigKey<T>`] with a default and a rule, and
//! register them in a [`ConfigSchema`] once at start-up. Values are stored as JSON in
//! `platform_config_property` (deployment-wide defaults) and `tenant_config_property`
//! (per tenant), each with a version that increases on every write. A tenant's effective
//! configuration ([`TenantConfig`]) is the key's default, overlaid by the platform value,
//! overlaid by the tenant value.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ConfigError;

/// A typed configuration key.
///
/// ```
/// use edk_tenancy::config::ConfigKey;
///
/// const OFFER_TTL_SECONDS: ConfigKey<u32> = ConfigKey::new(
///     "issuer.offer_ttl_seconds",
///     || 300,
///     |v| if (30..=86_400).contains(v) { Ok(()) } else { Err("must be 30..=86400") },
/// );
/// assert_eq!(OFFER_TTL_SECONDS.name(), "issuer.offer_ttl_seconds");
/// ```
pub struct ConfigKey<T> {
    name: &'static str,
    default: fn() -> T,
    check: fn(&T) -> Result<(), &'static str>,
    _type: PhantomData<fn() -> T>,
}

impl<T> ConfigKey<T> {
    /// A key named `name` (`[a-z][a-z0-9_.-]*`), its default and the rule its values follow.
    #[must_use]
    pub const fn new(
        name: &'static str,
        default: fn() -> T,
        check: fn(&T) -> Result<(), &'static str>,
    ) -> Self {
        Self {
            name,
            default,
            check,
            _type: PhantomData,
        }
    }

    /// The key's name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The key's default value.
    #[must_use]
    pub fn default_value(&self) -> T {
        (self.default)()
    }
}

impl<T> fmt::Debug for ConfigKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigKey")
            .field("name", &self.name)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> ConfigKey<T> {
    /// Checks a JSON value against the key's type and rule.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] when it does not deserialize as `T` or breaks the rule.
    pub fn validate(&self, value: &Value) -> Result<(), ConfigError> {
        let typed: T =
            serde_json::from_value(value.clone()).map_err(|err| ConfigError::InvalidValue {
                key: self.name.to_owned(),
                reason: err.to_string(),
            })?;
        (self.check)(&typed).map_err(|reason| ConfigError::InvalidValue {
            key: self.name.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

type Validator = Arc<dyn Fn(&Value) -> Result<(), ConfigError> + Send + Sync>;

struct KeySpec {
    default: Value,
    validate: Validator,
}

/// The set of configuration keys a deployment knows, checked once when built.
#[derive(Clone, Default)]
pub struct ConfigSchema {
    keys: Arc<HashMap<&'static str, KeySpec>>,
}

impl fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.keys.keys().collect();
        names.sort_unstable();
        f.debug_struct("ConfigSchema")
            .field("keys", &names)
            .finish()
    }
}

impl ConfigSchema {
    /// A builder with no keys.
    #[must_use]
    pub fn builder() -> ConfigSchemaBuilder {
        ConfigSchemaBuilder::default()
    }

    /// Checks `value` for the key named `key`.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`].
    pub fn validate(&self, key: &str, value: &Value) -> Result<(), ConfigError> {
        let spec = self.keys.get(key).ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_owned(),
        })?;
        (spec.validate)(value)
    }

    /// Whether a key with this name is registered.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    pub(crate) fn defaults(&self) -> BTreeMap<String, Value> {
        self.keys
            .iter()
            .map(|(name, spec)| ((*name).to_owned(), spec.default.clone()))
            .collect()
    }
}

/// Builds a [`ConfigSchema`].
#[derive(Default)]
pub struct ConfigSchemaBuilder {
    keys: HashMap<&'static str, KeySpec>,
    error: Option<ConfigError>,
}

impl fmt::Debug for ConfigSchemaBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSchemaBuilder")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl ConfigSchemaBuilder {
    /// Registers `key`.
    #[must_use]
    pub fn key<T>(mut self, key: &'static ConfigKey<T>) -> Self
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        if self.error.is_some() {
            return self;
        }
        if !valid_key_name(key.name) {
            self.error = Some(ConfigError::MalformedKey { key: key.name });
            return self;
        }
        let default = match serde_json::to_value(key.default_value()) {
            Ok(value) => value,
            Err(err) => {
                self.error = Some(ConfigError::InvalidValue {
                    key: key.name.to_owned(),
                    reason: err.to_string(),
                });
                return self;
            }
        };
        let spec = KeySpec {
            default,
            validate: Arc::new(move |value| key.validate(value)),
        };
        if self.keys.insert(key.name, spec).is_some() {
            self.error = Some(ConfigError::DuplicateKey { key: key.name });
        }
        self
    }

    /// The schema.
    ///
    /// # Errors
    /// The first [`ConfigError`] met while registering keys (duplicate or malformed names).
    pub fn build(self) -> Result<ConfigSchema, ConfigError> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(ConfigSchema {
                keys: Arc::new(self.keys),
            }),
        }
    }
}

/// A stored configuration value. Its `Debug` shows the key and version, never the value
/// (values may be credentials).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProperty {
    /// The key.
    pub key: String,
    /// The JSON value.
    pub value: Value,
    /// Starts at 1 and increases with every write.
    pub version: i64,
}

impl fmt::Debug for ConfigProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigProperty")
            .field("key", &self.key)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A tenant's effective configuration: defaults, then platform values, then tenant values.
/// Its `Debug` lists the keys, never the values (values may be credentials).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TenantConfig {
    values: BTreeMap<String, Value>,
}

impl fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantConfig")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TenantConfig {
    pub(crate) fn overlay(
        defaults: BTreeMap<String, Value>,
        platform: &[ConfigProperty],
        tenant: &[ConfigProperty],
    ) -> Self {
        let mut values = defaults;
        for property in platform.iter().chain(tenant) {
            values.insert(property.key.clone(), property.value.clone());
        }
        Self { values }
    }

    pub(crate) const fn from_values(values: BTreeMap<String, Value>) -> Self {
        Self { values }
    }

    pub(crate) const fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// The value of `key`. Values are validated when written, so this falls back to the
    /// key's default only when a value was stored by a build with a different type for it.
    #[must_use]
    pub fn get<T: DeserializeOwned>(&self, key: &ConfigKey<T>) -> T {
        let Some(value) = self.values.get(key.name) else {
            return key.default_value();
        };
        match serde_json::from_value(value.clone()) {
            Ok(typed) => typed,
            Err(err) => {
                tracing::warn!(key = key.name, error = %err, "stored configuration value has the wrong type; using the default");
                key.default_value()
            }
        }
    }

    /// The raw JSON value of the key named `key`, if it has one.
    #[must_use]
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }
}

fn valid_key_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 128
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    static TTL: ConfigKey<u32> = ConfigKey::new(
        "issuer.offer_ttl",
        || 300,
        |v| {
            if *v >= 30 { Ok(()) } else { Err("at least 30") }
        },
    );
    static NAME: ConfigKey<String> = ConfigKey::new("display.name", String::new, |_| Ok(()));
    static BAD: ConfigKey<bool> = ConfigKey::new("Bad Key", || false, |_| Ok(()));

    #[test]
    fn values_are_checked_against_type_and_rule() {
        let schema = ConfigSchema::builder()
            .key(&TTL)
            .key(&NAME)
            .build()
            .unwrap();
        assert!(schema.validate("issuer.offer_ttl", &json!(60)).is_ok());
        assert!(matches!(
            schema.validate("issuer.offer_ttl", &json!(5)),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(schema.validate("issuer.offer_ttl", &json!("60")).is_err());
        assert!(matches!(
            schema.validate("nope", &json!(1)),
            Err(ConfigError::UnknownKey { .. })
        ));
    }

    #[test]
    fn duplicate_and_malformed_keys_fail_the_build() {
        assert!(matches!(
            ConfigSchema::builder().key(&TTL).key(&TTL).build(),
            Err(ConfigError::DuplicateKey { .. })
        ));
        assert!(matches!(
            ConfigSchema::builder().key(&BAD).build(),
            Err(ConfigError::MalformedKey { .. })
        ));
    }

    #[test]
    fn tenant_values_overlay_platform_values_and_defaults() {
        let schema = ConfigSchema::builder()
            .key(&TTL)
            .key(&NAME)
            .build()
            .unwrap();
        let property = |key: &str, value| ConfigProperty {
            key: key.to_owned(),
            value,
            version: 1,
        };
        let config = TenantConfig::overlay(
            schema.defaults(),
            &[
                property("issuer.offer_ttl", json!(600)),
                property("display.name", json!("p")),
            ],
            &[property("display.name", json!("t"))],
        );
        assert_eq!(config.get(&TTL), 600);
        assert_eq!(config.get(&NAME), "t");
        assert_eq!(TenantConfig::default().get(&TTL), 300);
    }

    #[test]
    fn debug_shows_keys_but_never_values() {
        let secret = ConfigProperty {
            key: "display.name".to_owned(),
            value: json!("sk_live_hunter2"),
            version: 3,
        };
        let config = TenantConfig::overlay(BTreeMap::new(), &[], std::slice::from_ref(&secret));
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("display.name"), "{debug}");
        let debug = format!("{secret:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("display.name"), "{debug}");
        assert_eq!(config.raw("display.name"), Some(&json!("sk_live_hunter2")));
    }
}
