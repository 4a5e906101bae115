//! `GET /v1/documents`: the caller's tenant's documents, oldest first, a
//! page at a time, filtered by owner, content type, risk flag and creation
//! time.
//!
//! `?risk=java_script` (any name of [`RiskFlag::ALL`]) lists the documents
//! whose extraction found that active content, `?risk=any` those with at
//! least one flag; a document is flagged once its text is stored
//! (`has_text`), so one still waiting for its extraction job matches no
//! `risk`. Another value is a 400 problem naming the valid ones.
//!
//! The owner filter is the store's own (`DocumentStore::list_by_owner`);
//! the others are applied to what the store returns
//! ([`crate::page::filtered`]: at most 8 store pages per request, so a page
//! of a narrow filter can hold fewer than `limit` documents, even none,
//! with a `next` cursor to go on from; only a page without `next` is the
//! last).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::document::DocumentMeta;
use docaiche_core::extract::RiskFlag;
use docaiche_core::page::PageRequest;
use docaiche_core::{DocumentStore as _, Error, PrincipalId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{DocumentView, no_store};
use crate::openapi::{Param, Payload, RouteDoc, grammar, schema_ref};
use crate::rejection::rfc3339;
use crate::routes::Endpoint;
use crate::state::AppState;

/// Default page size.
const DEFAULT_PAGE: u32 = 50;
/// Longest `content_type` filter, in characters.
const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// What `?risk=` matches besides a flag: documents with any flag.
const ANY_RISK: &str = "any";

/// The values `?risk=` takes: every [`RiskFlag`] name, then [`ANY_RISK`].
const RISK_NAMES: [&str; RiskFlag::ALL.len() + 1] = {
    let mut names = [ANY_RISK; RiskFlag::ALL.len() + 1];
    let mut i = 0;
    while i < RiskFlag::ALL.len() {
        names[i] = RiskFlag::ALL[i].as_str();
        i += 1;
    }
    names
};

/// `GET /v1/documents`: the route of [`list_documents`] and its
/// documentation.
pub(crate) const LIST_DOCUMENTS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/documents",
    RouteDoc {
        description: Some(
            "Oldest first (ids are UUIDv7). Filters other than `owner` are applied \
             to at most 8 store pages per request: a page may hold fewer than \
             `limit` documents, even none; follow `next` until it is absent.",
        ),
        query: &[
            (
                "owner",
                Param::Pattern(grammar::NAME_ID),
                "only documents uploaded by this principal",
            ),
            (
                "content_type",
                Param::TextUpTo(MAX_CONTENT_TYPE_CHARS),
                "only documents of this media type, e.g. `application/pdf`",
            ),
            (
                "risk",
                Param::OneOf(&RISK_NAMES),
                "only documents whose extraction found this active content \
                 (`any`: at least one flag); a document not extracted yet has none",
            ),
            (
                "created_after",
                Param::DateTime,
                "only documents created at or after this RFC 3339 time",
            ),
            (
                "created_before",
                Param::DateTime,
                "only documents created before this RFC 3339 time",
            ),
            crate::openapi::PAGE_AFTER,
            crate::openapi::PAGE_LIMIT_50,
        ],
        errors: &[(400, "an invalid filter, cursor or `limit`")],
        ..RouteDoc::ok(
            "The tenant's documents, a page at a time",
            "a page of document metadata",
            Payload::Json(schema_ref::<DocumentPage<'static>>),
        )
    },
);

/// The query of `GET /v1/documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    owner: Option<String>,
    content_type: Option<String>,
    risk: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    after: Option<String>,
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// What `?risk=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RiskFilter {
    /// At least one flag.
    Any,
    /// This flag, among others or alone.
    Flag(RiskFlag),
}

impl RiskFilter {
    /// The filter named `name`, one of [`RISK_NAMES`].
    fn parse(name: &str) -> Result<Self, Error> {
        if name == ANY_RISK {
            return Ok(Self::Any);
        }
        RiskFlag::from_name(name).map(Self::Flag).ok_or_else(|| {
            Error::invalid_input(format!("risk must be one of {}", RISK_NAMES.join(", ")))
        })
    }

    /// Whether a document flagged `risks` matches.
    fn admits(self, risks: &[RiskFlag]) -> bool {
        match self {
            Self::Any => !risks.is_empty(),
            Self::Flag(flag) => risks.contains(&flag),
        }
    }
}

/// The checked filter of a [`ListQuery`].
#[derive(Debug)]
struct Filter {
    owner: Option<PrincipalId>,
    content_type: Option<String>,
    risk: Option<RiskFilter>,
    created_after: Option<OffsetDateTime>,
    created_before: Option<OffsetDateTime>,
}

impl Filter {
    /// Check the filters of `query`.
    fn parse(query: &mut ListQuery) -> Result<Self, Error> {
        let owner = query
            .owner
            .take()
            .map(PrincipalId::new)
            .transpose()
            .map_err(|_| Error::invalid_input("owner is not a principal id"))?;
        let content_type = query.content_type.take();
        if content_type
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_CONTENT_TYPE_CHARS)
        {
            return Err(Error::invalid_input("content_type is too long"));
        }
        let risk = query.risk.as_deref().map(RiskFilter::parse).transpose()?;
        Ok(Self {
            owner,
            content_type,
            risk,
            created_after: rfc3339("created_after", query.created_after.as_deref())?,
            created_before: rfc3339("created_before", query.created_before.as_deref())?,
        })
    }

    /// Whether `meta` passes the filters the store did not apply.
    fn admits(&self, meta: &DocumentMeta) -> bool {
        self.content_type
            .as_ref()
            .is_none_or(|c| *c == meta.content_type)
            && self.risk.is_none_or(|r| r.admits(&meta.risks))
            && self.created_after.is_none_or(|t| meta.created_at >= t)
            && self.created_before.is_none_or(|t| meta.created_at < t)
    }
}

/// A page of documents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentPage<'a> {
    /// The documents, oldest first.
    items: Vec<DocumentView<'a>>,
    /// The cursor of the next page (`?after=`); none on the last page.
    next: Option<String>,
}

/// `GET /v1/documents`: a page of the caller's tenant's documents; the
/// listing is audited (`document.list`).
pub(super) async fn list_documents(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let mut query = crate::rejection::query(query)?;
    let filter = Filter::parse(&mut query)?;
    let request = PageRequest::new(query.after, query.limit.unwrap_or(DEFAULT_PAGE))?;
    let (tenant, owner) = (&caller.tenant, filter.owner.as_ref());
    let documents = &state.documents;
    let (found, next) = crate::page::filtered(
        request,
        |page| async move {
            match owner {
                Some(owner) => documents.list_by_owner(tenant, owner, &page).await,
                None => documents.list(tenant, &page).await,
            }
        },
        |meta| filter.admits(meta),
        |meta| meta.id.to_string(),
    )
    .await?;
    crate::audit::document(&state, &caller, "document.list", "*", &headers);
    let items = found.iter().map(DocumentView::from).collect();
    Ok(no_store(&DocumentPage { items, next }))
}

#[cfg(test)]
mod tests;
