//! Connecting to Postgres: create the database if asked, check the server is there, run migrations.
//! `local` starts a private server when none was named and the default one is not there.

pub mod local;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::{DatabaseConfig, redact_url};

/// Migrations embedded in the binary; `#[sqlx::test(migrator = "atrium::MIGRATOR")]` uses the same set.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens the pool. When the server cannot be reached the error is one line that names the URL (password
/// hidden) and says how to start a Postgres, because that is what a newcomer hits first.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let url = config.url_or_default();
    let options = PgConnectOptions::from_str(url)
        .with_context(|| {
            format!(
                "DATABASE_URL {} is not a valid Postgres URL",
                redact_url(url)
            )
        })?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    if config.create_if_missing {
        create_database_if_missing(&options, url).await?;
    }
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| unreachable_error(url, &e))
}

fn unreachable_error(url: &str, error: &sqlx::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot connect to Postgres at {} ({error}); start one (e.g. `pg_ctlcluster 15 main start`, or \
         `docker compose up -d postgres`) or set DATABASE_URL",
        redact_url(url)
    )
}

/// Connects to the server's `postgres` database and creates the one named in the URL if it is missing.
async fn create_database_if_missing(options: &PgConnectOptions, url: &str) -> anyhow::Result<()> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let admin = options.clone().database("postgres");
    let mut conn = admin
        .connect()
        .await
        .map_err(|e| unreachable_error(url, &e))?;
    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from pg_database where datname = $1) as "exists!""#,
        name
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it the way Postgres quotes identifiers.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("create database {quoted}")))
            .execute(&mut conn)
            .await;
        match created {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica may have created it between our check and our create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context(format!("cannot create database {name}")),
        }
    }
    Ok(())
}

/// The newest migration the database has applied successfully (`None` before the first).
pub async fn latest_applied_migration(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!("select max(version) from _sqlx_migrations where success")
        .fetch_one(pool)
        .await
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("running database migrations")?;
    Ok(())
}
