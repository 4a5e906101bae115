//! Pages of the listings whose store returns a tenant's items whole (a
//! bounded number of them: privacy requests, legal holds): the items are
//! ordered by their UUIDv7 id (creation order) and a page holds at most
//! `limit` of those after the `after` cursor, so an answer stays small
//! however many were stored.

use docaiche_core::Error;
use docaiche_core::page::PageRequest;
use uuid::Uuid;

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
}
