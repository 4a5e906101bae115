//! Text and metadata on small files whose expected output was checked
//! against `pdftotext` (the fuzz seeds in `fuzz/corpus/extract/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use docaiche_extract::contracts::{ExtractOptions, RiskFlag};
use docaiche_extract::{Limits, extract_blocking};

fn seed(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus/extract")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn simple_fonts_kerning_spacing_forms_and_metadata() {
    let out = extract_blocking(
        &seed("simple.pdf"),
        None,
        None,
        &ExtractOptions::default(),
        &Limits::default(),
    )
    .unwrap();
    // /Differences names a ligature (expanded as pdftotext does); a TJ kern
    // of -300 is a space; Tc 2 letter-spacing is not; a form draws text.
    // The font gives `l` no width, so the second `l` lands on the first and
    // is dropped as duplicated text, exactly as pdftotext prints it.
    assert_eq!(
        out.pages,
        vec!["Helo fi world\nKern ed\nspaced out\nin a form\n".to_owned()]
    );
    assert_eq!(out.info.title.as_deref(), Some("Seed"));
    assert_eq!(out.info.page_count, 1);
    assert_eq!(out.info.format_version.as_deref(), Some("1.5"));
    let created = out.info.created.unwrap();
    assert_eq!(
        (
            created.year(),
            created.hour(),
            created.offset().whole_hours()
        ),
        (2024, 12, 1)
    );
    assert!(out.risks.is_empty());
    assert_eq!(out.sha256.len(), 64);
}

#[test]
fn identity_h_fonts_decode_through_tounicode() {
    let out = extract_blocking(
        &seed("cid.pdf"),
        None,
        None,
        &ExtractOptions::default(),
        &Limits::default(),
    )
    .unwrap();
    // bfchar <0001>→H <0002>→i, bfrange <0010>-<0012>→a.., a -500 kern.
    assert_eq!(out.pages, vec!["Hiab c\n".to_owned()]);
}

#[test]
fn active_content_seed_is_flagged() {
    let out = extract_blocking(
        &seed("active.pdf"),
        None,
        None,
        &ExtractOptions::default(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        out.risks,
        vec![
            RiskFlag::JavaScript,
            RiskFlag::OpenAction,
            RiskFlag::EmbeddedFiles
        ]
    );
}

#[test]
fn max_pages_truncates_but_counts_every_page() {
    let mut body = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    let kids: Vec<String> = (0..3).map(|i| format!("{} 0 R", 3 + 2 * i)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count 3 /Resources << /Font << /F1 9 0 R >> >> >>",
            kids.join(" ")
        ),
    ];
    for i in 0..3 {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /Contents {} 0 R >>",
            4 + 2 * i
        ));
        let content = format!("BT /F1 12 Tf 72 700 Td (Page {}) Tj ET", i + 1);
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman >>".to_owned());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(body.len());
        body.push_str(&format!("{} 0 obj\n{o}\nendobj\n", i + 1));
    }
    let xref = body.len();
    body.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for off in offsets {
        body.push_str(&format!("{off:010} 00000 n \n"));
    }
    body.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    let all = extract_blocking(
        body.as_bytes(),
        None,
        None,
        &ExtractOptions::default(),
        &Limits::default(),
    )
    .unwrap();
    // Resources are inherited from the page tree node.
    assert_eq!(all.pages, vec!["Page 1\n", "Page 2\n", "Page 3\n"]);
    let mut options = ExtractOptions::default();
    options.max_pages = Some(2);
    let two = extract_blocking(body.as_bytes(), None, None, &options, &Limits::default()).unwrap();
    assert_eq!(two.pages.len(), 2);
    assert_eq!(two.info.page_count, 3);
}
