//! The PostgreSQL audit trail (filled in below).
