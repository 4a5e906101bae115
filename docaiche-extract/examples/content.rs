//! Prints the decoded content stream of one page, for debugging extraction:
//! `cargo run -p docaiche-extract --example content -- FILE.pdf PAGE`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(page)) = (args.get(1), args.get(2).and_then(|p| p.parse::<u32>().ok()))
    else {
        eprintln!("usage: content FILE.pdf PAGE");
        return ExitCode::from(2);
    };
    let Ok(doc) = lopdf::Document::load(file) else {
        eprintln!("{file}: cannot load");
        return ExitCode::FAILURE;
    };
    let Some(id) = doc.get_pages().get(&page).copied() else {
        eprintln!("{file}: no page {page}");
        return ExitCode::FAILURE;
    };
    match doc.get_page_content_with_limit(id, 64 << 20) {
        Ok(content) => {
            println!("{}", String::from_utf8_lossy(&content));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            ExitCode::FAILURE
        }
    }
}
