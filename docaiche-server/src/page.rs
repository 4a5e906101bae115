//! Pages of listings.
//!
//! [`of`]: the listings whose store returns a tenant's items whole (a
//! bounded number of them: privacy requests, legal holds): the items are
//! ordered by their UUIDv7 id (creation order) and a page holds at most
//! `limit` of those after the `after` cursor, so an answer stays small
//! however many were stored.
//!
//! [`filtered`]: the listings whose store pages its items and whose
//! filters the store does not apply (documents by content type and time,
//! API keys by status, expiry and use): at most [`SCAN_BATCHES`] store
//! pages are read per request, so one request never scans a whole tenant.

use std::future::Future;

use docaiche_core::Error;
use docaiche_core::page::{Page, PageRequest};
use uuid::Uuid;

/// Store pages a [`filtered`] listing reads at most per request.
pub(crate) const SCAN_BATCHES: usize = 8;

/// Default page size of these listings.
pub(crate) const DEFAULT_LIMIT: u32 = 100;

/// The page of `items` that `after` and `limit` (1 to
/// [`MAX_PAGE_SIZE`](docaiche_core::page::MAX_PAGE_SIZE), default
/// [`DEFAULT_LIMIT`]) ask for, in id order, and the cursor of the next one.
///
/// # Errors
/// [`Error::InvalidInput`] for a limit out of range or a cursor that is not
/// an id.
pub(crate) fn of<T>(
    mut items: Vec<T>,
    id: impl Fn(&T) -> Uuid,
    after: Option<String>,
    limit: Option<u32>,
) -> Result<(Vec<T>, Option<String>), Error> {
    let page = PageRequest::new(after, limit.unwrap_or(DEFAULT_LIMIT))?;
    let after = page
        .after
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| Error::invalid_input("malformed page cursor"))?;
    items.sort_by_key(|item| id(item));
    if let Some(after) = after {
        items.retain(|item| id(item) > after);
    }
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|item| id(item).to_string())
    } else {
        None
    };
    Ok((items, next))
}

/// The items of the store pages `fetch` gives (in the store's order, from
/// `request` on) that `admits` keeps: at most `request.limit` of them,
/// reading at most [`SCAN_BATCHES`] store pages of that size. A narrow
/// filter can so answer a short page, even an empty one, with the cursor
/// to go on from; the cursor is `None` only once the store has no more.
///
/// # Errors
/// Those of `fetch`.
pub(crate) async fn filtered<T, F, Fut>(
    mut request: PageRequest,
    mut fetch: F,
    admits: impl Fn(&T) -> bool,
    cursor_of: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), Error>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    let want = usize::try_from(request.limit).unwrap_or(usize::MAX);
    let mut found = Vec::new();
    let mut next = None;
    for _ in 0..SCAN_BATCHES {
        let page = fetch(request.clone()).await?;
        let read = page.items.len();
        let mut taken = 0;
        for item in page.items {
            taken += 1;
            if admits(&item) {
                found.push(item);
                if found.len() == want {
                    break;
                }
            }
        }
        // Go on after the last item read: the page's own cursor when it was
        // read to its end, else the last item kept.
        next = if taken == read {
            page.next
        } else {
            found.last().map(&cursor_of)
        };
        match &next {
            Some(cursor) if found.len() < want => {
                request = PageRequest::new(Some(cursor.clone()), request.limit)?;
            }
            _ => break,
        }
    }
    Ok((found, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_every_item_once_in_id_order() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let mut shuffled = ids.clone();
        shuffled.reverse();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (items, next) = of(shuffled.clone(), |id| *id, after, Some(2)).expect("page");
            assert!(items.len() <= 2);
            seen.extend(items);
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        assert!(of(ids.clone(), |id| *id, None, Some(0)).is_err());
        assert!(of(ids.clone(), |id| *id, None, Some(1001)).is_err());
        assert!(of(ids, |id| *id, Some("nope".into()), None).is_err());
    }

    /// A store of `n` numbered items, paged in id order by their number.
    fn store_page(n: u32, request: &PageRequest) -> Page<u32> {
        let after: u32 = request
            .after
            .as_deref()
            .map_or(0, |a| a.parse().expect("cursor"));
        let mut items: Vec<u32> = (after + 1..=n).take(request.limit as usize + 1).collect();
        let next = (items.len() > request.limit as usize).then(|| {
            items.truncate(request.limit as usize);
            items.last().expect("an item").to_string()
        });
        Page::new(items, next)
    }

    #[tokio::test]
    async fn a_filtered_listing_walks_every_match_once_in_bounded_requests() {
        for (n, limit, every) in [
            (100, 3, 7),
            (10, 5, 1),
            (50, 2, 50),
            (0, 4, 1),
            (30, 1000, 3),
        ] {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            let mut requests = 0;
            loop {
                requests += 1;
                assert!(requests < 1000, "the pages end");
                let fetched = std::cell::Cell::new(0);
                let request = PageRequest::new(after.clone(), limit).expect("request");
                let (items, next) = filtered(
                    request,
                    |page| {
                        fetched.set(fetched.get() + 1);
                        let page = store_page(n, &page);
                        async move { Ok(page) }
                    },
                    |item| item % every == 0,
                    u32::to_string,
                )
                .await
                .expect("page");
                assert!(
                    fetched.get() <= SCAN_BATCHES,
                    "{fetched:?} store pages read"
                );
                assert!(items.len() <= limit as usize);
                seen.extend(items);
                match next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let expected: Vec<u32> = (1..=n).filter(|i| i % every == 0).collect();
            assert_eq!(seen, expected, "n {n}, limit {limit}, every {every}");
        }
    }
}
