#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real Postgres, one fresh database per test) and the
# Backstage catalog-client suite (node), which a Rust test starts against a live Atrium.
#
# Needs: Postgres reachable at DATABASE_URL (default: the local server at 127.0.0.1:5432, user postgres,
# trust auth; tests create and drop their own databases), node and npm, cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# The client suite's packages, installed exactly from the lock file (once, or when the lock changes).
suite=tests/catalog-client
if [ ! -d "$suite/node_modules" ] || [ "$suite/package-lock.json" -nt "$suite/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$suite" --no-audit --no-fund --loglevel=error
fi

# Tests run in parallel (nextest: one process per test); each #[sqlx::test] gets its own database.
cargo nextest run --workspace --no-fail-fast "$@"
