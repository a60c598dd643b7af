#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real Postgres, one fresh database per test) and the
# Backstage catalog-client suite (node), which a Rust test starts against a live Atrium.
#
# Needs: a Postgres (DATABASE_URL, or the local server at 127.0.0.1:5432 with trust auth, or only the
# server programs installed; tests create and drop their own databases), node and npm, cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Postgres the tests use: DATABASE_URL when set; else the server on 127.0.0.1:5432 when one answers;
# else a private cluster that atrium starts from the installed server programs (.atrium/postgres, see
# docs/development.md), stopped when the tests end.
if [ -z "${DATABASE_URL:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    cargo build -q -p atrium --bin atrium
    DATABASE_URL="$(target/debug/atrium local-postgres start)"
    export DATABASE_URL
    trap 'target/debug/atrium local-postgres stop' EXIT
  fi
fi

# The node packages of the suites that run Backstage's own code (its catalog client, its template
# renderer) and of the OpenID provider the sign-in tests run, installed exactly from their lock files
# (once, or when a lock changes).
for suite in tests/catalog-client tests/scaffolder-expressions tests/scaffolder-client tests/oidc-provider tests/backstage-templates; do
  if [ ! -d "$suite/node_modules" ] || [ "$suite/package-lock.json" -nt "$suite/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$suite" --no-audit --no-fund --loglevel=error
  fi
done

# Tests run in parallel (nextest: one process per test); each #[sqlx::test] gets its own database.
cargo nextest run --workspace --no-fail-fast "$@"
