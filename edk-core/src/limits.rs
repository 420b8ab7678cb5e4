//! Bounds applied by every parser in this crate.
//!
//! Input from the network is bounded before it is parsed: a token larger than
//! [`Limits::max_token_bytes`], an SD-JWT with more than [`Limits::max_disclosures`]
//! disclosures, JSON nested deeper than [`Limits::max_depth`], or a status list that inflates
//! past [`Limits::max_status_list_bytes`] is refused with a typed error before any work that
//! grows with it.

/// Parser limits. [`Limits::default`] suits credentials exchanged between wallets and services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest compact JWS, JWT or SD-JWT accepted, in bytes.
    pub max_token_bytes: usize,
    /// Most disclosures accepted in one SD-JWT.
    pub max_disclosures: usize,
    /// Deepest JSON nesting accepted in a payload or disclosure.
    pub max_depth: usize,
    /// Largest decompressed status list accepted, in bytes.
    pub max_status_list_bytes: usize,
}

impl Limits {
    /// The defaults: 256 KiB tokens, 1,024 disclosures, depth 32, 16 MiB status lists.
    pub const DEFAULT: Self = Self {
        max_token_bytes: 256 * 1024,
        max_disclosures: 1024,
        max_depth: 32,
        max_status_list_bytes: 16 * 1024 * 1024,
    };

    /// Limits with a different maximum token size.
    #[must_use]
    pub const fn with_max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Limits with a different maximum number of disclosures.
    #[must_use]
    pub const fn with_max_disclosures(mut self, count: usize) -> Self {
        self.max_disclosures = count;
        self
    }

    /// Limits with a different maximum JSON depth.
    #[must_use]
    pub const fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Limits with a different maximum decompressed status list size.
    #[must_use]
    pub const fn with_max_status_list_bytes(mut self, bytes: usize) -> Self {
        self.max_status_list_bytes = bytes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The nesting depth of a JSON value: a scalar is 0, `[]` and `{}` are 1.
#[must_use]
pub fn json_depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers() {
        assert_eq!(json_depth(&serde_json::json!(1)), 0);
        assert_eq!(json_depth(&serde_json::json!({"a": [1, {"b": []}]})), 4);
    }
}
