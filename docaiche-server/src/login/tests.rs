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
    // The common breached passwords, whatever their case and spacing, with
    // a message that never repeats them.
    for listed in [
        "password1234\n",
        "Password 1234\n",
        "QWERTYUIOP123",
        " 1q2w3e4r5t6y \n",
    ] {
        let err = read_password(listed.as_bytes()).expect_err(listed);
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{listed:?}");
        assert_eq!(
            err.to_string(),
            "invalid input: password is among the most common breached passwords"
        );
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
    let other = BootstrapAdminArgs {
        tenant: "acme".into(),
        email: "second@example.com".into(),
    };
    let err = bootstrap_admin(&config, &other, &|_| None, "Password1234\n".as_bytes())
        .await
        .expect_err("a common breached password");
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
    // Past standard input, the password service refuses it too: the same
    // policy guards every way an account is created.
    let err = create_admin(
        &login,
        &stored.tenant,
        AccountEmail::new("second@example.com").expect("email"),
        &SecretString::from("password 1234"),
    )
    .await
    .expect_err("a common breached password");
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("most common breached passwords"));
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
