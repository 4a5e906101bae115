//! Keyset pagination shared by every listing method.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest page any store returns.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Which page to fetch: items strictly after `after` (an opaque cursor from
/// the previous [`Page::next`]), at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PageRequest {
    /// Cursor returned by the previous page; `None` for the first page.
    pub after: Option<String>,
    /// Maximum number of items, 1 to [`MAX_PAGE_SIZE`].
    pub limit: u32,
}

impl PageRequest {
    /// The first page of up to `limit` items.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `limit` is 0 or above [`MAX_PAGE_SIZE`].
    pub fn first(limit: u32) -> Result<Self> {
        Self::new(None, limit)
    }

    /// The page after `after`, of up to `limit` items.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `limit` is 0 or above [`MAX_PAGE_SIZE`], or
    /// the cursor is longer than 128 bytes.
    pub fn new(after: Option<String>, limit: u32) -> Result<Self> {
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(Error::invalid_input(format!(
                "page size must be 1 to {MAX_PAGE_SIZE}"
            )));
        }
        if after.as_ref().is_some_and(|c| c.len() > 128) {
            return Err(Error::invalid_input("page cursor is too long"));
        }
        Ok(Self { after, limit })
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: 100,
        }
    }
}

/// One page of results, in the store's documented order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page, `None` when this is the last one.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items` with the given continuation cursor.
    #[must_use]
    pub const fn new(items: Vec<T>, next: Option<String>) -> Self {
        Self { items, next }
    }
}
