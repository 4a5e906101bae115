//! Vault and OpenBao adapters (feature `vault`): a
//! [`SecretProvider`](docaiche_core::SecretProvider) over a KV v2 mount and
//! a [`KeyWrapper`](docaiche_core::KeyWrapper) over a Transit key, sharing
//! one [`VaultClient`](crate::vault::VaultClient) (HTTP, login, token renewal, health).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use docaiche_core::{ErrorCode, SecretProvider};
//! use docaiche_store::vault::{VaultClient, VaultConfig, VaultSecretProvider};
//!
//! // Read from a file or the environment; the token is a `Secret`.
//! let config: VaultConfig = serde_json::from_str(r#"{
//!     "address": "http://127.0.0.1:1",
//!     "auth": { "method": "token", "token": "hvs.example-token" },
//!     "kv_mount": "secret",
//!     "kv_prefix": "docaiche",
//!     "request_timeout_ms": 2000
//! }"#)?;
//! let client = VaultClient::new(config)?;
//! let secrets = VaultSecretProvider::new(client.clone());
//! assert!(!format!("{secrets:?} {client:?}").contains("hvs.example-token"));
//!
//! // Nothing listens on port 1: an outage is `Unavailable`, never `None`,
//! // so a `SecretChain` does not fall through to a weaker secret.
//! let err = secrets.get("jwt/signing-key").await.unwrap_err();
//! assert_eq!(err.code(), ErrorCode::Unavailable);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! With a real server, wrap data keys under a Transit key:
//!
//! ```no_run
//! # async fn example(client: docaiche_store::vault::VaultClient) -> docaiche_core::Result<()> {
//! use docaiche_core::KeyWrapper;
//! use docaiche_store::vault::TransitKeyWrapper;
//!
//! let wrapper = TransitKeyWrapper::connect(client, "documents").await?;
//! let key = wrapper.generate_data_key(b"tenant=acme;purpose=documents").await?;
//! assert!(key.wrapped.ciphertext.starts_with(b"vault:v"));
//! let again = wrapper.unwrap_key(&key.wrapped, b"tenant=acme;purpose=documents").await?;
//! assert!(again.eq_secret(&key.plaintext));
//! # Ok(()) }
//! ```
//!
//! ## Errors
//!
//! Every failure is a [`docaiche_core::Error`]:
//!
//! | what happened | `Error` |
//! |---|---|
//! | Vault unreachable, sealed (503), standby, 5xx, 429 | `Unavailable` (retryable, counts for a circuit breaker) |
//! | no answer within `request_timeout_ms` | `Timeout` |
//! | 403: token expired or revoked, or a policy does not allow the path; AppRole login refused | `Misconfigured` naming `vault.auth…`: an operator must act, retrying will not help |
//! | KV secret absent | `Ok(None)` |
//! | wrapped key tampered, foreign, under another context, or below the minimum decryption version | `Internal`, no plaintext |
//! | invalid secret name | `InvalidInput` |
//!
//! Why `Misconfigured` rather than `Forbidden` for a 403: `Forbidden` tells
//! the *caller of our API* that they lack a permission (HTTP 403). A Vault
//! policy that does not allow this service to read its own secret is the
//! operator's problem, and the client must see a 500, not a 403.
//!
//! ## Secrets
//!
//! The token goes only into the `X-Vault-Token` header (marked sensitive);
//! credentials in [`VaultConfig`](crate::vault::VaultConfig) are [`Secret`](docaiche_core::Secret)s;
//! response bodies are read into zeroizing buffers and secret fields parsed
//! straight into `Secret`s; no `Debug`, log line or error holds a token, a
//! secret value or a data key. What is outside our reach: copies inside
//! hyper's and rustls' own buffers, and the header value reqwest keeps for
//! the token.
//!
//! ## Design decision: lazy token renewal
//!
//! Tokens are renewed on use, when two thirds of the lease have passed,
//! rather than by a background task; see [`VaultClient`](crate::vault::VaultClient) for the cost.
//!
//! ## Why our own client rather than `vaultrs`
//!
//! The adapters need six endpoints. `vaultrs` would bring its own HTTP
//! stack and TLS choices (a second reqwest/rustls build next to the one
//! `docaiche-auth` already has), return plaintext data keys and secret
//! values in ordinary `String`s, and map errors into its own type; a thin
//! client over the reqwest we already build keeps secrets in `Secret`s from
//! the first byte and errors in our vocabulary.

mod client;
mod config;
mod kv;
mod transit;

pub use client::{VaultClient, VaultStats};
pub use config::{VaultAuth, VaultConfig};
pub use kv::VaultSecretProvider;
pub use transit::{TransitKeyInfo, TransitKeyWrapper};
