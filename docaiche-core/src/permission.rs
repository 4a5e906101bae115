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

/// The longest permission or grant name, `resource:action`, in bytes: two
/// segments of at most 48 bytes and the colon.
pub const MAX_PERMISSION_LEN: usize = 2 * MAX_SEGMENT_LEN + 1;

/// The most grants one API key (or any other stored scope list) carries.
///
/// Enforced where scopes are created (`docaiche_auth`'s `ApiKeyService`
/// refuses more) and where they are read back
/// ([`PermissionSet::from_json_bounded`]: a store never returns more, so a
/// record written before this bound existed cannot make a listing or an
/// export slow or huge).
pub const MAX_SCOPES: usize = 64;

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
    /// Manage the password accounts of one's tenant: invite, change roles,
    /// disable, reset passwords, sign out (`/v1/accounts`); define the
    /// tenant's custom roles (`/v1/roles`).
    pub const ACCOUNTS_MANAGE: Self = Self::from_static("accounts", "manage");
    /// Use the administrative API of one's tenant (`/v1/admin/...`).
    pub const ADMIN_ACCESS: Self = Self::from_static("admin", "access");
    /// Act on tenants other than one's own. Granted only explicitly, through a
    /// role that names it; checked by [`crate::Principal::authorize_tenant`].
    pub const TENANTS_CROSS: Self = Self::from_static("tenants", "cross");

    /// Every built-in permission: the default [`PermissionCatalog`].
    pub const BUILTIN: [Self; 11] = [
        Self::DOCUMENTS_READ,
        Self::DOCUMENTS_WRITE,
        Self::DOCUMENTS_DELETE,
        Self::JOBS_READ,
        Self::KEYS_MANAGE,
        Self::AUDIT_READ,
        Self::PRIVACY_EXPORT,
        Self::PRIVACY_ERASE,
        Self::ACCOUNTS_MANAGE,
        Self::ADMIN_ACCESS,
        Self::TENANTS_CROSS,
    ];

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

    /// How many grants the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Keep only the first `max` grants (in order), dropping the rest: the
    /// set then allows less, never more.
    pub fn truncate(&mut self, max: usize) {
        if let Some(first_dropped) = self.0.iter().nth(max).cloned() {
            drop(self.0.split_off(&first_dropped));
        }
    }

    /// Read a set stored as a JSON array of grant names (its `Serialize`
    /// form), keeping at most `max` grants, the first in stored order; the
    /// rest of the array is skipped unparsed. The text may be a prefix of
    /// the stored array (a store reading only the first bytes of a column):
    /// an array cut short keeps the names before the cut.
    ///
    /// This is how stores bound what they load: however many grants were
    /// written (by a version before [`MAX_SCOPES`] existed), reading costs a
    /// scan of `text` and at most `max` parsed names. Dropping grants only
    /// ever takes permissions away.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `text` is not a (possibly cut) JSON array
    /// of valid grant names.
    pub fn from_json_bounded(text: &str, max: usize) -> Result<Self, Error> {
        match bounded_grants(text, max) {
            Ok(set) => Ok(set),
            Err(e) if e.is_eof() => {
                // Cut short: keep the names before the last complete one's
                // closing quote. Grant names hold no quotes or escapes.
                let end = text.rfind("\",").map_or(0, |at| at + 1);
                let head = text.get(..end).filter(|head| head.starts_with('['));
                match head {
                    Some(head) => bounded_grants(&format!("{head}]"), max),
                    None => bounded_grants("[]", max),
                }
                .map_err(|_| Error::invalid_input("stored permissions are not a json array"))
            }
            Err(_) => Err(Error::invalid_input(
                "stored permissions are not a json array of grant names",
            )),
        }
    }
}

/// At most `max` grants of the JSON array `text`.
fn bounded_grants(text: &str, max: usize) -> Result<PermissionSet, serde_json::Error> {
    use serde::de::{IgnoredAny, SeqAccess, Visitor};

    struct Bounded(usize);

    impl<'de> Visitor<'de> for Bounded {
        type Value = PermissionSet;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of grant names")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PermissionSet, A::Error> {
            let mut set = BTreeSet::new();
            // Counts elements, not distinct grants: duplicates cost too.
            for _ in 0..self.0 {
                match seq.next_element::<Grant>()? {
                    Some(grant) => {
                        set.insert(grant);
                    }
                    None => return Ok(PermissionSet(set)),
                }
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(PermissionSet(set))
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(text);
    let set = serde::Deserializer::deserialize_seq(&mut deserializer, Bounded(max))?;
    deserializer.end()?;
    Ok(set)
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

/// The permissions a deployment knows: what API key scopes (and other
/// client-chosen permission lists) are checked against, so that a caller
/// can name only permissions that mean something.
///
/// A scope is accepted when it is a permission of the catalogue, a
/// wildcard over a resource of the catalogue (`documents:*`), or `*:*`:
/// the same forms roles use ([`Grant`]). Anything else (`documents:frobnicate`,
/// `reports:*` when no `reports:` permission exists, `*:read`) is refused.
/// Whether the caller may *grant* an accepted scope is a separate check
/// ([`PermissionSet::contains_all`]).
///
/// [`PermissionCatalog::builtin`] holds [`Permission::BUILTIN`]; an
/// embedder with permissions of its own adds them with
/// [`PermissionCatalog::with`].
///
/// ```
/// use docaiche_core::permission::{Grant, Permission, PermissionCatalog};
///
/// let catalog = PermissionCatalog::builtin().with(Permission::parse("reports:read")?);
/// assert!(catalog.parse_grant("documents:read").is_ok());
/// assert!(catalog.parse_grant("reports:*").is_ok());
/// assert!(catalog.parse_grant("documents:frobnicate").is_err());
/// # Ok::<(), docaiche_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionCatalog {
    permissions: BTreeSet<Permission>,
}

impl PermissionCatalog {
    /// The built-in permissions ([`Permission::BUILTIN`]).
    #[must_use]
    pub fn builtin() -> Self {
        Self::new(Permission::BUILTIN)
    }

    /// Exactly `permissions`.
    pub fn new(permissions: impl IntoIterator<Item = Permission>) -> Self {
        Self {
            permissions: permissions.into_iter().collect(),
        }
    }

    /// Add `permission`.
    #[must_use]
    pub fn with(mut self, permission: Permission) -> Self {
        self.permissions.insert(permission);
        self
    }

    /// The permissions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.permissions.iter()
    }

    /// Every name [`Self::parse_grant`] accepts, in order: the permissions,
    /// then a `resource:*` per resource, then `*:*`.
    #[must_use]
    pub fn grant_names(&self) -> Vec<String> {
        let resources: BTreeSet<&str> = self.permissions.iter().map(Permission::resource).collect();
        self.permissions
            .iter()
            .map(ToString::to_string)
            .chain(resources.into_iter().map(|r| format!("{r}:*")))
            .chain(std::iter::once("*:*".to_owned()))
            .collect()
    }

    /// Whether `grant` names only what the catalogue knows (see the type
    /// docs).
    #[must_use]
    pub fn knows(&self, grant: &Grant) -> bool {
        match grant {
            Grant::Exact(permission) => self.permissions.contains(permission),
            Grant::AnyAction(resource) => self
                .permissions
                .iter()
                .any(|p| p.resource() == resource.as_ref()),
            Grant::Everything => true,
        }
    }

    /// Parse `name` as a grant the catalogue knows.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is longer than
    /// [`MAX_PERMISSION_LEN`], is not a grant (`resource:action`,
    /// `resource:*`, `*:*`), or names a permission or resource not in the
    /// catalogue. The message never quotes `name`.
    pub fn parse_grant(&self, name: &str) -> Result<Grant, Error> {
        if name.len() > MAX_PERMISSION_LEN {
            return Err(Error::invalid_input(format!(
                "a permission is at most {MAX_PERMISSION_LEN} bytes"
            )));
        }
        let grant = Grant::parse(name)?;
        if self.knows(&grant) {
            Ok(grant)
        } else {
            Err(Error::invalid_input("unknown permission"))
        }
    }

    /// Check scopes chosen by a client: at most [`MAX_SCOPES`] grants, each
    /// known to the catalogue.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] with a field error at `pointer` naming the
    /// first problem.
    pub fn check_scopes(&self, scopes: &PermissionSet, pointer: &str) -> Result<(), Error> {
        let problem = if scopes.len() > MAX_SCOPES {
            Some(format!("at most {MAX_SCOPES} permissions"))
        } else {
            scopes
                .iter()
                .find(|grant| !self.knows(grant))
                .map(|grant| format!("unknown permission `{grant}`"))
        };
        match problem {
            None => Ok(()),
            Some(detail) => Err(Error::invalid_fields(
                "the scopes are invalid",
                vec![crate::error::FieldError::new(pointer, detail)],
            )),
        }
    }
}

impl Default for PermissionCatalog {
    fn default() -> Self {
        Self::builtin()
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

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn the_catalogue_accepts_known_permissions_and_their_wildcards_only() {
        let catalog = PermissionCatalog::builtin();
        for ok in [
            "documents:read",
            "tenants:cross",
            "documents:*",
            "jobs:*",
            "*:*",
        ] {
            assert!(catalog.parse_grant(ok).is_ok(), "{ok}");
        }
        let long = format!("documents:{}", "a".repeat(MAX_PERMISSION_LEN));
        for refused in [
            "documents:frobnicate",
            "reports:read",
            "reports:*",
            "*:read",
            "documents",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    catalog.parse_grant(refused),
                    Err(Error::InvalidInput { .. })
                ),
                "{refused}"
            );
        }
        let names = catalog.grant_names();
        // Every exact permission, a wildcard per resource, and `*:*`.
        let builtin = Permission::BUILTIN;
        let resources: std::collections::BTreeSet<&str> =
            builtin.iter().map(Permission::resource).collect();
        assert_eq!(names.len(), Permission::BUILTIN.len() + resources.len() + 1);
        assert!(names.iter().all(|n| catalog.parse_grant(n).is_ok()));
        let extended = catalog.with(Permission::parse("reports:read").expect("valid"));
        assert!(extended.parse_grant("reports:*").is_ok());
    }

    #[test]
    fn check_scopes_caps_the_count_and_names_unknown_permissions() {
        let catalog = PermissionCatalog::builtin();
        let known: PermissionSet = [Permission::DOCUMENTS_READ].into_iter().collect();
        assert!(catalog.check_scopes(&known, "/scopes").is_ok());
        let made_up: PermissionSet = [Permission::parse("documents:x").expect("valid")]
            .into_iter()
            .collect();
        let Err(Error::InvalidInput { fields, .. }) = catalog.check_scopes(&made_up, "/scopes")
        else {
            panic!("refused");
        };
        assert_eq!(fields[0].pointer, "/scopes");
        let many: PermissionSet = (0..=MAX_SCOPES)
            .map(|i| Permission::parse(&format!("documents:a{i}")).expect("valid"))
            .collect();
        assert!(catalog.check_scopes(&many, "/scopes").is_err());
    }

    #[test]
    fn a_huge_stored_set_loads_bounded() {
        let huge: Vec<String> = (0..200_000).map(|i| format!("documents:x{i:06}")).collect();
        let text = serde_json::to_string(&huge).expect("json");
        let set = PermissionSet::from_json_bounded(&text, MAX_SCOPES).expect("loads");
        assert_eq!(set.len(), MAX_SCOPES);
        // A prefix cut anywhere keeps the complete names before the cut.
        let cut = &text[..8192];
        let set = PermissionSet::from_json_bounded(cut, MAX_SCOPES).expect("loads");
        assert_eq!(set.len(), MAX_SCOPES);
        let set = PermissionSet::from_json_bounded(&text[..45], MAX_SCOPES).expect("loads");
        assert_eq!(set.len(), 2, "{}", &text[..45]);
        assert!(
            PermissionSet::from_json_bounded("[", 8)
                .expect("empty")
                .is_empty()
        );
        // Small sets round-trip.
        let small: PermissionSet = [Grant::Everything, Grant::Exact(Permission::JOBS_READ)]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&small).expect("json");
        assert_eq!(
            PermissionSet::from_json_bounded(&text, MAX_SCOPES).expect("loads"),
            small
        );
        for bad in ["{}", "[1]", "[\"Bad:x\"]", "nope"] {
            assert!(PermissionSet::from_json_bounded(bad, 8).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncate_keeps_the_first_grants() {
        let mut set: PermissionSet = Permission::BUILTIN.into_iter().collect();
        let first: Vec<Grant> = set.iter().take(3).cloned().collect();
        set.truncate(3);
        assert_eq!(set.iter().cloned().collect::<Vec<_>>(), first);
        set.truncate(10);
        assert_eq!(set.len(), 3);
    }
}
