//! The [`KeyWrapper`] suite.

use std::sync::Arc;

use docaiche_core::key_wrapper::{KeyWrapper, WrappedKey};
use docaiche_core::{ErrorCode, Result};

use super::{Case, Harness, concurrently};
use crate::LocalKeyWrapper;

const SUITE: &str = "KeyWrapper";

/// Rotation controls of a wrapper, for [`run_key_wrapper_rotation`]
/// (`KeyWrapper` itself has none: rotation is an operator action, like
/// Vault's `transit/keys/<name>/rotate`).
#[async_trait::async_trait]
pub trait KeyRotation: Send + Sync {
    /// Make a new KEK version the one new keys are wrapped under.
    ///
    /// # Errors
    /// Whatever the backend fails with.
    async fn rotate(&self) -> Result<()>;

    /// Refuse to unwrap keys wrapped under versions below `version`.
    ///
    /// # Errors
    /// Whatever the backend fails with.
    async fn set_min_decryption_version(&self, version: u32) -> Result<()>;
}

#[async_trait::async_trait]
impl KeyRotation for LocalKeyWrapper {
    async fn rotate(&self) -> Result<()> {
        Self::rotate(self).map(|_| ())
    }

    async fn set_min_decryption_version(&self, version: u32) -> Result<()> {
        Self::set_min_decryption_version(self, version)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run the [`KeyWrapper`] contract against `wrapper`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_key_wrapper(wrapper: Arc<dyn KeyWrapper>, harness: &Harness) {
    round_trip(&*wrapper, harness).await;
    wrong_context_fails(&*wrapper, harness).await;
    tampered_keys_fail(&*wrapper, harness).await;
    foreign_keys_fail(&*wrapper, harness).await;
    rewrap_keeps_the_plaintext(&*wrapper, harness).await;
    concurrent_wraps(&wrapper, harness).await;
}

/// Run the rotation cases: rotate, rewrap, retire old versions. `rotation`
/// controls the same backend as `wrapper`. The wrapper is left rotated with
/// its minimum decryption version raised; use a dedicated key.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_key_wrapper_rotation(
    wrapper: Arc<dyn KeyWrapper>,
    rotation: &dyn KeyRotation,
    harness: &Harness,
) {
    let case = Case::new(SUITE, "rotate_rewrap_retire");
    let context = context(harness);
    let old = case.ok(
        wrapper.generate_data_key(&context).await,
        "generate_data_key",
    );
    case.ok(rotation.rotate().await, "rotate");
    let new = case.ok(
        wrapper.generate_data_key(&context).await,
        "generate_data_key after rotate",
    );
    case.check(
        new.wrapped.kek_version > old.wrapped.kek_version,
        "keys wrap under the new version after rotate",
    );
    let still = case.ok(
        wrapper.unwrap_key(&old.wrapped, &context).await,
        "unwrap of a pre-rotation key",
    );
    case.check(
        still.expose_secret() == old.plaintext.expose_secret(),
        "a pre-rotation key still unwraps to its plaintext",
    );
    let moved = case.ok(wrapper.rewrap(&old.wrapped, &context).await, "rewrap");
    case.eq(
        &moved.kek_version,
        &new.wrapped.kek_version,
        "rewrap moves to the latest version",
    );
    case.ok(
        rotation
            .set_min_decryption_version(new.wrapped.kek_version)
            .await,
        "set_min_decryption_version",
    );
    case.err(
        wrapper.unwrap_key(&old.wrapped, &context).await,
        ErrorCode::Internal,
        "unwrap below the minimum decryption version",
    );
    case.err(
        wrapper.rewrap(&old.wrapped, &context).await,
        ErrorCode::Internal,
        "rewrap below the minimum decryption version",
    );
    let back = case.ok(
        wrapper.unwrap_key(&moved, &context).await,
        "unwrap of the rewrapped key",
    );
    case.check(
        back.expose_secret() == old.plaintext.expose_secret(),
        "the rewrapped key unwraps to the original plaintext",
    );
}

fn context(h: &Harness) -> Vec<u8> {
    format!("tenant={};purpose=documents", h.tenant()).into_bytes()
}

async fn round_trip(wrapper: &dyn KeyWrapper, h: &Harness) {
    let case = Case::new(SUITE, "round_trip");
    let ctx = context(h);
    let a = case.ok(wrapper.generate_data_key(&ctx).await, "generate_data_key");
    let b = case.ok(wrapper.generate_data_key(&ctx).await, "generate_data_key");
    case.eq(&a.plaintext.len(), &32, "data key length");
    case.check(
        a.plaintext.expose_secret() != b.plaintext.expose_secret(),
        "two data keys differ",
    );
    case.check(
        a.wrapped.ciphertext != b.wrapped.ciphertext,
        "two wrapped keys differ",
    );
    case.check(
        !a.wrapped
            .ciphertext
            .windows(32)
            .any(|w| w == a.plaintext.expose_secret().as_slice())
            && !hex(&a.wrapped.ciphertext).contains(&hex(a.plaintext.expose_secret())),
        "the wrapped key does not contain the plaintext",
    );
    let back = case.ok(wrapper.unwrap_key(&a.wrapped, &ctx).await, "unwrap_key");
    case.check(
        back.expose_secret() == a.plaintext.expose_secret(),
        "unwrap returns the generated plaintext",
    );
    let empty = case.ok(
        wrapper.generate_data_key(b"").await,
        "generate_data_key with an empty context",
    );
    let back = case.ok(
        wrapper.unwrap_key(&empty.wrapped, b"").await,
        "unwrap_key with an empty context",
    );
    case.check(
        back.expose_secret() == empty.plaintext.expose_secret(),
        "an empty context round-trips",
    );
}

async fn wrong_context_fails(wrapper: &dyn KeyWrapper, h: &Harness) {
    let case = Case::new(SUITE, "wrong_context_fails");
    let ctx = context(h);
    let key = case.ok(wrapper.generate_data_key(&ctx).await, "generate_data_key");
    let mut one_bit = ctx.clone();
    if let Some(last) = one_bit.last_mut() {
        *last ^= 1;
    }
    let mut longer = ctx.clone();
    longer.push(0);
    for (what, other) in [
        ("another tenant", context(h)),
        ("one bit flipped", one_bit),
        ("a trailing NUL", longer),
        ("empty", Vec::new()),
    ] {
        let err = case.err(
            wrapper.unwrap_key(&key.wrapped, &other).await,
            ErrorCode::Internal,
            &format!("unwrap with {what} context"),
        );
        case.check(
            !err.log_chain()
                .contains(&hex(key.plaintext.expose_secret())),
            "the error reveals the key",
        );
        case.err(
            wrapper.rewrap(&key.wrapped, &other).await,
            ErrorCode::Internal,
            &format!("rewrap with {what} context"),
        );
    }
}

async fn tampered_keys_fail(wrapper: &dyn KeyWrapper, h: &Harness) {
    let case = Case::new(SUITE, "tampered_keys_fail");
    let ctx = context(h);
    let key = case.ok(wrapper.generate_data_key(&ctx).await, "generate_data_key");
    let original = &key.wrapped.ciphertext;
    for i in 0..original.len() {
        let mut tampered = key.wrapped.clone();
        tampered.ciphertext[i] ^= 0x01;
        case.err(
            wrapper.unwrap_key(&tampered, &ctx).await,
            ErrorCode::Internal,
            &format!("unwrap with byte {i} flipped"),
        );
    }
    let mut shapes: Vec<(&str, Vec<u8>)> = vec![("empty", Vec::new()), ("one byte", vec![0])];
    shapes.push(("truncated", original[..original.len() - 1].to_vec()));
    let mut extended = original.clone();
    extended.push(0);
    shapes.push(("extended", extended));
    for (what, ciphertext) in shapes {
        let mut tampered: WrappedKey = key.wrapped.clone();
        tampered.ciphertext = ciphertext;
        case.err(
            wrapper.unwrap_key(&tampered, &ctx).await,
            ErrorCode::Internal,
            &format!("unwrap of a {what} ciphertext"),
        );
    }
}

async fn foreign_keys_fail(wrapper: &dyn KeyWrapper, h: &Harness) {
    let case = Case::new(SUITE, "foreign_keys_fail");
    let ctx = context(h);
    let key = case.ok(wrapper.generate_data_key(&ctx).await, "generate_data_key");
    let mut foreign = key.wrapped.clone();
    foreign.kek_id = h.unique("someone-elses-kek");
    case.err(
        wrapper.unwrap_key(&foreign, &ctx).await,
        ErrorCode::Internal,
        "unwrap under another kek_id",
    );
    let mut future = key.wrapped.clone();
    future.kek_version = key.wrapped.kek_version.saturating_add(1000);
    case.err(
        wrapper.unwrap_key(&future, &ctx).await,
        ErrorCode::Internal,
        "unwrap under an unknown kek_version",
    );
    let mut zero = key.wrapped.clone();
    zero.kek_version = 0;
    case.err(
        wrapper.unwrap_key(&zero, &ctx).await,
        ErrorCode::Internal,
        "unwrap under kek_version 0",
    );
}

async fn rewrap_keeps_the_plaintext(wrapper: &dyn KeyWrapper, h: &Harness) {
    let case = Case::new(SUITE, "rewrap_keeps_the_plaintext");
    let ctx = context(h);
    let key = case.ok(wrapper.generate_data_key(&ctx).await, "generate_data_key");
    let rewrapped = case.ok(wrapper.rewrap(&key.wrapped, &ctx).await, "rewrap");
    case.check(
        rewrapped.kek_version >= key.wrapped.kek_version,
        "rewrap never moves to an older version",
    );
    let back = case.ok(
        wrapper.unwrap_key(&rewrapped, &ctx).await,
        "unwrap of a rewrapped key",
    );
    case.check(
        back.expose_secret() == key.plaintext.expose_secret(),
        "a rewrapped key unwraps to the same plaintext",
    );
    case.err(
        wrapper.unwrap_key(&rewrapped, &context(h)).await,
        ErrorCode::Internal,
        "a rewrapped key keeps its context",
    );
}

async fn concurrent_wraps(wrapper: &Arc<dyn KeyWrapper>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_wraps");
    let ctx = context(h);
    let results = concurrently(case, 16, |_| {
        let (wrapper, ctx) = (wrapper.clone(), ctx.clone());
        async move {
            let key = wrapper.generate_data_key(&ctx).await?;
            let back = wrapper.unwrap_key(&key.wrapped, &ctx).await?;
            Ok::<bool, docaiche_core::Error>(back.expose_secret() == key.plaintext.expose_secret())
        }
    })
    .await;
    for r in results {
        case.check(
            case.ok(r, "concurrent generate and unwrap"),
            "concurrent round trips return their plaintext",
        );
    }
}
