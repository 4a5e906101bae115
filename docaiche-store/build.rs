//! Rebuild when a migration changes: `sqlx::migrate!` embeds `migrations/`
//! at compile time (sqlx's own recommendation).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
