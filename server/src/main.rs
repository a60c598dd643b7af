//! The `atrium` command: parse the command line, set up logging, dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Parser, Subcommand};

use atrium::config::Config;
use atrium::db::local::LocalPostgres;

#[derive(Parser)]
#[command(
    name = "atrium",
    version,
    about = "Self-service developer portal: a Backstage-compatible catalog on Postgres"
)]
struct Cli {
    /// Config file (default: ./atrium.yaml when it exists).
    #[arg(long, global = true, env = "ATRIUM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal: migrate, load the configured catalog locations, serve HTTP.
    Serve {
        /// Address to listen on (overrides server.listen / ATRIUM_LISTEN).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Start or stop the private Postgres in .atrium/postgres, for scripts.
    ///
    /// `serve` and `migrate` start the same cluster themselves when DATABASE_URL is not set and nothing
    /// answers on 127.0.0.1:5432, and stop it when they end.
    LocalPostgres {
        #[command(subcommand)]
        action: LocalPostgresAction,
    },
    /// API tokens, from the command line: the first admin token of an installation without sign-in.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Guardrail policies (`test`) and the permission policy (`explain`).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Lint catalog files: every problem with file, line and field; exit 1 if there is any.
    #[command(group(ArgGroup::new("input").required(true).args(["files", "repo"])))]
    Validate {
        /// Catalog files (catalog-info.yaml and friends). Not with --repo.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Lint a repository checkout: every file below DIR that matches --catalog-file, and the files
        /// their Location entities point at. Problems name files relative to DIR.
        #[arg(long, value_name = "DIR", value_parser = existing_dir)]
        repo: Option<PathBuf>,
        /// With --repo: glob of the catalog files, relative to DIR; repeat the flag for more than one
        /// (commas belong to globs: `{a,b}.yaml`). Default: **/catalog-info.yaml.
        #[arg(
            long = "catalog-file",
            value_name = "GLOB",
            requires = "repo",
            // `requires` alone lets `--catalog-file G FILE...` through, since FILE satisfies the group.
            conflicts_with = "files",
            value_parser = catalog_glob
        )]
        catalog_file: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Make a token and print it on stdout (shown this once; only its hash is stored).
    Create {
        /// The user the token acts for (`user:default/alice`).
        #[arg(long)]
        user: String,
        /// Scopes (repeat the flag): catalog:read, catalog:write, template:run:<ref>, deploy:<env>, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it expires.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// A name to recognise it by in lists.
        #[arg(long, default_value = "created with atrium token create")]
        name: String,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Check Kubernetes manifests against an environment's guardrails, offline, with the code
    /// deployments use: every violation with rule, object and field; exit 1 if there is any.
    Test {
        /// YAML or JSON files, several documents each.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Environment whose policy applies (deploy.environments); an unconfigured one gets the safe
        /// defaults.
        #[arg(long, default_value = "dev")]
        environment: String,
        /// Cluster whose namespace allowlist applies. Default: the environment's only cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Namespaces allowed instead of a cluster's (repeat the flag).
        #[arg(long = "allow-namespace", value_name = "NAMESPACE")]
        allow_namespaces: Vec<String>,
        /// Namespace of objects that name none.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// What the permission policy (`permissions` in atrium.yaml) decides for a user doing an action,
    /// and the rule that decides it; exit 0 when allowed, 1 when denied. Reads the user's groups and
    /// the target's owner from the catalog.
    Explain {
        /// The user (`alice`, `user:default/alice`).
        #[arg(long)]
        user: String,
        /// The action (`catalog.entity.delete`, `scaffolder.task.create`, `deploy.apply`, ...).
        #[arg(long)]
        action: String,
        /// The target entity (`component:default/web`; a template's ref also names the template).
        #[arg(long)]
        target: Option<String>,
        /// The template being run.
        #[arg(long)]
        template: Option<String>,
        /// The environment deployed to.
        #[arg(long)]
        environment: Option<String>,
        /// The scaffolder action a step runs (`kube:apply`).
        #[arg(long)]
        step: Option<String>,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum LocalPostgresAction {
    /// Start it (creating it on first use, with the database `atrium`), print its DATABASE_URL, and
    /// leave it running.
    Start,
    /// Stop it.
    Stop,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atrium: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Validate {
            files,
            repo,
            catalog_file,
        } => {
            return Ok(match repo {
                Some(dir) => validate_repo(dir, catalog_file),
                None => validate(files),
            });
        }
        Command::LocalPostgres { action } => return local_postgres(*action),
        Command::Policy {
            action: action @ PolicyAction::Test { .. },
        } => return policy(cli.config.as_deref(), action),
        Command::Serve { .. }
        | Command::Migrate
        | Command::Token { .. }
        | Command::Policy {
            action: PolicyAction::Explain { .. },
        } => {}
    }
    let mut config = Config::load(cli.config.as_deref())?;
    // SAFETY: no thread exists yet (the runtime starts below), so nothing uses libgit2.
    #[allow(unsafe_code)]
    unsafe {
        atrium::git::set_network_timeouts(std::time::Duration::from_secs(
            config.catalog.git.fetch_timeout_seconds,
        ));
    }
    atrium::telemetry::init_tracing(config.server.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let local = LocalPostgres::start_unless_configured(&mut config.database)?;
    let mut exit = ExitCode::SUCCESS;
    let result = match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            runtime.block_on(serve(config))
        }
        Command::Migrate => runtime.block_on(migrate(config)),
        Command::Token { action } => runtime.block_on(token(config, action)),
        Command::Policy { action } => match runtime.block_on(explain(config, action)) {
            Ok(code) => {
                exit = code;
                Ok(())
            }
            Err(e) => Err(e),
        },
        Command::Validate { .. } | Command::LocalPostgres { .. } => Ok(()),
    };
    // Also after a failure: a private server nobody uses should not outlive the command.
    let released = local.map_or(Ok(()), LocalPostgres::release);
    result.and(released)?;
    Ok(exit)
}

fn local_postgres(action: LocalPostgresAction) -> anyhow::Result<ExitCode> {
    match action {
        LocalPostgresAction::Start => {
            let local = LocalPostgres::start()?;
            let url = local.url();
            let database = atrium::config::DatabaseConfig {
                url: Some(url.clone()),
                max_connections: 1,
                create_if_missing: true,
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                atrium::db::connect(&database).await?.close().await;
                anyhow::Ok(())
            })?;
            // The URL alone on stdout, for `export DATABASE_URL=$(atrium local-postgres start)`.
            eprintln!("{}", local.summary());
            println!("{url}");
        }
        LocalPostgresAction::Stop => {
            if atrium::db::local::stop()? {
                eprintln!("stopped the private Postgres in .atrium/postgres");
            } else {
                eprintln!("no private Postgres is running in .atrium/postgres");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `atrium policy test`: exit 0 when clean, 1 on violations or unreadable files, 2 on usage errors.
fn policy(config: Option<&std::path::Path>, action: &PolicyAction) -> anyhow::Result<ExitCode> {
    let PolicyAction::Test {
        files,
        environment,
        cluster,
        allow_namespaces,
        namespace,
    } = action
    else {
        unreachable!("run() sends only `policy test` here");
    };
    let config = Config::load(config)?;
    let deploy = &config.deploy;
    let namespaces = if allow_namespaces.is_empty() {
        match deploy.pick_cluster(cluster.as_deref(), Some(environment)) {
            Ok(cluster) => cluster.namespaces.clone(),
            Err(e) => {
                eprintln!(
                    "atrium policy test: no namespace allowlist ({e}); name a --cluster or give --allow-namespace"
                );
                return Ok(ExitCode::from(2));
            }
        }
    } else {
        allow_namespaces.clone()
    };
    let mut inputs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        inputs.push((file.display().to_string(), text));
    }
    let scope = atrium::deploy::policy::Scope {
        allowed_namespaces: &namespaces,
        default_namespace: namespace,
    };
    let report = atrium::deploy::policy::test_files(&deploy.policy(environment), &scope, &inputs);
    print!("{report}");
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn validate(files: &[PathBuf]) -> ExitCode {
    print_report(&atrium::catalog::lint::lint_files(files))
}

fn validate_repo(dir: &std::path::Path, globs: &[String]) -> ExitCode {
    match atrium::catalog::lint::lint_repo(dir, globs) {
        Ok(report) => print_report(&report),
        Err(e) => {
            eprintln!("failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--repo` must name a directory; a typo is a usage error (exit 2), not a lint failure.
fn existing_dir(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_dir() {
        Ok(path)
    } else {
        Err(format!("{value} is not a directory"))
    }
}

fn catalog_glob(value: &str) -> Result<String, String> {
    atrium::catalog::lint::catalog_file_globs(&[value.to_owned()])
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
}

fn print_report(report: &atrium::catalog::lint::Report) -> ExitCode {
    for problem in &report.problems {
        println!("{problem}");
    }
    let summary = format!(
        "{} file(s), {} entit{}, {} problem(s)",
        report.files,
        report.entities,
        if report.entities == 1 { "y" } else { "ies" },
        report.problems.len()
    );
    if report.problems.is_empty() {
        eprintln!("ok: {summary}");
        ExitCode::SUCCESS
    } else {
        eprintln!("failed: {summary}");
        ExitCode::FAILURE
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let pool = atrium::db::connect(&config.database).await?;
    atrium::db::migrate(&pool).await?;
    println!("migrations applied");
    Ok(())
}

async fn token(config: Config, action: TokenAction) -> anyhow::Result<()> {
    let TokenAction::Create {
        user,
        scopes,
        days,
        name,
    } = action;
    let scopes = atrium::auth::Scopes::parse_all(&scopes).map_err(anyhow::Error::msg)?;
    let pool = atrium::db::connect(&config.database).await?;
    atrium::db::migrate(&pool).await?;
    let auth = atrium::auth::AuthService::new(
        pool,
        std::sync::Arc::new(config.auth),
        std::sync::Arc::new(config.permissions),
    );
    let token = auth
        .issue(&user, &scopes, &name, days)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "a token for {user} ({}) expiring in {days} days:",
        scopes.strings().join(", ")
    );
    println!("{token}");
    Ok(())
}

/// `atrium policy explain`: prints the caller, the target and the decision with its rule.
async fn explain(config: Config, action: PolicyAction) -> anyhow::Result<ExitCode> {
    let PolicyAction::Explain {
        user,
        action,
        target,
        template,
        environment,
        step,
    } = action
    else {
        unreachable!("run() sends only `policy explain` here");
    };
    config.permissions.check().map_err(anyhow::Error::msg)?;
    let pool = atrium::db::connect(&config.database).await?;
    atrium::db::migrate(&pool).await?;
    let auth = atrium::auth::AuthService::new(
        pool,
        std::sync::Arc::new(config.auth),
        std::sync::Arc::new(config.permissions),
    );
    let answer = auth
        .explain(&atrium::auth::service::Question {
            user: &user,
            action: &action,
            target: target.as_deref(),
            template: template.as_deref(),
            environment: environment.as_deref(),
            step: step.as_deref(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print!("{answer}");
    Ok(if answer.decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    atrium::tls::install_crypto_provider();
    let pool = atrium::db::connect(&config.database).await?;
    atrium::db::migrate(&pool).await?;
    let listen = config.server.listen;
    let state = atrium::AppState::new(pool, config)?;
    state.catalog.sync_configured_locations().await?;

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let workers = state.catalog.spawn_workers(shutdown_rx.clone());
    // Ended sessions and audit events past auth.audit_retention_days.
    let pruner = state.auth.spawn_pruner(shutdown_rx.clone());
    let task_workers = state.scaffolder.spawn_workers(shutdown_rx);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "atrium is serving");
    // No Nagle delay: a streamed response (the task event stream) writes its headers and then each
    // event separately, and with Nagle each small write after the first waits for the peer's delayed
    // ACK (40 ms on Linux).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, atrium::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down: letting catalog workers finish their current batch");
    let _ = shutdown_tx.send(true);
    let _ = workers.await;
    let _ = task_workers.await;
    let _ = pruner.await;
    Ok(())
}

/// SIGTERM (Kubernetes, docker stop) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
