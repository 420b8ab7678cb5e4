//! The data directory: the key encryption key and the bootstrap admin.
//!
//! On first start `edk` creates, with owner-only permissions:
//! - `kek`: a random 256-bit key encryption key (base64) that seals the software provider's
//!   keys;
//! - `admin-key.jwk`: an ES256 private key, the only key of the bootstrap issuer
//!   [`BOOTSTRAP_ISSUER`];
//! - `db/`: the SQLite databases (platform and one file per tenant);
//!
//! provisions the tenant [`DEFAULT_TENANT_SLUG`] and signs a bootstrap admin token for it with
//! that key, carrying every admin scope, valid for [`BOOTSTRAP_TOKEN_LIFETIME_SECS`], and
//! writes it to `bootstrap-token` (owner-only; never to the log or standard output). Later
//! starts reuse the files and trust the key again; `edk admin-token` mints a fresh token
//! from the same key.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use edk_core::jose::{Algorithm, Header, Jwk, JwkSet, SigningKey, jws};
use edk_core::{Clock, TenantId};
use edk_kms::ProviderId;
use edk_kms::provider::software::{KekConfig, KekId, SoftwareProviderConfig, generate_kek};
use edk_server::TrustedIssuer;

use crate::Error;

/// The `iss` of bootstrap admin tokens.
pub const BOOTSTRAP_ISSUER: &str = "urn:edk:bootstrap";

/// The subject of the bootstrap admin token.
pub const BOOTSTRAP_SUBJECT: &str = "bootstrap-admin";

/// Every admin scope the server knows.
pub const ADMIN_SCOPES: [&str; 19] = [
    edk_kms_server::scope::READ,
    edk_kms_server::scope::WRITE,
    edk_kms_server::scope::USE,
    edk_kms_server::scope::PROVIDERS,
    edk_as_server::admin::SCOPE_READ,
    edk_as_server::admin::SCOPE_WRITE,
    edk_did_server::SCOPE_READ,
    edk_did_server::SCOPE_WRITE,
    edk_issuer_server::SCOPE_READ,
    edk_issuer_server::SCOPE_WRITE,
    edk_verifier_server::SCOPE_READ,
    edk_verifier_server::SCOPE_WRITE,
    edk_platform_server::operators::scope::TENANTS_READ,
    edk_platform_server::operators::scope::TENANTS_WRITE,
    edk_platform_server::operators::scope::TENANT_CONFIG_READ,
    edk_platform_server::operators::scope::TENANT_CONFIG_WRITE,
    edk_platform_server::operators::scope::TENANT_AUDIT_READ,
    edk_platform_server::operators::scope::OPERATORS_READ,
    edk_platform_server::operators::scope::OPERATORS_WRITE,
];

/// The slug of the tenant the bootstrap token acts for, provisioned on first start.
pub const DEFAULT_TENANT_SLUG: &str = "local";

/// How long the bootstrap token is valid: twelve hours.
pub const BOOTSTRAP_TOKEN_LIFETIME_SECS: i64 = 12 * 60 * 60;

/// The file, in the data directory, that the bootstrap token is written to.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";

/// The id of the software key provider.
pub const SOFTWARE_PROVIDER_ID: &str = "software";

const KEK_FILE: &str = "kek";
const KEK_ID: &str = "local";
const ADMIN_KEY_FILE: &str = "admin-key.jwk";
const DATABASE_DIR: &str = "db";

/// What the data directory holds, opened.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    admin_key: SigningKey,
    first_start: bool,
}

impl DataDir {
    /// Opens `path`, creating it and its files on first start.
    ///
    /// # Errors
    /// [`Error::DataDir`] when a file cannot be read or written, [`Error::AdminKey`] when the
    /// stored admin key is unusable, [`Error::Signing`] when a key cannot be generated.
    pub fn open(path: &Path) -> Result<Self, Error> {
        create_private_dir(path)?;
        let kek = path.join(KEK_FILE);
        if !kek.exists() {
            let key = generate_kek().map_err(Error::Kms)?;
            write_private(&kek, key.expose_secret().as_bytes())?;
            tracing::info!(path = %kek.display(), "generated the key encryption key");
        }
        let key_path = path.join(ADMIN_KEY_FILE);
        let (admin_key, first_start) = if key_path.exists() {
            (read_admin_key(&key_path)?, false)
        } else {
            let key = SigningKey::generate(Algorithm::Es256).map_err(Error::Signing)?;
            let jwk = key.to_jwk().map_err(Error::Signing)?;
            let text = serde_json::to_vec(&jwk).map_err(|err| Error::AdminKey {
                path: key_path.clone(),
                source: Box::new(err),
            })?;
            write_private(&key_path, &text)?;
            tracing::info!(path = %key_path.display(), "generated the bootstrap admin key");
            (key, true)
        };
        Ok(Self {
            path: path.to_owned(),
            admin_key,
            first_start,
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this start created the admin key (and so shows the bootstrap token).
    #[must_use]
    pub const fn is_first_start(&self) -> bool {
        self.first_start
    }

    /// An admin token for `tenant` naming `audience`, dated by `clock`, with `scopes`, valid
    /// for `lifetime_secs`, signed by the bootstrap key.
    ///
    /// # Errors
    /// [`Error::Signing`] when the token cannot be signed.
    pub async fn admin_token(
        &self,
        tenant: TenantId,
        audience: &str,
        scopes: &[&str],
        lifetime_secs: i64,
        clock: &dyn Clock,
    ) -> Result<SecretString, Error> {
        admin_token(
            &self.admin_key,
            tenant,
            audience,
            scopes,
            lifetime_secs,
            clock,
        )
        .await
        .map(SecretString::from)
    }

    /// The bootstrap admin token for `tenant`: every admin scope ([`ADMIN_SCOPES`]), valid for
    /// [`BOOTSTRAP_TOKEN_LIFETIME_SECS`], written to [`BOOTSTRAP_TOKEN_FILE`] (owner-only,
    /// replacing an older one).
    ///
    /// # Errors
    /// [`Error::Signing`] when the token cannot be signed, [`Error::DataDir`] when the file
    /// cannot be written.
    pub async fn write_bootstrap_token(
        &self,
        tenant: TenantId,
        audience: &str,
        clock: &dyn Clock,
    ) -> Result<SecretString, Error> {
        let token = self
            .admin_token(
                tenant,
                audience,
                &ADMIN_SCOPES,
                BOOTSTRAP_TOKEN_LIFETIME_SECS,
                clock,
            )
            .await?;
        let path = self.bootstrap_token_path();
        if path.exists() {
            fs::remove_file(&path).map_err(|source| Error::DataDir {
                path: path.clone(),
                source,
            })?;
        }
        write_private(&path, token.expose_secret().as_bytes())?;
        Ok(token)
    }

    /// Where the bootstrap token is written.
    #[must_use]
    pub fn bootstrap_token_path(&self) -> PathBuf {
        self.path.join(BOOTSTRAP_TOKEN_FILE)
    }

    /// The bootstrap issuer, trusting the stored admin key.
    #[must_use]
    pub fn bootstrap_issuer(&self) -> TrustedIssuer {
        TrustedIssuer::with_jwks(
            BOOTSTRAP_ISSUER,
            JwkSet {
                keys: vec![self.admin_key.public_jwk()],
            },
        )
    }

    /// The software key provider's configuration: keys sealed with the stored KEK.
    #[expect(
        clippy::expect_used,
        reason = "the provider and KEK ids are constants that pass validation"
    )]
    #[must_use]
    pub fn software_provider(&self) -> SoftwareProviderConfig {
        let id = ProviderId::new(SOFTWARE_PROVIDER_ID).expect("valid provider id");
        let kek_id = KekId::new(KEK_ID).expect("valid KEK id");
        SoftwareProviderConfig::new(id, KekConfig::file(kek_id, self.path.join(KEK_FILE)))
    }

    /// Where the SQLite databases live: `db/` in the data directory.
    #[must_use]
    pub fn database_dir(&self) -> PathBuf {
        self.path.join(DATABASE_DIR)
    }
}

async fn admin_token(
    key: &SigningKey,
    tenant: TenantId,
    audience: &str,
    scopes: &[&str],
    lifetime_secs: i64,
    clock: &dyn Clock,
) -> Result<String, Error> {
    let now = clock.unix_seconds();
    let claims = json!({
        "iss": BOOTSTRAP_ISSUER,
        "sub": BOOTSTRAP_SUBJECT,
        "aud": audience,
        "tenant": tenant.to_string(),
        "scope": scopes.join(" "),
        "iat": now,
        "exp": now.saturating_add(lifetime_secs),
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let payload = claims.to_string();
    jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT"),
        payload.as_bytes(),
        key,
    )
    .await
    .map_err(Error::Signing)
}

fn read_admin_key(path: &Path) -> Result<SigningKey, Error> {
    let text = fs::read(path).map_err(|source| Error::DataDir {
        path: path.to_owned(),
        source,
    })?;
    let bad = |source: Box<dyn std::error::Error + Send + Sync>| Error::AdminKey {
        path: path.to_owned(),
        source,
    };
    let jwk: Jwk = serde_json::from_slice(&text).map_err(|err| bad(Box::new(err)))?;
    SigningKey::from_jwk(&jwk, Some(Algorithm::Es256)).map_err(|err| bad(Box::new(err)))
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    let io = |source| Error::DataDir {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io)
}

/// Writes a new file readable and writable by its owner only; refuses to overwrite.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let io = |source| Error::DataDir {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}
