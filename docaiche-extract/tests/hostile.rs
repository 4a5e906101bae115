//! A generated hostile corpus: each file gets its specific refusal (or risk
//! flags / sanitised output) within bounded time and memory.
//!
//! Memory is measured with a counting global allocator (`stats_alloc`):
//! the *total* bytes allocated during one extraction, an upper bound on the
//! peak. Tests in this binary take a lock so that they are measured one at
//! a time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::alloc::System;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use docaiche_extract::contracts::{ExtractInput, ExtractOptions, Extractor, RiskFlag};
use docaiche_extract::{ExtractError, Limits, PdfExtractor, extract_blocking};
use lopdf::{Document, Object, Stream, dictionary};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

/// Time allowed for any hostile file (debug build, 2 cores).
const TIME_BOUND: Duration = Duration::from_secs(5);

/// Runs one extraction, asserting the time bound and returning the result
/// and the bytes allocated.
fn run(
    content: &[u8],
    options: &ExtractOptions,
    limits: &Limits,
) -> (
    Result<docaiche_extract::contracts::Extraction, ExtractError>,
    usize,
) {
    let start = Instant::now();
    let region = Region::new(GLOBAL);
    let result = extract_blocking(content, None, None, options, limits);
    let allocated = region.change().bytes_allocated;
    let elapsed = start.elapsed();
    assert!(elapsed < TIME_BOUND, "took {elapsed:?}");
    (result, allocated)
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A PDF from numbered object bodies, with a correct xref table.
fn pdf(objects: &[&[u8]], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(table, "{off:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(table.as_bytes());
    out
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\nendstream");
    v
}

const FONT: &[u8] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

/// catalog, pages, page with `contents` (object 4), font (object 5).
fn one_page(contents: &[u8]) -> Vec<u8> {
    let content = stream("", contents);
    pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            &content,
            FONT,
        ],
        "",
    )
}

/// A zlib stream of `1 + 258 * runs` zero bytes, written by hand (fixed
/// Huffman: one literal, then length-258 distance-1 matches), so that a
/// multi-gigabyte bomb costs nothing to build.
fn zlib_zeros(runs: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u32, bits: u32) {
            self.acc |= value << self.n;
            self.n += bits;
            while self.n >= 8 {
                self.out.push((self.acc & 0xff) as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn huff(&mut self, code: u32, len: u32) {
            for i in (0..len).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
    }
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(1, 2); // fixed Huffman
    b.huff(0x30, 8); // literal 0
    for _ in 0..runs {
        b.huff(0xc5, 8); // length code 285 (258)
        b.huff(0, 5); // distance code 0 (1)
    }
    b.huff(0, 7); // end of block
    if b.n > 0 {
        b.put(0, 8 - b.n);
    }
    let total = 1 + 258 * runs as u64;
    let adler = ((total % 65521) << 16) | 1;
    b.out.extend_from_slice(&(adler as u32).to_be_bytes());
    b.out
}

fn text_of(result: &docaiche_extract::contracts::Extraction) -> String {
    result.pages.concat()
}

#[test]
fn a_well_formed_file_extracts() {
    let _g = lock();
    let file = one_page(b"BT /F1 12 Tf 72 700 Td (Hello hostile world) Tj ET");
    let (r, _) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(text_of(&r.unwrap()), "Hello hostile world\n");
}

#[test]
fn zlib_bomb_helper_inflates_to_what_it_claims() {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(&zlib_zeros(1000)[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 1 + 258 * 1000);
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn decompression_bomb_in_a_content_stream_is_refused_with_bounded_memory() {
    let _g = lock();
    // 1 GiB of zeros in ~520 KiB.
    let bomb = zlib_zeros((1 << 30) / 258);
    let content = stream("/Filter /FlateDecode", &bomb);
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
            &content,
        ],
        "",
    );
    let mut limits = Limits::default();
    limits.max_stream_bytes = 4 << 20;
    let (r, allocated) = run(&file, &ExtractOptions::default(), &limits);
    assert_eq!(
        r.unwrap_err(),
        ExtractError::DecompressionBomb { limit: 4 << 20 }
    );
    assert!(allocated < 64 << 20, "allocated {allocated} bytes");
}

#[test]
fn many_small_streams_hit_the_per_document_budget() {
    let _g = lock();
    // 8 pages × 1 MiB each: under the per-stream cap, over the document's.
    let chunk = stream("/Filter /FlateDecode", &zlib_zeros((1 << 20) / 258));
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count 8 >>",
            (0..8)
                .map(|i| format!("{} 0 R", 3 + i))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .into_bytes(),
    ];
    for _ in 0..8 {
        objects.push(b"<< /Type /Page /Parent 2 0 R /Contents 11 0 R >>".to_vec());
    }
    objects.push(chunk.clone());
    // Each page its own copy, so no decoding is shared.
    let mut objects2 = objects.clone();
    for i in 0..8 {
        objects2[2 + i] =
            format!("<< /Type /Page /Parent 2 0 R /Contents {} 0 R >>", 11 + i).into_bytes();
    }
    objects2.truncate(10);
    for _ in 0..8 {
        objects2.push(chunk.clone());
    }
    let refs: Vec<&[u8]> = objects2.iter().map(Vec::as_slice).collect();
    let file = pdf(&refs, "");
    let mut limits = Limits::default();
    limits.max_stream_bytes = 2 << 20;
    limits.max_document_bytes = 4 << 20;
    let (r, allocated) = run(&file, &ExtractOptions::default(), &limits);
    assert_eq!(
        r.unwrap_err(),
        ExtractError::DecompressionBomb { limit: 4 << 20 }
    );
    assert!(allocated < 64 << 20, "allocated {allocated} bytes");
}

#[test]
fn decompression_bomb_in_an_object_stream_is_refused_while_loading() {
    let _g = lock();
    let bomb = zlib_zeros((256 << 20) / 258);
    let objstm = stream("/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", &bomb);
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
            &objstm,
        ],
        "",
    );
    let mut limits = Limits::default();
    limits.max_stream_bytes = 4 << 20;
    let (r, allocated) = run(&file, &ExtractOptions::default(), &limits);
    // lopdf decodes object streams while loading, under our per-stream cap.
    assert_eq!(
        r.unwrap_err(),
        ExtractError::DecompressionBomb { limit: 4 << 20 }
    );
    assert!(allocated < 64 << 20, "allocated {allocated} bytes");
}

#[test]
fn many_object_streams_share_the_document_budget_while_loading() {
    let _g = lock();
    // 8 object streams of 1 MiB each: each under the per-stream cap, 8 MiB
    // together, over the 4 MiB document budget.
    let one = stream(
        "/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode",
        &zlib_zeros((1 << 20) / 258),
    );
    let mut objects: Vec<&[u8]> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ];
    for _ in 0..8 {
        objects.push(&one);
    }
    let mut limits = Limits::default();
    limits.max_stream_bytes = 2 << 20;
    limits.max_document_bytes = 4 << 20;
    let (r, allocated) = run(&pdf(&objects, ""), &ExtractOptions::default(), &limits);
    assert_eq!(
        r.unwrap_err(),
        ExtractError::DecompressionBomb {
            limit: (4 << 20) / 8
        }
    );
    assert!(allocated < 64 << 20, "allocated {allocated} bytes");
}

#[test]
fn a_page_tree_that_loops_is_a_reference_cycle() {
    let _g = lock();
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        ],
        "",
    );
    let (r, _) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(r.unwrap_err(), ExtractError::ReferenceCycle);
}

#[test]
fn an_object_that_is_a_reference_to_itself_is_a_reference_cycle() {
    let _g = lock();
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
            b"4 0 R",
        ],
        "",
    );
    let (r, _) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(r.unwrap_err(), ExtractError::ReferenceCycle);
}

#[test]
fn a_form_that_draws_itself_is_a_reference_cycle() {
    let _g = lock();
    let form = stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X 5 0 R >> >>",
        b"/X Do",
    );
    let page_content = stream("", b"/X Do");
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /XObject << /X 5 0 R >> >> >>",
            &page_content,
            &form,
        ],
        "",
    );
    let (r, _) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(r.unwrap_err(), ExtractError::ReferenceCycle);
}

#[test]
fn nesting_100_000_deep_is_refused_before_parsing() {
    let _g = lock();
    for (open, close) in [(&b"["[..], &b"]"[..]), (b"<< /A ", b">>")] {
        let mut body = open.repeat(100_000);
        body.extend_from_slice(&close.repeat(100_000));
        let file = pdf(
            &[
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [] /Count 0 >>",
                &body,
            ],
            "",
        );
        let limits = Limits::default();
        let (r, allocated) = run(&file, &ExtractOptions::default(), &limits);
        assert_eq!(
            r.unwrap_err(),
            ExtractError::NestingTooDeep {
                limit: limits.max_nesting
            }
        );
        assert!(allocated < 16 << 20, "allocated {allocated} bytes");
    }
}

#[test]
fn nesting_100_000_deep_inside_a_compressed_content_stream_is_refused() {
    let _g = lock();
    let mut deep = b"[".repeat(100_000);
    deep.extend_from_slice(&b"]".repeat(100_000));
    deep.extend_from_slice(b" TJ");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &deep).unwrap();
    let compressed = z.finish().unwrap();
    let content = stream("/Filter /FlateDecode", &compressed);
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
            &content,
        ],
        "",
    );
    let limits = Limits::default();
    let (r, _) = run(&file, &ExtractOptions::default(), &limits);
    assert_eq!(
        r.unwrap_err(),
        ExtractError::NestingTooDeep {
            limit: limits.max_nesting
        }
    );
}

#[test]
fn a_truncated_file_is_refused() {
    let _g = lock();
    let file = one_page(b"BT /F1 12 Tf 72 700 Td (Hello) Tj ET");
    for cut in [file.len() / 2, file.len() - 40, 20] {
        let (r, _) = run(&file[..cut], &ExtractOptions::default(), &Limits::small());
        assert_eq!(r.unwrap_err(), ExtractError::Truncated, "cut at {cut}");
    }
}

#[test]
fn wrong_xref_offsets_are_repaired_by_reconstruction() {
    let _g = lock();
    let file = one_page(b"BT /F1 12 Tf 72 700 Td (Still readable) Tj ET");
    // Shift every in-use xref offset by 7 bytes.
    let text = String::from_utf8_lossy(&file).into_owned();
    let broken: String = text
        .lines()
        .map(|l| {
            if l.len() == 18 && l.ends_with(" 00000 n") {
                let off: u64 = l[..10].parse().unwrap();
                format!("{:010} 00000 n \n", off + 7)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let (r, _) = run(
        broken.as_bytes(),
        &ExtractOptions::default(),
        &Limits::small(),
    );
    assert_eq!(text_of(&r.unwrap()), "Still readable\n");
}

#[test]
fn a_file_with_a_header_and_nothing_else_is_malformed() {
    let _g = lock();
    let file =
        b"%PDF-1.7\nxref\n0 1\n9999999999 65535 f \ntrailer << >>\nstartxref\n999999\n%%EOF\n";
    let (r, _) = run(file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(r.unwrap_err().reason(), "malformed");
}

#[test]
fn a_huge_declared_length_is_not_trusted() {
    let _g = lock();
    let body = b"BT /F1 12 Tf 72 700 Td (Short stream) Tj ET";
    let mut content = b"<< /Length 999999999999 >>\nstream\n".to_vec();
    content.extend_from_slice(body);
    content.extend_from_slice(b"\nendstream");
    let file = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            &content,
            FONT,
        ],
        "",
    );
    let (r, allocated) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(text_of(&r.unwrap()), "Short stream\n");
    assert!(allocated < 8 << 20, "allocated {allocated} bytes");
}

#[tokio::test]
async fn a_zip_renamed_pdf_is_an_unsupported_media_type() {
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00 fake zip with %PDF-1.4 inside\n%%EOF";
    let mut input = ExtractInput::new(zip.to_vec().into());
    input.filename = Some("invoice.pdf".into());
    input.declared_content_type = Some("application/pdf".into());
    let extractor = PdfExtractor::new(Limits::small());
    let err = extractor
        .extract_detailed(input.clone(), &ExtractOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err, ExtractError::SniffedOther { sniffed: "zip" });
    let core = extractor
        .extract(input, &ExtractOptions::default())
        .await
        .unwrap_err();
    assert_eq!(core.code(), docaiche_core::ErrorCode::UnsupportedMediaType);
}

#[tokio::test]
async fn a_pdf_declared_as_another_type_is_refused() {
    let mut input = ExtractInput::new(one_page(b"BT ET").into());
    input.declared_content_type = Some("image/png".into());
    let extractor = PdfExtractor::new(Limits::small());
    let err = extractor
        .extract(input, &ExtractOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), docaiche_core::ErrorCode::UnsupportedMediaType);
}

#[tokio::test]
async fn oversized_input_is_payload_too_large() {
    let mut limits = Limits::small();
    limits.max_input_bytes = 100;
    let extractor = PdfExtractor::new(limits);
    let err = extractor
        .extract(
            ExtractInput::new(one_page(b"BT ET").into()),
            &ExtractOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        docaiche_core::Error::PayloadTooLarge { limit: 100 }
    ));
}

fn active_content_pdf() -> Vec<u8> {
    let js = stream("", b"app.alert('pwned');");
    let embedded = stream("/Type /EmbeddedFile", b"MZ fake executable");
    pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS 6 0 R >> /Names << /EmbeddedFiles << /Names [(payload.exe) 7 0 R] >> >> /AcroForm << /Fields [] /XFA 6 0 R >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> /AA << /O << /S /Launch /F (cmd.exe) >> >> /Annots [9 0 R 10 0 R] >>",
            b"<< /Length 43 >>\nstream\nBT /F1 12 Tf 72 700 Td (Visible text) Tj ET\nendstream",
            FONT,
            &js,
            b"<< /Type /Filespec /F (payload.exe) /EF << /F 8 0 R >> >>",
            &embedded,
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (http://evil.example/) >> >>",
            b"<< /Type /Annot /Subtype /RichMedia /Rect [0 0 10 10] /RichMediaContent << >> >>",
        ],
        "",
    )
}

#[test]
fn javascript_launch_and_embedded_files_are_flagged() {
    let _g = lock();
    let (r, _) = run(
        &active_content_pdf(),
        &ExtractOptions::default(),
        &Limits::small(),
    );
    let r = r.unwrap();
    assert_eq!(
        r.risks,
        vec![
            RiskFlag::JavaScript,
            RiskFlag::OpenAction,
            RiskFlag::AdditionalActions,
            RiskFlag::Launch,
            RiskFlag::Uri,
            RiskFlag::EmbeddedFiles,
            RiskFlag::RichMedia,
            RiskFlag::Xfa,
        ]
    );
    assert!(r.sanitized.is_none());
    assert_eq!(text_of(&r), "Visible text\n");
}

#[test]
fn the_sanitised_copy_has_no_active_content_and_the_same_text() {
    let _g = lock();
    let mut options = ExtractOptions::default();
    options.sanitize = true;
    let (r, _) = run(&active_content_pdf(), &options, &Limits::small());
    let r = r.unwrap();
    let clean = r.sanitized.clone().expect("sanitised copy");
    assert!(
        !clean.windows(8).any(|w| w == b"pwned');"),
        "script body left"
    );
    assert!(
        !clean.windows(7).any(|w| w == b"cmd.exe"),
        "launch target left"
    );
    assert!(
        !clean.windows(7).any(|w| w == b"MZ fake"),
        "embedded file left"
    );
    let (again, _) = run(&clean, &ExtractOptions::default(), &Limits::small());
    let again = again.unwrap();
    assert_eq!(again.risks, Vec::<RiskFlag>::new());
    assert_eq!(again.pages, r.pages);
}

fn lopdf_text_pdf(text: &str) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let content = format!("BT /F1 12 Tf 72 700 Td ({text}) Tj ET");
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set(
        "ID",
        vec![
            Object::string_literal(b"0123456789abcdef".to_vec()),
            Object::string_literal(b"0123456789abcdef".to_vec()),
        ],
    );
    doc
}

fn encrypted(user_password: &str) -> Vec<u8> {
    let mut doc = lopdf_text_pdf("Confidential words");
    let state = lopdf::EncryptionState::try_from(lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner-secret",
        user_password,
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    })
    .unwrap();
    doc.encrypt(&state).unwrap();
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn encrypted_with_a_user_password_is_refused() {
    let _g = lock();
    let file = encrypted("user-secret");
    assert!(!file.windows(18).any(|w| w == b"Confidential words"));
    let (r, _) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(r.unwrap_err(), ExtractError::Encrypted);
}

#[test]
fn encrypted_with_an_empty_user_password_is_opened() {
    let _g = lock();
    let file = encrypted("");
    let (r, _) = run(&file, &ExtractOptions::default(), &Limits::small());
    assert_eq!(text_of(&r.unwrap()), "Confidential words\n");
}

#[test]
fn too_many_pages_is_refused() {
    let _g = lock();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count 60 >>",
            (0..60)
                .map(|i| format!("{} 0 R", 3 + i))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .into_bytes(),
    ];
    for _ in 0..60 {
        objects.push(b"<< /Type /Page /Parent 2 0 R >>".to_vec());
    }
    let refs: Vec<&[u8]> = objects.iter().map(Vec::as_slice).collect();
    let (r, _) = run(
        &pdf(&refs, ""),
        &ExtractOptions::default(),
        &Limits::small(),
    );
    assert_eq!(r.unwrap_err(), ExtractError::TooManyPages { limit: 50 });
}

#[test]
fn too_many_objects_is_refused() {
    let _g = lock();
    let mut limits = Limits::small();
    limits.max_objects = 3;
    let file = one_page(b"BT ET");
    let (r, _) = run(&file, &ExtractOptions::default(), &limits);
    assert_eq!(r.unwrap_err(), ExtractError::TooManyObjects { limit: 3 });
}

#[test]
fn an_operator_flood_is_stopped() {
    let _g = lock();
    let flood = b"q Q ".repeat(200_000);
    let mut limits = Limits::small();
    limits.max_operators = 100_000;
    let (r, _) = run(&one_page(&flood), &ExtractOptions::default(), &limits);
    assert_eq!(
        r.unwrap_err(),
        ExtractError::TooManyOperators { limit: 100_000 }
    );
}

#[test]
fn an_exhausted_wall_time_budget_is_a_timeout() {
    let _g = lock();
    let mut limits = Limits::small();
    limits.max_wall_time = Duration::ZERO;
    let (r, _) = run(&one_page(b"BT ET"), &ExtractOptions::default(), &limits);
    assert_eq!(
        r.unwrap_err(),
        ExtractError::Timeout {
            after: Duration::ZERO
        }
    );
}

#[test]
fn garbage_after_a_valid_header_never_panics() {
    let _g = lock();
    let base = one_page(b"BT /F1 12 Tf 72 700 Td (x) Tj ET");
    // Deterministic byte flips over the whole file.
    let mut state = 0x2545_f491_u32;
    for _ in 0..200 {
        let mut f = base.clone();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let i = 9 + (state as usize) % (f.len() - 9);
            f[i] = (state >> 24) as u8;
        }
        let (r, _) = run(&f, &ExtractOptions::default(), &Limits::small());
        if let Err(e) = r {
            assert_ne!(e.reason(), "parser_panic", "{e}");
        }
    }
}
