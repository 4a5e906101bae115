//! `[auth]`: the secrets provider, JWT and API-key settings, the roles and
//! their bindings, the failed-authentication tracker, and their checks.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use docaiche_auth::api_key::{ApiKeyConfig, ApiKeyFormat};
use docaiche_auth::jwt::{Algorithm, JwtConfig};
use docaiche_auth::lockout::{FailedAuthTracker, LockoutConfig};
use docaiche_auth::rbac::{RbacConfig, RoleBindings, RolePolicy};
use docaiche_core::{Error, PrincipalId, TenantId};
use serde::Deserialize;

use crate::config::Severity;

/// The roles of a configuration without `[auth.rbac]`.
const DEFAULT_ROLES: &str = r#"
[roles]
reader = ["documents:read", "jobs:read"]
editor = ["documents:*", "jobs:read"]
tenant-admin = ["documents:*", "jobs:read", "keys:manage", "accounts:manage", "audit:read", "admin:access"]
platform-admin = { grants = ["*:*"], cross_tenant = true }
"#;

/// The built-in roles ([`DEFAULT_ROLES`]).
fn default_roles() -> RbacConfig {
    toml::from_str(DEFAULT_ROLES).expect("invariant: the built-in roles parse")
}

/// `[auth]`: where the authentication secrets come from, how JWTs and API
/// keys are made, the roles, their bindings and the failed-authentication
/// tracker. Secrets are never written here: `provider` names where they are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthSection {
    /// `env` or `file:/directory`; unset in development only, where the
    /// secrets are generated under the data directory.
    pub(crate) provider: Option<String>,
    /// The API-key pepper versions to load (secret `api-key/pepper-v<n>`).
    pub(crate) pepper_versions: Vec<u16>,
    /// The pepper version new keys are hashed with.
    pub(crate) current_pepper: u16,
    /// `[auth.jwt]`.
    pub(crate) jwt: JwtSection,
    /// `[auth.api_keys]`: the library's API key settings.
    pub(crate) api_keys: ApiKeyConfig,
    /// `[auth.lockout]`: the failed-authentication tracker's settings.
    pub(crate) lockout: LockoutConfig,
    /// `[auth.rbac]`: the roles (replaces the built-in ones whole).
    pub(crate) rbac: RbacConfig,
    /// `[[auth.bindings]]`: roles held by principals in tenants.
    pub(crate) bindings: Vec<BindingConfig>,
    /// The role `server bootstrap-key` binds to the key's principal.
    pub(crate) bootstrap_role: String,
    /// Default overlap of a key rotation, in seconds.
    pub(crate) rotation_overlap_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            provider: None,
            pepper_versions: vec![1],
            current_pepper: 1,
            jwt: JwtSection::default(),
            api_keys: ApiKeyConfig::default(),
            lockout: LockoutConfig::default(),
            rbac: default_roles(),
            bindings: Vec::new(),
            bootstrap_role: "tenant-admin".into(),
            rotation_overlap_secs: 3600,
        }
    }
}

/// `[auth.jwt]`: this server's access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtSection {
    /// `iss` of the tokens.
    pub(crate) issuer: String,
    /// `aud` of the tokens.
    pub(crate) audience: String,
    /// The signing key's id (`kid`), published in the JWKS.
    pub(crate) kid: String,
    /// The signing algorithm: an asymmetric one (`EdDSA`, `ES256`, `ES384`,
    /// `RS256`, …) so that the public key can be published.
    pub(crate) algorithm: String,
    /// Access-token lifetime, in seconds.
    pub(crate) access_token_ttl_secs: u64,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            issuer: "urn:docaiche:server".into(),
            audience: "docaiche".into(),
            kid: "server-1".into(),
            algorithm: "EdDSA".into(),
            access_token_ttl_secs: 900,
        }
    }
}

/// One `[[auth.bindings]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingConfig {
    /// The tenant the binding applies in.
    pub(crate) tenant: String,
    /// The principal holding the role.
    pub(crate) principal: String,
    /// The role's name.
    pub(crate) role: String,
    /// Must be `true` to bind a cross-tenant role: such power is never
    /// granted implicitly.
    #[serde(default)]
    pub(crate) cross_tenant: bool,
}

/// Where the authentication secrets come from, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthProvider {
    /// Development: generated files under `<data_dir>/keys`.
    Generated,
    /// `DOCAICHE_SECRET_*` environment variables.
    Env,
    /// Files under a directory (mounted secrets).
    Dir(PathBuf),
}

impl AuthSection {
    /// The secret name of pepper `version`.
    pub(crate) fn pepper_secret(version: u16) -> String {
        format!("api-key/pepper-v{version}")
    }

    /// The secret name of the JWT signing key.
    pub(crate) const JWT_SECRET: &'static str = "jwt/signing-key";

    /// Parse `provider`.
    ///
    /// # Errors
    /// How to write it; never the value.
    pub(crate) fn provider(&self) -> Result<AuthProvider, &'static str> {
        match self.provider.as_deref() {
            None => Ok(AuthProvider::Generated),
            Some("env") => Ok(AuthProvider::Env),
            Some(other) => match other.strip_prefix("file:").map(Path::new) {
                Some(dir) if dir.is_absolute() => Ok(AuthProvider::Dir(dir.to_path_buf())),
                _ => Err(
                    "must be `env` (DOCAICHE_SECRET_* variables) or `file:/absolute/dir` \
                          (a directory of secret files)",
                ),
            },
        }
    }

    /// The signing algorithm.
    ///
    /// # Errors
    /// Unknown or symmetric algorithms.
    pub(crate) fn jwt_algorithm(&self) -> Result<Algorithm, &'static str> {
        let algorithm = Algorithm::from_str(&self.jwt.algorithm)
            .map_err(|_| "is not a JWS algorithm name, e.g. EdDSA or ES256")?;
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(
                "must be asymmetric (EdDSA, ES256, …) so the public key can be \
                        published at /.well-known/jwks.json",
            );
        }
        Ok(algorithm)
    }

    /// The library's JWT settings.
    pub(crate) fn jwt_config(&self) -> JwtConfig {
        JwtConfig::new(self.jwt.issuer.clone(), self.jwt.audience.clone())
            .with_access_token_ttl(Duration::from_secs(self.jwt.access_token_ttl_secs))
    }

    /// The validated roles.
    ///
    /// # Errors
    /// As [`RolePolicy::from_config`].
    pub(crate) fn role_policy(&self) -> Result<RolePolicy, Error> {
        RolePolicy::from_config(&self.rbac).map_err(|e| match e {
            Error::Misconfigured { setting, reason } => {
                Error::misconfigured(format!("auth.{setting}"), reason)
            }
            other => other,
        })
    }

    /// The configured bindings under `policy`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the entry: an invalid tenant or
    /// principal, an unknown role, or a cross-tenant role without
    /// `cross_tenant = true` (or the reverse).
    pub(crate) fn role_bindings(&self, policy: &RolePolicy) -> Result<RoleBindings, Error> {
        let mut bindings = RoleBindings::new();
        for (i, binding) in self.bindings.iter().enumerate() {
            let setting = format!("auth.bindings[{i}]");
            let bad = |e: Error| Error::misconfigured(setting.clone(), e.to_string());
            let tenant = TenantId::new(binding.tenant.as_str()).map_err(bad)?;
            let principal = PrincipalId::new(binding.principal.as_str()).map_err(bad)?;
            if binding.cross_tenant {
                bindings.bind_cross_tenant(policy, tenant, principal, &binding.role)
            } else {
                bindings.bind(policy, tenant, principal, &binding.role)
            }
            .map_err(|e| match e {
                Error::Forbidden { .. } => Error::misconfigured(
                    setting.clone(),
                    format!(
                        "`{}` is a cross-tenant role; bind it with cross_tenant = true",
                        binding.role
                    ),
                ),
                other => bad(other),
            })?;
        }
        Ok(bindings)
    }

    /// The findings of `[auth]`.
    pub(super) fn findings(
        &self,
        data_dir: &Path,
        secrets_configured: bool,
        add: &mut dyn FnMut(Severity, &str, Cow<'static, str>),
    ) {
        match self.provider() {
            // `[secrets] sources` supplies the secrets (checked there).
            Ok(AuthProvider::Generated) if secrets_configured => {}
            Ok(AuthProvider::Generated) => add(
                Severity::DevelopmentDefault,
                "auth.provider",
                format!(
                    "no secret provider is configured (development generates an API-key pepper \
                     and a JWT signing key under {}); set auth.provider to \"env\" \
                     (DOCAICHE_SECRET_API_KEY_PEPPER_V<n>, DOCAICHE_SECRET_JWT_SIGNING_KEY) or \
                     \"file:/absolute/dir\", or list the chain in secrets.sources \
                     (env, file:/absolute/dir, vault)",
                    data_dir.join("keys").display()
                )
                .into(),
            ),
            Ok(_) => {}
            Err(reason) => add(Severity::Invalid, "auth.provider", reason.into()),
        }
        if self.pepper_versions.is_empty() || self.pepper_versions.contains(&0) {
            add(
                Severity::Invalid,
                "auth.pepper_versions",
                "must list the pepper versions to load, each at least 1".into(),
            );
        } else if !self.pepper_versions.contains(&self.current_pepper) {
            add(
                Severity::Invalid,
                "auth.current_pepper",
                "must be one of auth.pepper_versions".into(),
            );
        }
        if let Err(reason) = self.jwt_algorithm() {
            add(Severity::Invalid, "auth.jwt.algorithm", reason.into());
        }
        if !docaiche_auth::jwt::key::is_valid_kid(&self.jwt.kid) {
            add(
                Severity::Invalid,
                "auth.jwt.kid",
                "must be 1 to 128 bytes of A-Z a-z 0-9 . _ - ~ + / =".into(),
            );
        }
        if let Err(Error::Misconfigured { setting, reason }) = self.jwt_config().validate() {
            add(
                Severity::Invalid,
                &format!("auth.{setting}")
                    .replace("jwt.access_token_ttl", "jwt.access_token_ttl_secs"),
                reason,
            );
        }
        if let Err(e) = ApiKeyFormat::new(&self.api_keys.prefix) {
            add(
                Severity::Invalid,
                "auth.api_keys.prefix",
                e.to_string().into(),
            );
        }
        if self.rotation_overlap_secs > self.api_keys.max_rotation_overlap_secs {
            add(
                Severity::Invalid,
                "auth.rotation_overlap_secs",
                "exceeds auth.api_keys.max_rotation_overlap_secs".into(),
            );
        }
        if let Err(Error::Misconfigured { setting, reason }) = FailedAuthTracker::new(
            self.lockout.clone(),
            Arc::new(docaiche_store::memory::MemoryAuditSink::new()),
        ) {
            add(
                Severity::Invalid,
                &setting.replace("lockout.", "auth.lockout."),
                reason,
            );
        }
        match self.role_policy() {
            Err(Error::Misconfigured { setting, reason }) => {
                add(Severity::Invalid, &setting, reason);
            }
            Err(other) => add(Severity::Invalid, "auth.rbac", other.to_string().into()),
            Ok(policy) => {
                if let Err(Error::Misconfigured { setting, reason }) = self.role_bindings(&policy) {
                    add(Severity::Invalid, &setting, reason);
                }
                if policy.role(&self.bootstrap_role).is_none() {
                    add(
                        Severity::Invalid,
                        "auth.bootstrap_role",
                        format!("`{}` is not a role of auth.rbac", self.bootstrap_role).into(),
                    );
                } else if policy.is_cross_tenant(&self.bootstrap_role) {
                    add(
                        Severity::Invalid,
                        "auth.bootstrap_role",
                        "must not be a cross-tenant role; bind one explicitly in \
                         [[auth.bindings]] with cross_tenant = true"
                            .into(),
                    );
                }
            }
        }
    }
}
