//! Provider-specific behaviour: traversal, symlinks, variable names.

use std::path::PathBuf;

use docaiche_core::{ErrorCode, SecretProvider, SecretString};

use super::*;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "docaiche-secrets-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    fn write(&self, name: &str, value: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create dirs");
        std::fs::write(&path, value).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn file_provider_refuses_traversal_names() {
    let outside = TempDir::new();
    outside.write("passwd", b"root:x:0:0");
    let dir = TempDir::new();
    let provider = FileSecretProvider::new(&dir.0).expect("exists");
    for name in [
        "../etc/passwd",
        "../../../../etc/passwd",
        "/etc/passwd",
        "a/../../passwd",
        "..",
        "./x",
        "a//b",
        "a\\..\\b",
    ] {
        let err = provider.get(name).await.expect_err(name);
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{name}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn file_provider_refuses_a_symlink_leaving_the_directory() {
    let outside = TempDir::new();
    let target = outside.write("passwd", b"root:x:0:0");
    let dir = TempDir::new();
    std::os::unix::fs::symlink(&target, dir.0.join("escape")).expect("symlink");
    std::os::unix::fs::symlink(&outside.0, dir.0.join("outdir")).expect("symlink");
    let provider = FileSecretProvider::new(&dir.0).expect("exists");
    for name in ["escape", "outdir/passwd"] {
        let err = provider.get(name).await.expect_err(name);
        assert_eq!(err.code(), ErrorCode::Misconfigured, "{name}");
        assert!(
            !err.log_chain().contains("root:x"),
            "the error never carries the value"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn file_provider_follows_symlinks_inside_the_directory() {
    // The Kubernetes secret-volume layout: name -> ..data/name -> ..2026_01/name.
    let dir = TempDir::new();
    dir.write("..2026_01/jwt", b"k8s");
    std::os::unix::fs::symlink(dir.0.join("..2026_01"), dir.0.join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/jwt", dir.0.join("jwt")).expect("symlink");
    let provider = FileSecretProvider::new(&dir.0).expect("exists");
    let got = provider.get("jwt").await.expect("inside").expect("present");
    assert_eq!(got.value.expose_secret(), b"k8s");
}

#[tokio::test]
async fn file_provider_distinguishes_missing_from_broken() {
    let dir = TempDir::new();
    dir.write("jwt/signing-key", b"value\n");
    std::fs::create_dir_all(dir.0.join("a-directory")).expect("mkdir");
    dir.write("big", &vec![b'x'; 1024 * 1024 + 1]);
    let provider = FileSecretProvider::new(&dir.0).expect("exists");
    let got = provider
        .get("jwt/signing-key")
        .await
        .expect("readable")
        .expect("present");
    assert_eq!(
        got.value.expose_secret(),
        b"value\n",
        "byte for byte, newline included"
    );
    assert!(
        provider
            .get("missing")
            .await
            .expect("a miss is not an error")
            .is_none()
    );
    assert!(
        provider
            .get("jwt/signing-key/deeper")
            .await
            .expect("a miss")
            .is_none()
    );
    assert_eq!(
        provider
            .get("a-directory")
            .await
            .expect_err("not a file")
            .code(),
        ErrorCode::Misconfigured
    );
    assert_eq!(
        provider.get("big").await.expect_err("too big").code(),
        ErrorCode::Misconfigured
    );
    assert!(provider.describe().starts_with("file:"));
}

#[test]
fn file_provider_needs_an_existing_directory() {
    let dir = TempDir::new();
    let file = dir.write("file", b"x");
    assert_eq!(
        FileSecretProvider::new(dir.0.join("missing"))
            .expect_err("missing")
            .code(),
        ErrorCode::Misconfigured
    );
    assert_eq!(
        FileSecretProvider::new(file).expect_err("a file").code(),
        ErrorCode::Misconfigured
    );
}

#[test]
fn env_provider_maps_names_to_variables() {
    let env = EnvSecretProvider::new();
    assert_eq!(
        env.variable_name("jwt/signing-key").expect("valid"),
        "DOCAICHE_SECRET_JWT_SIGNING_KEY"
    );
    assert_eq!(
        env.variable_name("db.password_2").expect("valid"),
        "DOCAICHE_SECRET_DB_PASSWORD_2"
    );
    let custom = EnvSecretProvider::new()
        .with_prefix("MYAPP_")
        .expect("valid prefix");
    assert_eq!(
        custom.variable_name("api-key/pepper").expect("valid"),
        "MYAPP_API_KEY_PEPPER"
    );
    assert!(EnvSecretProvider::new().with_prefix("lower_").is_err());
    assert!(EnvSecretProvider::new().with_prefix("A-B").is_err());
    assert!(env.variable_name("../x").is_err());
}

#[tokio::test]
async fn env_provider_refuses_empty_values_and_never_prints_them() {
    let env = EnvSecretProvider::from_vars([
        ("DOCAICHE_SECRET_EMPTY".to_owned(), SecretString::from("")),
        (
            "DOCAICHE_SECRET_SET".to_owned(),
            SecretString::from("hunter2-hunter2"),
        ),
    ]);
    let err = env
        .get("empty")
        .await
        .expect_err("empty is misconfiguration");
    assert_eq!(err.code(), ErrorCode::Misconfigured);
    assert!(
        err.to_string().contains("DOCAICHE_SECRET_EMPTY"),
        "names the variable: {err}"
    );
    assert!(env.get("unset").await.expect("a miss").is_none());
    assert!(!format!("{env:?}").contains("hunter2"));
}

#[tokio::test]
async fn env_provider_reads_the_process_environment() {
    // PATH is set in every test environment; reading it needs no `unsafe` set_var.
    let env = EnvSecretProvider::new()
        .with_prefix("")
        .expect("an empty prefix is allowed");
    let path = std::env::var("PATH").expect("PATH is set");
    let got = env.get("path").await.expect("readable").expect("present");
    assert_eq!(got.value.expose_secret(), path.as_bytes());
}

#[tokio::test]
async fn memory_provider_versions_each_insert() {
    let provider = MemorySecretProvider::new();
    assert_eq!(
        provider.insert("a", b"1".to_vec().into()).expect("valid"),
        1
    );
    assert_eq!(
        provider.insert("a", b"2".to_vec().into()).expect("valid"),
        2
    );
    let got = provider.get("a").await.expect("valid").expect("present");
    assert_eq!(
        (got.value.expose_secret().as_slice(), got.version),
        (b"2".as_slice(), Some(2))
    );
    assert!(provider.remove("a"));
    assert!(provider.get("a").await.expect("valid").is_none());
    assert!(provider.insert("../a", b"x".to_vec().into()).is_err());
}
