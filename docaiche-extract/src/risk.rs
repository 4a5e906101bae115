//! Active content: detection ([`scan`]) and removal ([`sanitize`]).
//!
//! Detection walks every object once (an explicit stack, no recursion) and
//! looks at dictionary keys and action types, so it finds active content
//! wherever it hides: the catalog, pages, annotations, form fields,
//! outlines, name trees.

use std::collections::BTreeSet;

use docaiche_core::extract::RiskFlag;
use lopdf::{Dictionary, Document, Object};

use crate::error::{ExtractError, Result};

fn flags_of(dict: &Dictionary, out: &mut BTreeSet<RiskFlag>) {
    for (key, value) in dict.iter() {
        match key.as_slice() {
            b"JS" | b"JavaScript" => {
                out.insert(RiskFlag::JavaScript);
            }
            b"OpenAction" => {
                out.insert(RiskFlag::OpenAction);
            }
            b"AA" => {
                out.insert(RiskFlag::AdditionalActions);
            }
            b"EmbeddedFiles" | b"EF" => {
                out.insert(RiskFlag::EmbeddedFiles);
            }
            b"RichMediaContent" | b"RichMediaSettings" => {
                out.insert(RiskFlag::RichMedia);
            }
            b"XFA" => {
                out.insert(RiskFlag::Xfa);
            }
            b"S" | b"Subtype" | b"Type" => match value.as_name().unwrap_or(b"") {
                b"JavaScript" => {
                    out.insert(RiskFlag::JavaScript);
                }
                b"Launch" => {
                    out.insert(RiskFlag::Launch);
                }
                b"URI" => {
                    out.insert(RiskFlag::Uri);
                }
                b"EmbeddedFile" => {
                    out.insert(RiskFlag::EmbeddedFiles);
                }
                b"RichMedia" | b"RichMediaExecute" => {
                    out.insert(RiskFlag::RichMedia);
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Every risk flag found in `doc`, sorted.
pub(crate) fn scan(doc: &Document) -> Vec<RiskFlag> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<&Object> = doc.objects.values().collect();
    stack.push(&Object::Null);
    let trailer_holder;
    {
        trailer_holder = Object::Dictionary(doc.trailer.clone());
        stack.push(&trailer_holder);
    }
    while let Some(obj) = stack.pop() {
        match obj {
            Object::Dictionary(d) => {
                flags_of(d, &mut found);
                stack.extend(d.iter().map(|(_, v)| v));
            }
            Object::Stream(s) => {
                flags_of(&s.dict, &mut found);
                stack.extend(s.dict.iter().map(|(_, v)| v));
            }
            Object::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    found.into_iter().collect()
}

const RISKY_ACTIONS: [&[u8]; 8] = [
    b"JavaScript",
    b"Launch",
    b"URI",
    b"SubmitForm",
    b"ImportData",
    b"RichMediaExecute",
    b"GoToR",
    b"GoToE",
];

/// Removes active content in place: `/OpenAction`, `/AA`, `/JS`, JavaScript
/// and embedded-file name trees, file attachments, XFA, rich media, and
/// every JavaScript, Launch, URI, SubmitForm, ImportData, GoToR/GoToE and
/// RichMediaExecute action (emptied, and unlinked from `/A`).
fn strip(dict: &mut Dictionary) {
    for key in [
        &b"OpenAction"[..],
        b"AA",
        b"JS",
        b"JavaScript",
        b"EmbeddedFiles",
        b"EF",
        b"XFA",
        b"RichMediaContent",
        b"RichMediaSettings",
    ] {
        dict.remove(key);
    }
    let risky_type = |v: Option<&Object>| {
        v.and_then(|o| o.as_name().ok()).is_some_and(|n| {
            RISKY_ACTIONS.contains(&n) || n == b"EmbeddedFile" || n == b"RichMedia"
        })
    };
    if risky_type(dict.get(b"S").ok())
        || risky_type(dict.get(b"Type").ok())
        || risky_type(dict.get(b"Subtype").ok())
    {
        // Neutralise in place: the object stays (references to it stay
        // valid) but carries no action.
        let keep_type = dict.get(b"Type").ok().cloned();
        *dict = Dictionary::new();
        if let Some(t) = keep_type.filter(|t| t.as_name().ok() == Some(b"Annot")) {
            dict.set("Type", t);
            dict.set("Subtype", Object::Name(b"Link".to_vec()));
        }
    }
    // An inline risky action under /A.
    if let Ok(Object::Dictionary(a)) = dict.get(b"A")
        && risky_type(a.get(b"S").ok())
    {
        dict.remove(b"A");
    }
}

fn strip_all(obj: &mut Object) {
    let mut stack: Vec<&mut Object> = vec![obj];
    while let Some(o) = stack.pop() {
        match o {
            Object::Dictionary(d) => {
                strip(d);
                stack.extend(d.iter_mut().map(|(_, v)| v));
            }
            Object::Stream(s) => {
                let embedded =
                    s.dict.get(b"Type").and_then(Object::as_name).ok() == Some(b"EmbeddedFile");
                strip(&mut s.dict);
                if embedded {
                    s.set_plain_content(Vec::new());
                }
                stack.extend(s.dict.iter_mut().map(|(_, v)| v));
            }
            Object::Array(a) => stack.extend(a.iter_mut()),
            _ => {}
        }
    }
}

/// A copy of `doc` with all active content removed, serialised.
pub(crate) fn sanitize(doc: &Document) -> Result<Vec<u8>> {
    let mut copy = doc.clone();
    for obj in copy.objects.values_mut() {
        strip_all(obj);
    }
    let mut trailer = Object::Dictionary(std::mem::take(&mut copy.trailer));
    strip_all(&mut trailer);
    if let Object::Dictionary(t) = trailer {
        copy.trailer = t;
    }
    // Scripts, XFA packets and attachments now unreferenced go too (the
    // walk is lopdf's; direct objects nest at most 100 deep by its parser).
    copy.prune_objects();
    let mut out = Vec::new();
    copy.save_to(&mut out)
        .map_err(|e| ExtractError::Internal(format!("writing the sanitised copy: {e}").into()))?;
    Ok(out)
}
