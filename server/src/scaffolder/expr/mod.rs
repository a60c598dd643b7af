//! `${{ ... }}` expressions with Backstage's semantics, sandboxed and bounded.

/// The expression engine, shared by every task (cheap to clone).
#[derive(Clone, Default)]
pub struct Expressions {}
