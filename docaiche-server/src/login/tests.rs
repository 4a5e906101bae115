use docaiche_core::{ErrorCode, RequestContext};

use super::*;
use crate::test_support::TestDir;

#[test]
fn the_password_comes_from_input_without_its_line_break() {
    let password = read_password("a long enough password\r\n".as_bytes()).expect("valid");
    assert_eq!(password.expose_secret(), "a long enough password");
    let password = read_password("  spaces count   \n".as_bytes()).expect("valid");
    assert_eq!(password.expose_secret(), "  spaces count   ");
    for bad in ["", "\n", "short\n", "elevenchars"] {
        let err = read_password(bad.as_bytes()).expect_err(bad);
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{bad:?}");
    }
    let huge = "x".repeat(5000);
    assert!(read_password(huge.as_bytes()).is_err());
    assert!(
        read_password(
            &[
                0xff, 0xfe, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80
            ][..]
        )
        .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_admin_creates_the_first_account_in_the_configured_store() {
    let dir = TestDir::new("login-bootstrap");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let args = BootstrapAdminArgs {
        tenant: "acme".into(),
        email: "Ops@Example.com".into(),
    };
    let account = bootstrap_admin(
        &config,
        &args,
        &|_| None,
        "a long enough password\n".as_bytes(),
    )
    .await
    .expect("created");
    assert_eq!(account.email.as_str(), "ops@example.com");
    assert_eq!(account.roles, ["tenant-admin"]);
    // The same email again is refused, whatever the password.
    let err = bootstrap_admin(
        &config,
        &args,
        &|_| None,
        "another long password".as_bytes(),
    )
    .await
    .expect_err("duplicate");
    assert_eq!(err.code(), ErrorCode::Conflict);
    let err = bootstrap_admin(&config, &args, &|_| None, "short".as_bytes())
        .await
        .expect_err("short");
    assert_eq!(err.code(), ErrorCode::InvalidInput);

    // The account is in the server's SQLite store: it signs in.
    let (auth, _) = crate::state::open_auth(&config, &|_| None)
        .await
        .expect("auth");
    let stored = auth
        .stores
        .accounts
        .find_by_email(&TenantId::new("acme").expect("tenant"), &account.email)
        .await
        .expect("store")
        .expect("present");
    assert_eq!(stored.id, account.id);
    let login = Login::new(&config.auth, &auth).expect("login");
    let session = login
        .service()
        .await
        .expect("service")
        .login(
            &stored.tenant,
            &stored.email,
            &SecretString::from("a long enough password"),
            &RequestContext::new(),
        )
        .await
        .expect("signs in");
    assert!(
        session
            .principal
            .has_permission(&docaiche_core::Permission::KEYS_MANAGE)
    );
}
