//! Shared application state: one `Clone` struct handed to every handler.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::auth::AuthService;
use crate::catalog::CatalogService;
use crate::config::Config;
use crate::deploy::DeployService;
use crate::scaffolder::ScaffolderService;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub catalog: CatalogService,
    pub scaffolder: ScaffolderService,
    pub deploy: DeployService,
    pub auth: AuthService,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    pub fn new(db: PgPool, config: Config) -> anyhow::Result<Self> {
        let listen = config.server.listen;
        if config.auth.guest
            && !listen.ip().is_loopback()
            && !config.auth.allow_guest_on_any_address
        {
            anyhow::bail!(
                "guest mode (auth.guest) lets anyone who reaches {listen} act without signing in; it is refused on an address other than loopback unless auth.allow_guest_on_any_address is set"
            );
        }
        let config = Arc::new(config);
        let auth = AuthService::new(
            db.clone(),
            Arc::new(config.auth.clone()),
            Arc::new(config.permissions.clone()),
        );
        let catalog = CatalogService::new(db.clone(), config.clone())?;
        config.deploy.check().map_err(anyhow::Error::msg)?;
        config.permissions.check().map_err(anyhow::Error::msg)?;
        let deploy = DeployService::new(
            db.clone(),
            Arc::new(config.deploy.clone()),
            catalog.clone(),
            Arc::new(config.permissions.clone()),
        );
        // The deploy actions are handed to the scaffolder here: the scaffolder does not know `deploy`.
        let scaffolder = ScaffolderService::new(
            db.clone(),
            config.clone(),
            catalog.clone(),
            crate::deploy::actions::actions(deploy.clone()),
        );
        Ok(Self {
            db,
            config,
            catalog,
            scaffolder,
            deploy,
            auth,
            metrics: crate::telemetry::metrics_handle(),
        })
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

impl FromRef<AppState> for CatalogService {
    fn from_ref(state: &AppState) -> Self {
        state.catalog.clone()
    }
}

impl FromRef<AppState> for ScaffolderService {
    fn from_ref(state: &AppState) -> Self {
        state.scaffolder.clone()
    }
}

impl FromRef<AppState> for DeployService {
    fn from_ref(state: &AppState) -> Self {
        state.deploy.clone()
    }
}

impl FromRef<AppState> for AuthService {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}
