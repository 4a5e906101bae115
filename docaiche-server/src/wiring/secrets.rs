//! `[secrets]` into a provider chain (env, file, Vault KV v2): the named
//! secrets the configuration requires, resolved once at start-up, and the
//! environment snapshot the `env` source reads.

use std::sync::Arc;

use docaiche_core::{Error, SecretProvider, SecretString};
use docaiche_store::{EnvSecretProvider, FileSecretProvider, SecretChain};

use crate::config::{AuthProvider, AuthSection, Config, EnvLookup, SecretRef, SecretSource};

/// Where the named secrets come from, and the clients `*_source`
/// references may need.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    /// The provider chain; `None` in development without any configured
    /// source (secrets are then generated under the data directory).
    chain: Option<Arc<dyn SecretProvider>>,
    /// The setting the chain comes from (`secrets.sources` or the older
    /// `auth.provider`), for messages.
    setting: &'static str,
    /// The Vault KV provider, when Vault is configured.
    #[cfg(feature = "vault")]
    vault_kv: Option<Arc<docaiche_store::vault::VaultSecretProvider>>,
    /// The Vault client, when Vault is configured.
    #[cfg(feature = "vault")]
    vault: Option<docaiche_store::vault::VaultClient>,
}

/// The secret names the server reads through the chain.
pub(crate) fn required_secret_names(auth: &AuthSection) -> Vec<String> {
    let mut names: Vec<String> = auth
        .pepper_versions
        .iter()
        .map(|&v| AuthSection::pepper_secret(v))
        .collect();
    names.push(AuthSection::JWT_SECRET.to_owned());
    names
}

impl Secrets {
    /// The chain `config` asks for: `secrets.sources` in order, else the
    /// older `auth.provider` (`env` or `file:/dir`), else none (development).
    /// The `env` source reads a snapshot of the `DOCAICHE_SECRET_*`
    /// variables of the required secrets through `env`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the setting: an invalid entry, an
    /// unreadable directory, Vault asked for but not configured or not
    /// built in, or its credentials missing.
    pub(crate) async fn from_config(config: &Config, env: EnvLookup<'_>) -> Result<Self, Error> {
        #[cfg(feature = "vault")]
        let vault = if config.uses_vault() {
            Some(vault::client(config, env)?)
        } else {
            None
        };
        #[cfg(feature = "vault")]
        let vault_kv = vault
            .clone()
            .map(|client| Arc::new(docaiche_store::vault::VaultSecretProvider::new(client)));

        let (setting, sources) = if config.secrets.sources.is_empty() {
            let sources = match config
                .auth
                .provider()
                .map_err(|reason| Error::misconfigured("auth.provider", reason))?
            {
                AuthProvider::Generated => Vec::new(),
                AuthProvider::Env => vec![SecretSource::Env],
                AuthProvider::Dir(dir) => vec![SecretSource::Dir(dir)],
            };
            ("auth.provider", sources)
        } else {
            let chain = config
                .secrets
                .chain()
                .map_err(|reason| Error::misconfigured("secrets.sources", reason))?;
            ("secrets.sources", chain)
        };
        let mut providers: Vec<Arc<dyn SecretProvider>> = Vec::new();
        for source in sources {
            match source {
                SecretSource::Env => providers.push(Arc::new(env_snapshot(&config.auth, env)?)),
                SecretSource::Dir(dir) => {
                    let provider = FileSecretProvider::new(&dir).map_err(|_| {
                        Error::misconfigured(
                            setting,
                            format!("{} is not a readable directory", dir.display()),
                        )
                    })?;
                    providers.push(Arc::new(provider));
                }
                SecretSource::Vault => {
                    #[cfg(feature = "vault")]
                    {
                        let kv = vault_kv.clone().ok_or_else(|| {
                            Error::misconfigured("secrets.vault.address", "Vault is not configured")
                        })?;
                        providers.push(kv);
                    }
                    #[cfg(not(feature = "vault"))]
                    return Err(Error::misconfigured(
                        setting,
                        crate::config::missing_feature("vault"),
                    ));
                }
            }
        }
        let chain: Option<Arc<dyn SecretProvider>> = if providers.is_empty() {
            None
        } else {
            Some(Arc::new(SecretChain::new(providers)))
        };
        Ok(Self {
            chain,
            setting,
            #[cfg(feature = "vault")]
            vault_kv,
            #[cfg(feature = "vault")]
            vault,
        })
    }

    /// The chain, or `None` for generated development secrets.
    pub(crate) fn chain(&self) -> Option<&Arc<dyn SecretProvider>> {
        self.chain.as_ref()
    }

    /// The Vault client, if Vault is configured.
    #[cfg(feature = "vault")]
    pub(crate) const fn vault(&self) -> Option<&docaiche_store::vault::VaultClient> {
        self.vault.as_ref()
    }

    /// Check that every secret the server needs is in the chain, so that a
    /// missing one stops start-up with its name (and where it was looked
    /// for) rather than failing a request later.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first missing secret; the
    /// provider's error (e.g. Vault unreachable) as is.
    pub(crate) async fn require(&self, names: &[String]) -> Result<(), Error> {
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        for name in names {
            if chain.get(name).await?.is_none() {
                let variable = EnvSecretProvider::new()
                    .variable_name(name)
                    .unwrap_or_else(|_| name.clone());
                return Err(Error::misconfigured(
                    self.setting,
                    format!(
                        "the required secret `{name}` is in none of the sources ({}); set \
                         {variable}, or the file `{name}` under a file: source, or the KV \
                         secret `{name}`",
                        chain.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The value a `*_source` setting refers to: `env:NAME` through `env`,
    /// `file:/path`, or `vault:path` from the Vault KV mount. A literal
    /// (allowed in development only, `validate` refuses it in production)
    /// is its own value.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming `setting` when the secret is missing
    /// (never repeating a value).
    pub(crate) async fn resolve(
        &self,
        setting: &'static str,
        value: &str,
        env: EnvLookup<'_>,
    ) -> Result<SecretString, Error> {
        match plain_reference(setting, value, env)? {
            Resolved::Value(secret) => Ok(secret),
            Resolved::Vault(path) => {
                #[cfg(feature = "vault")]
                {
                    let kv = self.vault_kv.as_ref().ok_or_else(|| {
                        Error::misconfigured(
                            setting,
                            "is a vault: reference, but [secrets.vault] is not configured",
                        )
                    })?;
                    let found = kv.get(&path).await?.ok_or_else(|| {
                        Error::misconfigured(
                            setting,
                            format!("the Vault secret `{path}` is missing"),
                        )
                    })?;
                    // Borrowed: the only copy made is the one inside the Secret.
                    let text = std::str::from_utf8(found.value.expose_secret())
                        .map_err(|_| Error::misconfigured(setting, "the secret is not UTF-8"))?;
                    Ok(SecretString::new(text.trim_end().to_owned()))
                }
                #[cfg(not(feature = "vault"))]
                {
                    let _ = path;
                    Err(Error::misconfigured(
                        setting,
                        crate::config::missing_feature("vault"),
                    ))
                }
            }
        }
    }
}

/// A reference resolved without Vault, or the Vault path still to read.
enum Resolved {
    /// The value.
    Value(SecretString),
    /// A `vault:` path.
    Vault(String),
}

/// Resolve an `env:` or `file:` reference (or a literal); `vault:` is left
/// to the caller.
fn plain_reference(
    setting: &'static str,
    value: &str,
    env: EnvLookup<'_>,
) -> Result<Resolved, Error> {
    if !SecretRef::looks_like_reference(value) {
        return Ok(Resolved::Value(SecretString::new(value.to_owned())));
    }
    match SecretRef::parse(value).map_err(|reason| Error::misconfigured(setting, reason))? {
        SecretRef::Env(name) => env(&name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| Resolved::Value(SecretString::new(v.trim().to_owned())))
            .ok_or_else(|| {
                Error::misconfigured(setting, format!("environment variable {name} is not set"))
            }),
        SecretRef::File(path) => std::fs::read_to_string(&path)
            .map(|v| Resolved::Value(SecretString::new(v.trim_end().to_owned())))
            .map_err(|e| {
                Error::misconfigured(setting, format!("cannot read {}: {e}", path.display()))
            }),
        SecretRef::Vault(path) => Ok(Resolved::Vault(path)),
    }
}

/// An [`EnvSecretProvider`] over a snapshot of the variables of the
/// required secrets, read through `env` (the process environment in
/// `main`, a map in tests).
fn env_snapshot(auth: &AuthSection, env: EnvLookup<'_>) -> Result<EnvSecretProvider, Error> {
    let naming = EnvSecretProvider::new();
    let mut vars = Vec::new();
    let audit = crate::audit::SECRET_NAMES.iter().map(|&n| n.to_owned());
    let privacy = crate::privacy::SECRET_NAMES.iter().map(|&n| n.to_owned());
    for name in required_secret_names(auth)
        .into_iter()
        .chain(audit)
        .chain(privacy)
    {
        let variable = naming.variable_name(&name)?;
        if let Some(value) = env(&variable).filter(|v| !v.is_empty()) {
            vars.push((variable, SecretString::new(value)));
        }
    }
    Ok(EnvSecretProvider::from_vars(vars))
}

#[cfg(feature = "vault")]
mod vault {
    use docaiche_core::Error;
    use docaiche_store::vault::{VaultAuth, VaultClient, VaultConfig};

    use super::{Resolved, plain_reference};
    use crate::config::{Config, EnvLookup};

    /// A credential from an `env:` or `file:` reference (or a development
    /// literal); `vault:` is refused (Vault cannot hold its own login).
    fn credential(
        setting: &'static str,
        value: Option<&str>,
        env: EnvLookup<'_>,
    ) -> Result<docaiche_core::SecretString, Error> {
        let value = value.ok_or_else(|| Error::misconfigured(setting, "is required"))?;
        match plain_reference(setting, value, env)? {
            Resolved::Value(secret) => Ok(secret),
            Resolved::Vault(_) => Err(Error::misconfigured(
                setting,
                "cannot be a vault: reference; use env:NAME or file:/path",
            )),
        }
    }

    /// The Vault client of `[secrets.vault]`. Sends nothing: the first
    /// read logs in.
    pub(super) fn client(config: &Config, env: EnvLookup<'_>) -> Result<VaultClient, Error> {
        let section = &config.secrets.vault;
        let address = section
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::misconfigured("secrets.vault.address", "is required"))?;
        let auth = if section.token_source.is_some() {
            VaultAuth::token(credential(
                "secrets.vault.token_source",
                section.token_source.as_deref(),
                env,
            )?)
        } else {
            let mut auth = VaultAuth::approle(
                credential(
                    "secrets.vault.role_id_source",
                    section.role_id_source.as_deref(),
                    env,
                )?,
                credential(
                    "secrets.vault.secret_id_source",
                    section.secret_id_source.as_deref(),
                    env,
                )?,
            );
            if let VaultAuth::AppRole { mount, .. } = &mut auth {
                mount.clone_from(&section.approle_mount);
            }
            auth
        };
        let mut vault = VaultConfig::new(address, auth)
            .with_kv_mount(section.kv_mount.clone())
            .with_kv_prefix(section.kv_prefix.clone())
            .with_transit_mount(section.transit_mount.clone());
        if let Some(namespace) = &section.namespace {
            vault = vault.with_namespace(namespace.clone());
        }
        // The library names its settings `vault.*`; ours are `secrets.vault.*`.
        VaultClient::new(vault).map_err(|e| match e {
            Error::Misconfigured { setting, reason } => Error::Misconfigured {
                setting: format!("secrets.{setting}").into(),
                reason,
            },
            other => other,
        })
    }
}
