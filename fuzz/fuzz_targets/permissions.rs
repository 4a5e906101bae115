//! `Permission::parse` and `Grant::parse` on arbitrary strings: no panic,
//! accepted values round-trip through `Display`, and sets built from the
//! accepted grants behave (reflexive `contains_all`, `allows` agreeing with
//! the grants).

#![no_main]

use docaiche_core::{Grant, Permission, PermissionSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);

    let mut grants = Vec::new();
    let mut permissions = Vec::new();
    // The whole input, then each line, so one input exercises a whole set.
    for s in std::iter::once(input.as_ref()).chain(input.lines()) {
        if let Ok(p) = Permission::parse(s) {
            assert_eq!(p.to_string(), s);
            assert_eq!(Permission::parse(&p.to_string()).ok().as_ref(), Some(&p));
            assert!(!s.contains('*'), "wildcard permission {s:?}");
            assert_eq!(Grant::parse(s).ok(), Some(Grant::Exact(p.clone())));
            permissions.push(p);
        }
        if let Ok(g) = Grant::parse(s) {
            assert_eq!(g.to_string(), s);
            assert_eq!(Grant::parse(&g.to_string()).ok().as_ref(), Some(&g));
            let json = serde_json::to_string(&g).expect("a grant serializes");
            assert_eq!(serde_json::from_str::<Grant>(&json).ok().as_ref(), Some(&g));
            grants.push(g);
        }
    }

    let set: PermissionSet = grants.iter().cloned().collect();
    assert!(set.contains_all(&set));
    assert!(set.contains_all(&PermissionSet::new()));
    let half: PermissionSet = grants.iter().take(grants.len() / 2).cloned().collect();
    assert!(set.contains_all(&half));
    let everything = set.iter().any(|g| *g == Grant::Everything);
    for p in &permissions {
        assert_eq!(set.allows(p), set.iter().any(|g| g.covers(p)));
        assert!(Grant::Everything.covers(p));
        if everything {
            assert!(set.allows(p));
        }
        // A subset never allows what the whole set does not.
        assert!(!half.allows(p) || set.allows(p));
    }
});
