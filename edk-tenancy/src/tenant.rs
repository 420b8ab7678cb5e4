//! Tenants and their lifecycle.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use edk_core::{TenantId, TenantSlug};
use serde::{Deserialize, Serialize};

/// Where a tenant is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantStatus {
    /// Serving traffic.
    Active,
    /// Refusing traffic; its schema is dropped once the grace period has passed.
    Deleted,
    /// Its schema and defaults are being created; not serving yet.
    Provisioning,
    /// Refusing traffic until resumed; data kept.
    Suspended,
}

impl TenantStatus {
    /// The status as stored in the registry.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
            Self::Provisioning => "provisioning",
            Self::Suspended => "suspended",
        }
    }

    /// Whether requests for this tenant are served.
    #[must_use]
    pub const fn is_serving(self) -> bool {
        matches!(self, Self::Active)
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TenantStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Ok(match s {
            "active" => Self::Active,
            "deleted" => Self::Deleted,
            "provisioning" => Self::Provisioning,
            "suspended" => Self::Suspended,
            _ => return Err(UnknownStatus),
        })
    }
}

/// A registry row held a status this build does not know.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("unknown tenant status")]
pub struct UnknownStatus;

/// A tenant as recorded in the platform registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Immutable id; its schema and files are named from it.
    pub id: TenantId,
    /// URL-friendly name, unique across the deployment.
    pub slug: TenantSlug,
    /// Human-readable name.
    pub display_name: String,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// When the tenant was registered.
    pub created_at: DateTime<Utc>,
    /// When the registry row last changed.
    pub updated_at: DateTime<Utc>,
    /// When the tenant was deleted, if it was.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The longest display name accepted, in characters.
pub const DISPLAY_NAME_MAX: usize = 200;

pub(crate) fn check_display_name(name: &str) -> Result<(), edk_core::IdError> {
    const WHAT: &str = "display name";
    if name.trim().is_empty() {
        return Err(edk_core::IdError::Empty { what: WHAT });
    }
    if name.chars().count() > DISPLAY_NAME_MAX {
        return Err(edk_core::IdError::TooLong {
            what: WHAT,
            max: DISPLAY_NAME_MAX,
        });
    }
    if name.chars().any(char::is_control) {
        return Err(edk_core::IdError::Malformed {
            what: WHAT,
            reason: "control characters are not allowed",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            TenantStatus::Active,
            TenantStatus::Deleted,
            TenantStatus::Provisioning,
            TenantStatus::Suspended,
        ] {
            assert_eq!(status.as_str().parse::<TenantStatus>().unwrap(), status);
        }
        assert!("gone".parse::<TenantStatus>().is_err());
        assert!(TenantStatus::Active.is_serving());
        assert!(!TenantStatus::Suspended.is_serving());
    }

    #[test]
    fn display_names_refuse_control_characters() {
        assert!(check_display_name("Acme GmbH").is_ok());
        assert!(check_display_name(" ").is_err());
        assert!(check_display_name("a\u{0}b").is_err());
        assert!(check_display_name(&"x".repeat(DISPLAY_NAME_MAX + 1)).is_err());
    }
}
