//! `deploy` in `atrium.yaml`: the clusters Atrium may deploy to and the guardrails of each environment.
//!
//! Secrets (service-account tokens) are never in the file: a cluster names the environment variable or
//! the file that holds its token. This module names nothing else in the crate but the policy types, so
//! `config` can hold it without a cycle.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::policy::PolicyConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// Guardrails and approvals per environment name (`dev`, `staging`, `prod`, ...). An environment a
    /// cluster names but this map does not gets the safe defaults (Pod Security `restricted`, no
    /// registry allowed, 3 replicas, no GPUs).
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// The clusters steps may deploy to. Default none: `kube:apply` fails with a clear message.
    pub clusters: Vec<ClusterConfig>,
    /// Image of the vLLM runtime `deploy:model` renders. Default `vllm/vllm-openai:v0.11.0`.
    pub vllm_image: String,
    /// How often `kube:wait` reads the live objects. Default 2000 ms.
    pub poll_interval_ms: u64,
    /// Time limit of one request to a cluster's API server. Default 15 s.
    pub request_timeout_seconds: u64,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            environments: BTreeMap::new(),
            clusters: Vec::new(),
            vllm_image: "vllm/vllm-openai:v0.11.0".to_owned(),
            poll_interval_ms: 2000,
            request_timeout_seconds: 15,
        }
    }
}

impl DeployConfig {
    /// The guardrails of an environment: its configured policy, else the safe defaults.
    pub fn policy(&self, environment: &str) -> PolicyConfig {
        self.environments
            .get(environment)
            .map(|e| e.policy.clone())
            .unwrap_or_default()
    }

    /// The approval rule of an environment (none unless configured).
    pub fn approval(&self, environment: &str) -> ApprovalConfig {
        self.environments
            .get(environment)
            .map(|e| e.approval.clone())
            .unwrap_or_default()
    }

    /// The cluster a step names (`cluster`), or else the only cluster of the environment it names.
    pub fn pick_cluster(
        &self,
        cluster: Option<&str>,
        environment: Option<&str>,
    ) -> Result<&ClusterConfig, String> {
        if self.clusters.is_empty() {
            return Err("no cluster is configured (deploy.clusters in atrium.yaml)".to_owned());
        }
        if let Some(name) = cluster {
            let found = self.clusters.iter().find(|c| c.name == name);
            return match (found, environment) {
                (None, _) => Err(format!(
                    "no cluster named `{name}`; configured: {}",
                    self.cluster_names()
                )),
                (Some(c), Some(env)) if c.environment != env => Err(format!(
                    "cluster `{name}` is in environment `{}`, not `{env}`",
                    c.environment
                )),
                (Some(c), _) => Ok(c),
            };
        }
        let Some(env) = environment else {
            return Err("name a `cluster` or an `environment`".to_owned());
        };
        let matching: Vec<&ClusterConfig> = self
            .clusters
            .iter()
            .filter(|c| c.environment == env)
            .collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "no cluster is configured for environment `{env}`; configured: {}",
                self.cluster_names()
            )),
            _ => Err(format!(
                "environment `{env}` has several clusters ({}); name one with `cluster`",
                matching
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn cluster_names(&self) -> String {
        self.clusters
            .iter()
            .map(|c| format!("{} ({})", c.name, c.environment))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Configuration mistakes that would only show at the first deploy: said at start-up instead.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for cluster in &self.clusters {
            if !seen.insert(cluster.name.as_str()) {
                return Err(format!(
                    "deploy.clusters: `{}` is named twice",
                    cluster.name
                ));
            }
            cluster
                .auth_mode()
                .map_err(|e| format!("deploy.clusters[{}]: {e}", cluster.name))?;
        }
        Ok(())
    }
}

/// `deploy.environments.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The guardrail policy every manifest deployed here passes first.
    pub policy: PolicyConfig,
    /// Whether a deployment here waits for a person's approval before the real apply.
    pub approval: ApprovalConfig,
}

/// `deploy.environments.<name>.approval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Deployments wait, after the cluster's dry run, until a member of the owning group other than
    /// the requester approves. Default false.
    pub required: bool,
    /// A deployment not approved within this time fails. Default 86,400 s (a day).
    pub timeout_seconds: u64,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            required: false,
            timeout_seconds: 86_400,
        }
    }
}

/// `deploy.clusters[]`: one Kubernetes API server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Name steps and pages use (`dev-eu-1`).
    pub name: String,
    /// Environment whose guardrails apply (`dev`, `staging`, `prod`).
    pub environment: String,
    /// The namespaces Atrium may touch; anything else is refused before a request is sent.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// API server URL (`https://10.0.0.1:6443`). Required unless `kubeconfig` or `in_cluster`.
    #[serde(default)]
    pub url: Option<String>,
    /// PEM bundle of the certificate authorities the API server's certificate is checked against.
    /// Default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Environment variable holding a service-account token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token instead (a mounted secret); read at every connection, so a rotated
    /// token is picked up.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A kubeconfig file to read the server, CA and credentials from.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// With `kubeconfig`: the context to use. Default: the file's current context.
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's own service account (Atrium running in this cluster).
    #[serde(default)]
    pub in_cluster: bool,
}

/// How Atrium authenticates to a cluster: exactly one per cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    TokenEnv(String),
    TokenFile(PathBuf),
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    InCluster,
}

impl ClusterConfig {
    pub fn auth_mode(&self) -> Result<AuthMode, String> {
        let mut modes = Vec::new();
        if let Some(var) = &self.token_env {
            modes.push(AuthMode::TokenEnv(var.clone()));
        }
        if let Some(path) = &self.token_file {
            modes.push(AuthMode::TokenFile(path.clone()));
        }
        if let Some(path) = &self.kubeconfig {
            modes.push(AuthMode::Kubeconfig {
                path: path.clone(),
                context: self.context.clone(),
            });
        }
        if self.in_cluster {
            modes.push(AuthMode::InCluster);
        }
        let mode = match modes.len() {
            1 => modes.remove(0),
            0 => {
                return Err(
                    "say how to authenticate: token_env, token_file, kubeconfig or in_cluster"
                        .to_owned(),
                );
            }
            _ => {
                return Err(
                    "token_env, token_file, kubeconfig and in_cluster exclude each other"
                        .to_owned(),
                );
            }
        };
        let needs_url = matches!(mode, AuthMode::TokenEnv(_) | AuthMode::TokenFile(_));
        if needs_url && self.url.is_none() {
            return Err("`url` is required with token_env or token_file".to_owned());
        }
        if self.context.is_some() && !matches!(mode, AuthMode::Kubeconfig { .. }) {
            return Err("`context` only goes with `kubeconfig`".to_owned());
        }
        Ok(mode)
    }
}
