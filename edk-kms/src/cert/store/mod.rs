//! Where certificates and chains live: the [`CertificateStore`] trait and its SQL
//! implementation on a tenant's PostgreSQL schema or SQLite file.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::Kid;
use edk_tenancy::{Tenancy, TenantContext, store::TenantTx};

use super::x509::{parse_pem_chain, to_pem};
use super::{CertificateChain, CertificateInfo, ChainName, Error, StoredCertificate};
use crate::kms::KeyAlias;

#[macro_use]
mod queries;

cert_queries!(postgres, edk_tenancy::store::postgres::PgTenantTx);
cert_queries!(sqlite, edk_tenancy::store::sqlite::SqliteTenantTx);

/// The certificates and chains of tenants. Each method is one transaction in the tenant's
/// schema or file; another tenant's rows are never visible.
#[async_trait]
pub trait CertificateStore: fmt::Debug + Send + Sync {
    /// Inserts or replaces the certificate under `certificate.alias`.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn put_certificate(
        &self,
        tenant: &TenantContext,
        certificate: &StoredCertificate,
        at: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// The certificate under `alias`, if any.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn certificate(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<Option<StoredCertificate>, Error>;

    /// Every certificate, by alias.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn certificates(&self, tenant: &TenantContext) -> Result<Vec<StoredCertificate>, Error>;

    /// Deletes the certificate under `alias`; whether there was one.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn delete_certificate(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<bool, Error>;

    /// Inserts or replaces the chain under `chain.name`.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn put_chain(
        &self,
        tenant: &TenantContext,
        chain: &CertificateChain,
        at: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// The chain under `name`, if any.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn chain(
        &self,
        tenant: &TenantContext,
        name: &ChainName,
    ) -> Result<Option<CertificateChain>, Error>;

    /// Every chain, by name.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn chains(&self, tenant: &TenantContext) -> Result<Vec<CertificateChain>, Error>;

    /// Deletes the chain under `name`; whether there was one.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails.
    async fn delete_chain(&self, tenant: &TenantContext, name: &ChainName) -> Result<bool, Error>;
}

/// The [`CertificateStore`] in the tenant databases of a [`Tenancy`] (built with
/// [`migrations`](super::migrations)).
#[derive(Clone, Debug)]
pub struct SqlCertificateStore {
    tenancy: Tenancy,
}

impl SqlCertificateStore {
    /// The store in `tenancy`'s tenant databases.
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }

    async fn begin(&self, tenant: &TenantContext) -> Result<TenantTx, Error> {
        self.tenancy
            .databases()
            .begin(tenant)
            .await
            .map_err(Error::store)
    }
}

/// A certificate row as both backends hold it.
#[derive(sqlx::FromRow)]
struct CertificateRow {
    alias: String,
    kid: Option<String>,
    pem: String,
}

impl CertificateRow {
    fn into_domain(self) -> Result<StoredCertificate, Error> {
        let alias = self.alias.parse().map_err(Error::store)?;
        let kid = self
            .kid
            .map(|kid| Kid::new(&kid))
            .transpose()
            .map_err(Error::store)?;
        let chain = parse_pem_chain(&self.pem).map_err(Error::store)?;
        Ok(StoredCertificate {
            alias,
            kid,
            certificate: CertificateInfo::from_chain(chain).map_err(Error::store)?,
        })
    }
}

/// A chain row as both backends hold it.
#[derive(sqlx::FromRow)]
struct ChainRow {
    name: String,
    pem: String,
    is_trust_anchor: bool,
}

impl ChainRow {
    fn into_domain(self) -> Result<CertificateChain, Error> {
        Ok(CertificateChain {
            name: ChainName::new(&self.name).map_err(Error::store)?,
            certificates: parse_pem_chain(&self.pem).map_err(Error::store)?,
            trust_anchor: self.is_trust_anchor,
        })
    }
}

/// The values written for a certificate.
struct CertificateValues<'a> {
    alias: String,
    serial: &'a str,
    subject: &'a str,
    issuer: &'a str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    kid: Option<&'a str>,
    der: &'a [u8],
    pem: String,
    at: DateTime<Utc>,
}

impl<'a> CertificateValues<'a> {
    fn new(stored: &'a StoredCertificate, at: DateTime<Utc>) -> Result<Self, Error> {
        let info = &stored.certificate;
        Ok(Self {
            alias: stored.alias.to_string(),
            serial: &info.serial,
            subject: &info.subject,
            issuer: &info.issuer,
            not_before: info.not_before,
            not_after: info.not_after,
            kid: stored.kid.as_ref().map(Kid::as_str),
            der: info.der(),
            pem: info.pem()?,
            at,
        })
    }
}

#[async_trait]
impl CertificateStore for SqlCertificateStore {
    async fn put_certificate(
        &self,
        tenant: &TenantContext,
        certificate: &StoredCertificate,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let values = CertificateValues::new(certificate, at)?;
        let mut tx = self.begin(tenant).await?;
        match &mut tx {
            TenantTx::Postgres(tx) => postgres::put_certificate(tx, &values).await,
            TenantTx::Sqlite(tx) => sqlite::put_certificate(tx, &values).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        tx.commit().await.map_err(Error::store)
    }

    async fn certificate(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<Option<StoredCertificate>, Error> {
        let alias = alias.to_string();
        let mut tx = self.begin(tenant).await?;
        let row = match &mut tx {
            TenantTx::Postgres(tx) => postgres::certificate(tx, &alias).await,
            TenantTx::Sqlite(tx) => sqlite::certificate(tx, &alias).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        row.map(CertificateRow::into_domain).transpose()
    }

    async fn certificates(&self, tenant: &TenantContext) -> Result<Vec<StoredCertificate>, Error> {
        let mut tx = self.begin(tenant).await?;
        let rows = match &mut tx {
            TenantTx::Postgres(tx) => postgres::certificates(tx).await,
            TenantTx::Sqlite(tx) => sqlite::certificates(tx).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        rows.into_iter().map(CertificateRow::into_domain).collect()
    }

    async fn delete_certificate(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<bool, Error> {
        let alias = alias.to_string();
        let mut tx = self.begin(tenant).await?;
        let deleted = match &mut tx {
            TenantTx::Postgres(tx) => postgres::delete_certificate(tx, &alias).await,
            TenantTx::Sqlite(tx) => sqlite::delete_certificate(tx, &alias).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        tx.commit().await.map_err(Error::store)?;
        Ok(deleted)
    }

    async fn put_chain(
        &self,
        tenant: &TenantContext,
        chain: &CertificateChain,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let pem = to_pem(&chain.certificates)?;
        let name = chain.name.as_str();
        let mut tx = self.begin(tenant).await?;
        match &mut tx {
            TenantTx::Postgres(tx) => {
                postgres::put_chain(tx, name, &pem, chain.trust_anchor, at).await
            }
            TenantTx::Sqlite(tx) => sqlite::put_chain(tx, name, &pem, chain.trust_anchor, at).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        tx.commit().await.map_err(Error::store)
    }

    async fn chain(
        &self,
        tenant: &TenantContext,
        name: &ChainName,
    ) -> Result<Option<CertificateChain>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row = match &mut tx {
            TenantTx::Postgres(tx) => postgres::chain(tx, name.as_str()).await,
            TenantTx::Sqlite(tx) => sqlite::chain(tx, name.as_str()).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        row.map(ChainRow::into_domain).transpose()
    }

    async fn chains(&self, tenant: &TenantContext) -> Result<Vec<CertificateChain>, Error> {
        let mut tx = self.begin(tenant).await?;
        let rows = match &mut tx {
            TenantTx::Postgres(tx) => postgres::chains(tx).await,
            TenantTx::Sqlite(tx) => sqlite::chains(tx).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        rows.into_iter().map(ChainRow::into_domain).collect()
    }

    async fn delete_chain(&self, tenant: &TenantContext, name: &ChainName) -> Result<bool, Error> {
        let mut tx = self.begin(tenant).await?;
        let deleted = match &mut tx {
            TenantTx::Postgres(tx) => postgres::delete_chain(tx, name.as_str()).await,
            TenantTx::Sqlite(tx) => sqlite::delete_chain(tx, name.as_str()).await,
            _ => Err(Error::store("unsupported tenant database")),
        }?;
        tx.commit().await.map_err(Error::store)?;
        Ok(deleted)
    }
}
