//! The certificate store's queries, one text for both backends (`$n` placeholders work on
//! PostgreSQL and SQLite alike), instantiated per backend transaction type.

/// Defines module `$name` with the certificate store's queries over transactions of type `$tx`.
macro_rules! cert_queries {
    ($name:ident, $tx:ty) => {
        mod $name {
            use chrono::{DateTime, Utc};

            use super::{CertificateRow, CertificateValues, ChainRow};
            use crate::cert::Error;

            pub(super) async fn put_certificate(
                tx: &mut $tx,
                v: &CertificateValues<'_>,
            ) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO certificate \
                     (alias, serial, subject, issuer, not_before, not_after, kid, der, pem, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (alias) DO UPDATE SET serial = excluded.serial, \
                     subject = excluded.subject, issuer = excluded.issuer, \
                     not_before = excluded.not_before, not_after = excluded.not_after, \
                     kid = excluded.kid, der = excluded.der, pem = excluded.pem, \
                     updated_at = excluded.updated_at",
                )
                .bind(&v.alias)
                .bind(v.serial)
                .bind(v.subject)
                .bind(v.issuer)
                .bind(v.not_before)
                .bind(v.not_after)
                .bind(v.kid)
                .bind(v.der)
                .bind(&v.pem)
                .bind(v.at)
                .execute(&mut **tx)
                .await
                .map_err(Error::store)?;
                Ok(())
            }

            pub(super) async fn certificate(
                tx: &mut $tx,
                alias: &str,
            ) -> Result<Option<CertificateRow>, Error> {
                sqlx::query_as::<_, CertificateRow>("SELECT alias, kid, pem FROM certificate WHERE alias = $1")
                    .bind(alias)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(Error::store)
            }

            pub(super) async fn certificates(tx: &mut $tx) -> Result<Vec<CertificateRow>, Error> {
                sqlx::query_as::<_, CertificateRow>("SELECT alias, kid, pem FROM certificate ORDER BY alias")
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(Error::store)
            }

            pub(super) async fn delete_certificate(tx: &mut $tx, alias: &str) -> Result<bool, Error> {
                let done = sqlx::query("DELETE FROM certificate WHERE alias = $1")
                    .bind(alias)
                    .execute(&mut **tx)
                    .await
                    .map_err(Error::store)?;
                Ok(done.rows_affected() > 0)
            }

            pub(super) async fn put_chain(
                tx: &mut $tx,
                name: &str,
                pem: &str,
                trust_anchor: bool,
                at: DateTime<Utc>,
            ) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO certificate_chain (name, pem, is_trust_anchor, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET pem = excluded.pem, \
                     is_trust_anchor = excluded.is_trust_anchor, updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(pem)
                .bind(trust_anchor)
                .bind(at)
                .execute(&mut **tx)
                .await
                .map_err(Error::store)?;
                Ok(())
            }

            pub(super) async fn chain(tx: &mut $tx, name: &str) -> Result<Option<ChainRow>, Error> {
                sqlx::query_as::<_, ChainRow>(
                    "SELECT name, pem, is_trust_anchor FROM certificate_chain WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&mut **tx)
                .await
                .map_err(Error::store)
            }

            pub(super) async fn chains(tx: &mut $tx) -> Result<Vec<ChainRow>, Error> {
                sqlx::query_as::<_, ChainRow>(
                    "SELECT name, pem, is_trust_anchor FROM certificate_chain ORDER BY name",
                )
                .fetch_all(&mut **tx)
                .await
                .map_err(Error::store)
            }

            pub(super) async fn delete_chain(tx: &mut $tx, name: &str) -> Result<bool, Error> {
                let done = sqlx::query("DELETE FROM certificate_chain WHERE name = $1")
                    .bind(name)
                    .execute(&mut **tx)
                    .await
                    .map_err(Error::store)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
