//! `[store]`: where API keys, revocations, audit events and documents
//! live (SQLite or PostgreSQL).

use std::str::FromStr;

use serde::Deserialize;

/// `[store] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoreBackend {
    /// SQLite in `storage.data_dir/docaiche.db` (default).
    #[default]
    Sqlite,
    /// PostgreSQL (feature `postgres`); `postgresql` is accepted too.
    #[serde(alias = "postgresql")]
    Postgres,
}

impl StoreBackend {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl FromStr for StoreBackend {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err("expected `sqlite` or `postgres`"),
        }
    }
}

/// `[store]`: the database behind API keys, revocations, audit events and
/// documents. The URLs are references (`env:`, `file:`, `vault:`), never
/// the URL: it may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreSection {
    /// `sqlite` (default) or `postgres`.
    pub(crate) backend: StoreBackend,
    /// PostgreSQL: reference to the primary's URL.
    pub(crate) url_source: Option<String>,
    /// PostgreSQL: reference to a read replica's URL.
    pub(crate) replica_url_source: Option<String>,
    /// PostgreSQL: the schema holding the tables (must exist).
    pub(crate) schema: Option<String>,
    /// PostgreSQL: enforce tenant isolation with row-level security.
    pub(crate) row_level_security: bool,
    /// PostgreSQL: `application_name` of the connections.
    pub(crate) application_name: String,
    /// Most connections open at once.
    pub(crate) max_connections: u32,
    /// Connections kept open when idle.
    pub(crate) min_connections: u32,
    /// How long a query waits for a connection, in milliseconds.
    pub(crate) acquire_timeout_ms: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            url_source: None,
            replica_url_source: None,
            schema: None,
            row_level_security: false,
            application_name: "docaiche-server".to_owned(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_ms: 5_000,
        }
    }
}
