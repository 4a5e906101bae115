use super::*;

fn check(policy: &PasswordPolicy, password: &str) -> Result<(), PasswordRejection> {
    policy.check(&SecretString::from(password))
}

#[test]
fn the_bundled_list_is_what_the_data_readme_says() {
    assert_eq!(common_password_count(), 49_233);
    let lines: Vec<&str> = COMMON_PASSWORDS_TEXT.lines().collect();
    assert_eq!(lines.len(), 49_233, "one password a line, no blank lines");
    // The matching relies on these: lowercase ASCII, no whitespace, short
    // enough for the normalisation buffer.
    for entry in lines {
        assert!(!entry.is_empty());
        assert!(entry.len() <= LONGEST_COMMON_PASSWORD, "{entry}");
        assert!(
            entry
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
            "{entry}"
        );
    }
    // Most frequent first.
    assert!(COMMON_PASSWORDS_TEXT.starts_with("123456\npassword\n12345678\n"));
}

#[test]
fn listed_passwords_of_twelve_or_more_characters_are_refused() {
    let policy = PasswordPolicy::default();
    for listed in [
        "password1234",
        "qwertyuiop123",
        "qwerty123456",
        "1q2w3e4r5t6y",
        "123456789012",
        "administrator",
        "passwordpassword",
    ] {
        assert!(is_common_password(listed), "{listed} is on the list");
        assert!(listed.chars().count() >= 12);
        assert_eq!(
            check(&policy, listed),
            Err(PasswordRejection::Common),
            "{listed}"
        );
    }
}

#[test]
fn case_and_whitespace_do_not_hide_a_listed_password() {
    let policy = PasswordPolicy::default();
    for disguised in [
        "PASSWORD1234",
        "Password1234",
        "  password1234  ",
        "password1234\n",
        "\tPassWord1234",
        "pass word 1234",
        "p a s s w o r d 1 2 3 4",
        // Short entries reach the minimum only with whitespace.
        "Password 123",
        "iloveyou 123",
        "letmein     ",
        // Unicode whitespace too.
        "password\u{a0}1234",
        "password\u{3000}1234",
    ] {
        assert_eq!(
            check(&policy, disguised),
            Err(PasswordRejection::Common),
            "{disguised:?}"
        );
    }
}

#[test]
fn only_case_and_whitespace_are_folded() {
    // Documented limits: leetspeak, extra characters and non-ASCII letters
    // are compared as they are.
    for unlisted in [
        "p@ssw0rd1234!",
        "password1234x",
        "pässword1234",
        "password1234\u{301}",
    ] {
        assert!(!is_common_password(unlisted), "{unlisted:?}");
    }
    // Non-ASCII case is not folded: the list holds no non-ASCII entry.
    assert!(!is_common_password("ＰＡＳＳＷＯＲＤ"));
}

#[test]
fn long_random_passphrases_pass() {
    let policy = PasswordPolicy::default();
    for fine in [
        "correct horse battery staple",
        "Tr0ub4dor&3-horse-battery",
        "vivid-otter-lantern-92-quarry",
        "a long enough password",
        "mot de passe très long à retenir",
        &"z".repeat(1024),
    ] {
        assert_eq!(check(&policy, fine), Ok(()), "{fine:?}");
    }
}

#[test]
fn longer_than_any_entry_is_not_looked_up_and_never_overflows() {
    // One past the buffer, and far past it, with whitespace in between.
    let long = "a".repeat(LONGEST_COMMON_PASSWORD + 1);
    assert!(!is_common_password(&long));
    assert!(!is_common_password(&"ab ".repeat(4096)));
    assert!(!is_common_password(""));
    assert!(!is_common_password("   "));
    // Exactly at the bound: looked up (and not found).
    assert!(!is_common_password(&"q".repeat(LONGEST_COMMON_PASSWORD)));
}

#[test]
fn rules_apply_in_order_length_then_list() {
    let policy = PasswordPolicy::default();
    // Listed, but too short: the length is what the user can act on first.
    assert_eq!(
        check(&policy, "password"),
        Err(PasswordRejection::TooShort { min_chars: 12 })
    );
    // Characters, not bytes: 11 two-byte characters are too short.
    assert_eq!(
        check(&policy, &"é".repeat(11)),
        Err(PasswordRejection::TooShort { min_chars: 12 })
    );
    assert_eq!(check(&policy, &"é".repeat(12)), Ok(()));
    assert_eq!(
        check(&policy, &"x".repeat(1025)),
        Err(PasswordRejection::TooLong { max_bytes: 1024 })
    );
    // A lower minimum makes the short entries matter on their own.
    let lower = PasswordPolicy::new(8, 64).expect("valid");
    assert_eq!(check(&lower, "Password"), Err(PasswordRejection::Common));
    assert_eq!(check(&lower, "trustno1"), Err(PasswordRejection::Common));
}

#[test]
fn the_list_can_be_switched_off_by_name() {
    let policy = PasswordPolicy::default().allowing_common_passwords();
    assert!(!policy.rejects_common_passwords());
    assert_eq!(check(&policy, "password1234"), Ok(()));
    assert_eq!(
        check(&policy, "short"),
        Err(PasswordRejection::TooShort { min_chars: 12 })
    );
}

#[test]
fn refusals_never_contain_the_password() {
    let policy = PasswordPolicy::default();
    for password in [
        "password1234",
        "Qwertyuiop123",
        "hunter2",
        &"s3cr3t".repeat(200),
    ] {
        let rejection = check(&policy, password).expect_err(password);
        let error = Error::from(rejection);
        for text in [
            rejection.to_string(),
            format!("{rejection:?}"),
            error.to_string(),
            format!("{error:?}"),
            error.log_chain(),
        ] {
            assert!(
                !text.to_lowercase().contains(&password.to_lowercase()),
                "{text}"
            );
        }
    }
    assert_eq!(
        check(&policy, "password1234").map_err(|r| r.to_string()),
        Err("password is among the most common breached passwords".to_owned())
    );
    let error = Error::from(PasswordRejection::Common);
    assert_eq!(error.code(), docaiche_core::ErrorCode::InvalidInput);
}

#[test]
fn debug_shows_the_settings_not_the_list() {
    let debug = format!("{:?}", PasswordPolicy::default());
    assert_eq!(
        debug,
        "PasswordPolicy { min_chars: 12, max_bytes: 1024, reject_common: true }"
    );
    assert!(!debug.contains("123456"));
}

#[test]
fn inconsistent_lengths_are_misconfigured() {
    for (min, max) in [(0, 10), (13, 12), (12, 4097)] {
        assert!(
            matches!(
                PasswordPolicy::new(min, max),
                Err(Error::Misconfigured { .. })
            ),
            "{min}..{max}"
        );
    }
    let policy = PasswordPolicy::new(12, 4096).expect("valid");
    assert_eq!((policy.min_chars(), policy.max_bytes()), (12, 4096));
    assert!(policy.rejects_common_passwords());
}
