//! Fine-grained permissions (`resource:action`), grants and roles.
//!
//! A [`Permission`] is always concrete: `documents:read`, never a wildcard.
//! Wildcards exist only in a [`Grant`], and grants are given to principals
//! only through a [`Role`], so "everything" is something an operator writes
//! down by name (`platform-admin = ["*:*"]`), never something a token or a
//! request can claim.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The segments of the built-in permissions, shared rather than copied
/// when parsed: principals (with their grants) are cloned on every
/// authenticated request, and a borrowed segment clones for free.
const KNOWN_SEGMENTS: [&str; 15] = [
    "documents",
    "jobs",
    "keys",
    "audit",
    "privacy",
    "admin",
    "tenants",
    "read",
    "write",
    "delete",
    "manage",
    "export",
    "erase",
    "access",
    "cross",
];

/// `segment` as a `'static` string when it is a known one, else owned.
fn segment(segment: &str) -> Cow<'static, str> {
    KNOWN_SEGMENTS
        .iter()
        .find(|known| **known == segment)
        .map_or_else(
            || Cow::Owned(segment.to_owned()),
            |known| Cow::Borrowed(*known),
        )
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The longest segment of a permission, in bytes.
const MAX_SEGMENT_LEN: usize = 48;

/// Serialize `resource:action` with one `serialize_str` of a stack buffer:
/// no formatter and no allocation on the hot path (every `whoami`, every
/// token issued). Segments that did not come through [`Permission::parse`]
/// may be longer than the buffer; those are formatted.
fn serialize_pair<S: Serializer>(s: S, resource: &str, action: &str) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 2 * MAX_SEGMENT_LEN + 1];
    let len = resource.len() + 1 + action.len();
    let Some(out) = buf.get_mut(..len) else {
        return s.collect_str(&format_args!("{resource}:{action}"));
    };
    let (head, tail) = out.split_at_mut(resource.len());
    head.copy_from_slice(resource.as_bytes());
    if let Some((colon, rest)) = tail.split_first_mut() {
        *colon = b':';
        rest.copy_from_slice(action.as_bytes());
    }
    // Two `str`s joined by an ASCII byte are UTF-8.
    match std::str::from_utf8(out) {
        Ok(text) => s.serialize_str(text),
        Err(_) => s.collect_str(&format_args!("{resource}:{action}")),
    }
}

/// A concrete permission, `resource:action`, e.g. `documents:read`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    resource: Cow<'static, str>,
    action: Cow<'static, str>,
}

impl Permission {
    /// Read documents and their extracted text.
    pub const DOCUMENTS_READ: Self = Self::from_static("documents", "read");
    /// Upload documents.
    pub const DOCUMENTS_WRITE: Self = Self::from_static("documents", "write");
    /// Delete documents.
    pub const DOCUMENTS_DELETE: Self = Self::from_static("documents", "delete");
    /// Read background job status.
    pub const JOBS_READ: Self = Self::from_static("jobs", "read");
    /// Create, list, rotate and revoke API keys of one's tenant.
    pub const KEYS_MANAGE: Self = Self::from_static("keys", "manage");
    /// Read the audit trail of one's tenant.
    pub const AUDIT_READ: Self = Self::from_static("audit", "read");
    /// Export a data subject's data.
    pub const PRIVACY_EXPORT: Self = Self::from_static("privacy", "export");
    /// Erase a data subject's data.
    pub const PRIVACY_ERASE: Self = Self::from_static("privacy", "erase");
    /// Use the administrative API of one's tenant (`/v1/admin/...`).
    pub const ADMIN_ACCESS: Self = Self::from_static("admin", "access");
    /// Act on tenants other than one's own. Granted only explicitly, through a
    /// role that names it; checked by [`crate::Principal::authorize_tenant`].
    pub const TENANTS_CROSS: Self = Self::from_static("tenants", "cross");

    /// A permission from static parts. For constants; panics at compile time
    /// if used in a `const` with an invalid segment.
    ///
    /// # Panics
    /// If either segment is empty (checked in `const` context at compile time).
    #[must_use]
    pub const fn from_static(resource: &'static str, action: &'static str) -> Self {
        assert!(
            !resource.is_empty() && !action.is_empty(),
            "empty permission segment"
        );
        Self {
            resource: Cow::Borrowed(resource),
            action: Cow::Borrowed(action),
        }
    }

    /// Parse `resource:action`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless both segments are 1–48 characters of
    /// lowercase ASCII, digits, `-` and `_`, starting with a letter. In
    /// particular, `*` is rejected: wildcards are [`Grant`]s.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let (resource, action) = s
            .split_once(':')
            .ok_or_else(|| Error::invalid_input("permission must be `resource:action`"))?;
        if !valid_segment(resource) || !valid_segment(action) {
            return Err(Error::invalid_input(
                "permission segments must be lowercase letters, digits, - and _",
            ));
        }
        Ok(Self {
            resource: segment(resource),
            action: segment(action),
        })
    }

    /// The resource segment.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The action segment.
    #[must_use]
    pub fn action(&self) -> &str {
        &self.action
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({self})")
    }
}

impl FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_pair(s, &self.resource, &self.action)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a role grants: a concrete permission, every action on a resource
/// (`documents:*`), or everything (`*:*`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// Exactly this permission.
    Exact(Permission),
    /// Every action on this resource.
    AnyAction(Cow<'static, str>),
    /// Every permission, including [`Permission::TENANTS_CROSS`].
    Everything,
}

impl Grant {
    /// Parse `resource:action`, `resource:*` or `*:*`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else (`*:read` included: a
    /// wildcard resource with a fixed action is too easy to misread).
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.split_once(':') {
            Some(("*", "*")) => Ok(Self::Everything),
            Some((resource, "*")) if valid_segment(resource) => {
                Ok(Self::AnyAction(segment(resource)))
            }
            _ => Permission::parse(s).map(Self::Exact),
        }
    }

    /// Whether this grant covers `permission`.
    #[must_use]
    pub fn covers(&self, permission: &Permission) -> bool {
        match self {
            Self::Exact(p) => p == permission,
            Self::AnyAction(resource) => resource.as_ref() == permission.resource(),
            Self::Everything => true,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(p) => fmt::Display::fmt(p, f),
            Self::AnyAction(r) => write!(f, "{r}:*"),
            Self::Everything => f.write_str("*:*"),
        }
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grant({self})")
    }
}

impl From<Permission> for Grant {
    fn from(p: Permission) -> Self {
        Self::Exact(p)
    }
}

impl Serialize for Grant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Exact(p) => p.serialize(s),
            Self::AnyAction(resource) => serialize_pair(s, resource, "*"),
            Self::Everything => s.serialize_str("*:*"),
        }
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of grants: a principal's effective permissions. Deny by default: an
/// empty set allows nothing.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermissionSet(BTreeSet<Grant>);

impl PermissionSet {
    /// The empty set (allows nothing).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a grant.
    pub fn insert(&mut self, grant: impl Into<Grant>) {
        self.0.insert(grant.into());
    }

    /// Whether some grant covers `permission`.
    #[must_use]
    pub fn allows(&self, permission: &Permission) -> bool {
        self.0.iter().any(|g| g.covers(permission))
    }

    /// Whether every grant of `other` is covered by this set: used to stop
    /// scope escalation (an API key may carry only a subset of its creator's
    /// permissions).
    #[must_use]
    pub fn contains_all(&self, other: &Self) -> bool {
        other.0.iter().all(|g| match g {
            Grant::Exact(p) => self.allows(p),
            Grant::AnyAction(r) => self.0.iter().any(|mine| match mine {
                Grant::AnyAction(m) => m == r,
                Grant::Everything => true,
                Grant::Exact(_) => false,
            }),
            Grant::Everything => self.0.contains(&Grant::Everything),
        })
    }

    /// The grants, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.0.iter()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl<G: Into<Grant>> FromIterator<G> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = G>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

/// A named bundle of grants. Policy is data: roles come from configuration or
/// a store, never from code paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Role {
    /// The role's name, e.g. `reader`, `tenant-admin`.
    pub name: String,
    /// What it grants.
    pub grants: PermissionSet,
}

impl Role {
    /// A role named `name` granting `grants`.
    pub fn new(name: impl Into<String>, grants: impl IntoIterator<Item = Grant>) -> Self {
        Self {
            name: name.into(),
            grants: grants.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_its_display_form() {
        let long = "r".repeat(90);
        let grants = [
            Grant::Exact(Permission::DOCUMENTS_READ),
            Grant::parse("documents:*").expect("valid"),
            Grant::Everything,
            // Longer than a parsed permission can be: the formatted path.
            Grant::Exact(Permission::from_static(long.clone().leak(), "read")),
            Grant::AnyAction(Cow::Owned(long)),
        ];
        for grant in grants {
            let json = serde_json::to_string(&grant).expect("serializes");
            assert_eq!(json, format!("\"{grant}\""));
            if let Grant::Exact(p) = &grant {
                assert_eq!(serde_json::to_string(p).expect("serializes"), json);
            }
        }
    }

    #[test]
    fn parses_and_displays_permissions() {
        let p = Permission::parse("documents:read").expect("valid");
        assert_eq!(p, Permission::DOCUMENTS_READ);
        assert_eq!(p.to_string(), "documents:read");
        for bad in [
            "documents",
            "documents:",
            ":read",
            "*:*",
            "documents:*",
            "Docs:read",
            "a:b:c",
            "a b:c",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_only_as_grants() {
        assert_eq!(Grant::parse("*:*").ok(), Some(Grant::Everything));
        assert!(matches!(
            Grant::parse("documents:*"),
            Ok(Grant::AnyAction(_))
        ));
        assert!(Grant::parse("*:read").is_err());
        let set: PermissionSet = [Grant::parse("documents:*").expect("valid")]
            .into_iter()
            .collect();
        assert!(set.allows(&Permission::DOCUMENTS_DELETE));
        assert!(!set.allows(&Permission::KEYS_MANAGE));
    }

    #[test]
    fn empty_set_denies_everything() {
        let set = PermissionSet::new();
        assert!(!set.allows(&Permission::ADMIN_ACCESS));
        assert!(!set.allows(&Permission::TENANTS_CROSS));
    }

    #[test]
    fn contains_all_prevents_scope_escalation() {
        let creator: PermissionSet = [Permission::DOCUMENTS_READ, Permission::KEYS_MANAGE]
            .into_iter()
            .collect();
        let subset: PermissionSet = [Permission::DOCUMENTS_READ].into_iter().collect();
        let escalated: PermissionSet = [Permission::DOCUMENTS_READ, Permission::ADMIN_ACCESS]
            .into_iter()
            .collect();
        let wildcard: PermissionSet = [Grant::parse("documents:*").expect("valid")]
            .into_iter()
            .collect();
        assert!(creator.contains_all(&subset));
        assert!(!creator.contains_all(&escalated));
        assert!(!creator.contains_all(&wildcard));
        let admin: PermissionSet = [Grant::Everything].into_iter().collect();
        assert!(admin.contains_all(&wildcard));
        assert!(admin.contains_all(&escalated));
    }
}
