//! `GET /v1/documents`: the caller's tenant's documents, oldest first, a
//! page at a time, filtered by owner, content type and creation time.
//!
//! The owner filter is the store's own (`DocumentStore::list_by_owner`);
//! the others are applied to what the store returns. So that one request
//! never scans a whole tenant, it reads at most [`SCAN_BATCHES`] store
//! pages: a page of a narrow filter can hold fewer than `limit` documents,
//! even none, with a `next` cursor to go on from. Only a page without
//! `next` is the last.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::document::DocumentMeta;
use docaiche_core::page::{MAX_PAGE_SIZE, PageRequest};
use docaiche_core::{DocumentStore as _, Error, PrincipalId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{DocumentView, no_store};
use crate::openapi::{Param, Payload, RouteDoc, grammar, schema_ref};
use crate::routes::Endpoint;
use crate::state::AppState;

/// Default page size.
const DEFAULT_PAGE: u32 = 50;
/// Store pages one request reads at most.
const SCAN_BATCHES: usize = 8;
/// Longest `content_type` filter, in characters.
const MAX_CONTENT_TYPE_CHARS: usize = 255;

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
                "created_after",
                Param::DateTime,
                "only documents created at or after this RFC 3339 time",
            ),
            (
                "created_before",
                Param::DateTime,
                "only documents created before this RFC 3339 time",
            ),
            (
                "after",
                Param::Pattern(grammar::KEY_CURSOR),
                "the cursor of the previous page's `next`",
            ),
            (
                "limit",
                Param::Integer(1, MAX_PAGE_SIZE as u64),
                "page size (default 50)",
            ),
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
    created_after: Option<String>,
    created_before: Option<String>,
    after: Option<String>,
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// The checked filter of a [`ListQuery`].
#[derive(Debug)]
struct Filter {
    owner: Option<PrincipalId>,
    content_type: Option<String>,
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
        let time = |name: &str, value: Option<String>| {
            value
                .map(|v| {
                    OffsetDateTime::parse(&v, &Rfc3339).map_err(|_| {
                        Error::invalid_input(format!("{name} is not an RFC 3339 time"))
                    })
                })
                .transpose()
        };
        Ok(Self {
            owner,
            content_type,
            created_after: time("created_after", query.created_after.take())?,
            created_before: time("created_before", query.created_before.take())?,
        })
    }

    /// Whether `meta` passes the filters the store did not apply.
    fn admits(&self, meta: &DocumentMeta) -> bool {
        self.content_type
            .as_ref()
            .is_none_or(|c| *c == meta.content_type)
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
    let Query(mut query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    let filter = Filter::parse(&mut query)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    let mut request = PageRequest::new(query.after, limit)?;
    let want = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut found: Vec<DocumentMeta> = Vec::with_capacity(want.min(64));
    let mut next = None;
    for _ in 0..SCAN_BATCHES {
        let page = match &filter.owner {
            Some(owner) => {
                (state.documents)
                    .list_by_owner(&caller.tenant, owner, &request)
                    .await?
            }
            None => state.documents.list(&caller.tenant, &request).await?,
        };
        let read = page.items.len();
        let mut taken = 0;
        for meta in page.items {
            taken += 1;
            if filter.admits(&meta) {
                found.push(meta);
                if found.len() == want {
                    break;
                }
            }
        }
        // Go on after the last document read: the page's own cursor when
        // it was read to its end, else the last document kept.
        next = if taken == read {
            page.next
        } else {
            found.last().map(|meta| meta.id.to_string())
        };
        match &next {
            Some(cursor) if found.len() < want => {
                request = PageRequest::new(Some(cursor.clone()), limit)?;
            }
            _ => break,
        }
    }
    crate::audit::document(&state, &caller, "document.list", "*", &headers);
    let items = found.iter().map(DocumentView::from).collect();
    Ok(no_store(&DocumentPage { items, next }))
}

#[cfg(test)]
mod tests;
