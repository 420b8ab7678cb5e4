//! Status lists of the issuer: indices for new credentials, status changes by the operator,
//! and the signed Status List Tokens it publishes.

use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header};
use edk_core::status_list::{
    CborStatusList, EncodedStatusList, StatusList, StatusListCwt, StatusListCwtClaims,
    StatusListToken, StatusListTokenClaims,
};
use edk_kms::kms::KeyAlias;
use edk_kms::provider::KeySpec;
use edk_tenancy::TenantContext;
use serde_json::{Value, json};

use super::{Error, Issuer, IssuerEndpoints, KMS_SERVICE};
use crate::status::{
    CredentialSelector, IssuedCredential, PublishedToken, STATUS_LIST_SIGNING_PURPOSE,
    StatusAction, StatusIndex, StatusListInfo, StatusListSpec, StatusSettings,
};
use crate::store::{IssuedFilter, StatusUpdate};

impl Issuer {
    /// Hands out `count` indices for new credentials of `configuration_id` under
    /// `settings`, in the tenant's open list for it, each with its `status` claim value.
    pub(super) async fn allocate_status(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        configuration_id: &str,
        settings: &StatusSettings,
        count: usize,
        now: i64,
    ) -> Result<Vec<(StatusIndex, Value)>, Error> {
        let spec = StatusListSpec {
            configuration_id: configuration_id.to_owned(),
            purpose: settings.purpose,
            bits: settings.bits(),
            size: settings.list_size(),
            issuer: endpoints.credential_issuer.clone(),
            uri_base: endpoints.status_lists.clone(),
        };
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let indices = self
            .store
            .allocate_status_indices(tenant, &spec, count, now)
            .await?;
        Ok(indices
            .into_iter()
            .map(|index| {
                let claim = json!({ "status_list": { "idx": index.index, "uri": index.uri } });
                (index, claim)
            })
            .collect())
    }

    /// Applies `action` to the credentials `selector` names, all or none. The change shows
    /// in the lists' next publication.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the selector names no credential; [`Error::State`] when the
    /// action cannot apply to one of them (a revoked credential, or suspension on a
    /// revocation list); [`Error::Store`].
    pub async fn set_credential_status(
        &self,
        tenant: &TenantContext,
        selector: &CredentialSelector,
        action: StatusAction,
    ) -> Result<Vec<IssuedCredential>, Error> {
        match self
            .store
            .set_credential_status(tenant, selector, action, self.now())
            .await?
        {
            StatusUpdate::Updated(credentials) => Ok(credentials),
            StatusUpdate::NotFound => Err(Error::NotFound("issued credential")),
            StatusUpdate::Refused(reason) => Err(Error::State(reason)),
        }
    }

    /// A page of the credentials issued with a status, by credential id.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn issued_credentials(
        &self,
        tenant: &TenantContext,
        filter: &IssuedFilter,
    ) -> Result<Vec<IssuedCredential>, Error> {
        Ok(self.store.issued_credentials(tenant, filter).await?)
    }

    /// Every status list of the tenant.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn status_lists(&self, tenant: &TenantContext) -> Result<Vec<StatusListInfo>, Error> {
        Ok(self.store.status_lists(tenant).await?)
    }

    /// Signs and saves a new token for each list that needs one (changed since its last
    /// token, or that token past half its validity): one signature per list, however many
    /// statuses changed. Returns how many tokens were published.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Kms`] when the signing key cannot be made or used.
    pub async fn publish_status_lists(&self, tenant: &TenantContext) -> Result<usize, Error> {
        let now = self.now();
        let validity = self.options.status_list_validity_secs;
        let mut published = 0;
        for list in self.store.status_lists(tenant).await? {
            if list.needs_publication(now, validity)
                && self
                    .publish_status_list(tenant, &list.list_id)
                    .await?
                    .is_some()
            {
                published += 1;
            }
        }
        let history = now.saturating_sub(self.options.status_list_history_secs);
        self.store.purge_published(tenant, history).await?;
        Ok(published)
    }

    /// Signs and saves a token of list `list_id` as it is now; `None` when another replica
    /// published first or the list does not exist.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Kms`]; [`Error::StatusList`] when the token cannot be
    /// built.
    pub async fn publish_status_list(
        &self,
        tenant: &TenantContext,
        list_id: &str,
    ) -> Result<Option<PublishedToken>, Error> {
        let Some((info, entries)) = self.store.status_list_entries(tenant, list_id).await? else {
            return Ok(None);
        };
        let mut list = StatusList::new(
            edk_core::status_list::Bits::new(info.bits)
                .ok_or(Error::State("a status list has an invalid number of bits"))?,
            usize::try_from(info.size).unwrap_or_default(),
        );
        for (index, status) in entries {
            list.set_status(
                usize::try_from(index).unwrap_or(usize::MAX),
                status.status_type(),
            )?;
        }
        let now = self.now();
        let exp = now.saturating_add(self.options.status_list_validity_secs);
        let ttl = self.options.status_list_ttl_secs;
        let aggregation = info
            .uri
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap_or_default();
        // Compressed once: both token forms carry the same ZLIB bytes.
        let zlib = list.compress()?;
        let encoded = EncodedStatusList::new(list.bits(), b64url_encode(&zlib))
            .with_aggregation_uri(&aggregation)?;
        let cbor = CborStatusList::new(list.bits(), zlib).with_aggregation_uri(&aggregation)?;
        let claims = StatusListTokenClaims::with_list(&info.uri, now, encoded)?
            .with_exp(exp)
            .with_ttl(ttl)
            .with_iss(&info.issuer);
        let cwt_claims = StatusListCwtClaims::with_list(&info.uri, now, cbor)?
            .with_exp(exp)
            .with_ttl(ttl)
            .with_iss(&info.issuer);
        let alias = KeyAlias::new(KMS_SERVICE, STATUS_LIST_SIGNING_PURPOSE)
            .map_err(|_| Error::State("the status list signing alias is malformed"))?;
        let caller = Self::caller(tenant);
        self.ensure_key(&caller, &alias, KeySpec::signing(Algorithm::Es256))
            .await?;
        let signer = self.kms.signer(&caller, &alias).await.map_err(Error::Kms)?;
        let jwt = StatusListToken::issue(Header::new(signer.algorithm()), &claims, signer.as_ref())
            .await?;
        let cwt = StatusListCwt::issue(&cwt_claims, signer.as_ref()).await?;
        let token = PublishedToken {
            list_id: info.list_id.clone(),
            version: info.version,
            iat: now,
            exp,
            ttl,
            jwt,
            cwt,
        };
        Ok(self
            .store
            .save_published(tenant, &token, &info)
            .await?
            .then_some(token))
    }

    /// The token of list `list_id` to serve: the newest issued at or before `at` when given
    /// (historical resolution), else the current one, published now when the list has none
    /// yet or its newest has expired.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Kms`] and [`Error::StatusList`] when publishing fails.
    pub async fn status_list_token(
        &self,
        tenant: &TenantContext,
        list_id: &str,
        at: Option<i64>,
    ) -> Result<Option<PublishedToken>, Error> {
        let found = self.store.published_token(tenant, list_id, at).await?;
        if at.is_some() {
            return Ok(found.filter(|token| at.is_some_and(|at| at < token.exp)));
        }
        let now = self.now();
        match found {
            Some(token) if token.exp > now => Ok(Some(token)),
            _ => match self.publish_status_list(tenant, list_id).await? {
                Some(token) => Ok(Some(token)),
                // Another replica published meanwhile: serve its token.
                None => Ok(self
                    .store
                    .published_token(tenant, list_id, None)
                    .await?
                    .filter(|token| token.exp > now)),
            },
        }
    }

    /// The URIs of the tenant's status lists at this issuer (Status List aggregation).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn status_list_uris(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
    ) -> Result<Vec<String>, Error> {
        Ok(self
            .store
            .status_lists(tenant)
            .await?
            .into_iter()
            .filter(|list| list.issuer == endpoints.credential_issuer)
            .map(|list| list.uri)
            .collect())
    }
}
