//! The account routes through the router.
