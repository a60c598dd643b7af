//! One configured cluster's API server, reached with the `kube` client: the only place in Atrium that
//! talks to Kubernetes. Everything here works on JSON objects (`serde_json::Value`) so that any kind,
//! CRDs such as KServe's `InferenceService` included, goes through the same code; the resource of a
//! kind is found by discovery.
//!
//! Nothing here checks guardrails: callers (`apply`) run the policy first.

use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};
use serde_json::Value;

use super::config::{AuthMode, ClusterConfig};

/// Atrium's field manager: what it applied is owned under this name, and a field another manager
/// owns is a conflict, never forced.
pub const FIELD_MANAGER: &str = "atrium";

/// What went wrong talking to a cluster, said so that a task log reader knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A field is owned by another field manager (someone edited the object by hand, or another tool
    /// manages it). Atrium never forces: the user decides.
    #[error(
        "{object}: conflict with field manager {}; Atrium does not force ownership (change or remove those fields elsewhere first)",
        describe_conflicts(.conflicts)
    )]
    Conflict {
        object: String,
        conflicts: Vec<FieldConflict>,
    },
    /// The API server refused the object (validation, admission, quota, RBAC).
    #[error("{object}: the cluster refused it ({code} {reason}): {message}")]
    Refused {
        object: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// The cluster does not serve this kind (a CRD that is not installed).
    #[error("{object}: the cluster has no resource for {api_version} {kind}")]
    UnknownKind {
        object: String,
        api_version: String,
        kind: String,
    },
    /// The API server could not be reached or answered garbage.
    #[error("cluster `{cluster}` is unreachable: {message}")]
    Unreachable { cluster: String, message: String },
    /// A configuration problem (missing token, unreadable CA file, bad URL).
    #[error("cluster `{cluster}`: {message}")]
    Config { cluster: String, message: String },
}

/// One field another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    pub manager: String,
    pub field: String,
}

fn describe_conflicts(conflicts: &[FieldConflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("\"{}\" on {}", c.manager, c.field))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A connected cluster.
#[derive(Clone)]
pub struct ClusterClient {
    client: kube::Client,
    name: String,
}

/// What one server-side apply answered.
#[derive(Debug, Clone)]
pub struct ApplyResult {
    /// The object as the API server stored it (or would store it, in a dry run).
    pub object: Value,
    /// Whether the live object differs from before: false when the same apply was made before.
    pub changed: bool,
}

impl ClusterClient {
    /// Builds a client from the configuration. No request is sent yet.
    pub async fn connect(cluster: &ClusterConfig, timeout: Duration) -> Result<Self, KubeError> {
        let config_error = |message: String| KubeError::Config {
            cluster: cluster.name.clone(),
            message,
        };
        let mode = cluster.auth_mode().map_err(config_error)?;
        let mut config = match &mode {
            AuthMode::TokenEnv(_) | AuthMode::TokenFile(_) => {
                let url = cluster.url.as_deref().unwrap_or_default();
                let uri: axum::http::Uri = url
                    .parse()
                    .map_err(|e| config_error(format!("url `{url}` is not a URL: {e}")))?;
                kube::Config::new(uri)
            }
            AuthMode::Kubeconfig { path, context } => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    config_error(format!("cannot read kubeconfig {}: {e}", path.display()))
                })?;
                let options = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| config_error(format!("kubeconfig {}: {e}", path.display())))?
            }
            AuthMode::InCluster => kube::Config::incluster()
                .map_err(|e| config_error(format!("not running in a cluster: {e}")))?,
        };
        match mode {
            AuthMode::TokenEnv(var) => {
                let token = std::env::var(&var)
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| {
                        config_error(format!("environment variable {var} is not set"))
                    })?;
                config.auth_info.token = Some(token.trim().to_owned().into());
            }
            AuthMode::TokenFile(path) => {
                if !path.is_file() {
                    return Err(config_error(format!(
                        "token file {} does not exist",
                        path.display()
                    )));
                }
                // kube re-reads the file as it expires, so a rotated token is picked up.
                config.auth_info.token_file = Some(path.display().to_string());
            }
            AuthMode::Kubeconfig { .. } | AuthMode::InCluster => {}
        }
        if let Some(url) = &cluster.url
            && !matches!(
                cluster.auth_mode(),
                Ok(AuthMode::TokenEnv(_) | AuthMode::TokenFile(_))
            )
        {
            config.cluster_url = url
                .parse()
                .map_err(|e| config_error(format!("url `{url}` is not a URL: {e}")))?;
        }
        if let Some(ca) = &cluster.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| config_error(format!("cannot read ca_file {}: {e}", ca.display())))?;
            config.root_cert = Some(pem_certificates(&pem).map_err(config_error)?);
        }
        // kube's default retries a 429/503/504 up to 15 times with back-off up to minutes: a step
        // would hang far past its timeout. A failed call fails the step (or the next poll retries).
        config.default_retry = false;
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        let client = kube::Client::try_from(config).map_err(|e| KubeError::Unreachable {
            cluster: cluster.name.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            client,
            name: cluster.name.clone(),
        })
    }

    /// The API server's version (`v1.33.2`): the clusters page's reachability check.
    pub async fn version(&self) -> Result<String, KubeError> {
        self.client
            .apiserver_version()
            .await
            .map(|info| info.git_version)
            .map_err(|e| self.unreachable(&e))
    }

    /// The resource serving `object`'s kind, and whether it is namespaced.
    async fn resource(&self, object: &Value) -> Result<(ApiResource, bool), KubeError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        match pinned_kind(&self.client, &gvk).await {
            Ok((resource, capabilities)) => {
                Ok((resource, matches!(capabilities.scope, Scope::Namespaced)))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Err(KubeError::UnknownKind {
                object: describe(object),
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            }),
            Err(kube::Error::Discovery(_)) => Err(KubeError::UnknownKind {
                object: describe(object),
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            }),
            Err(e) => Err(self.unreachable(&e)),
        }
    }

    async fn api_for(&self, object: &Value) -> Result<Api<DynamicObject>, KubeError> {
        let (resource, namespaced) = self.resource(object).await?;
        let namespace = object["metadata"]["namespace"].as_str();
        Ok(match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resource),
            (true, None) => Api::default_namespaced_with(self.client.clone(), &resource),
            (false, _) => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Server-side apply of one object under [`FIELD_MANAGER`], never forced. `dry_run` sends
    /// `dryRun=All`: the cluster validates and runs admission, and persists nothing.
    pub async fn apply(&self, object: &Value, dry_run: bool) -> Result<ApplyResult, KubeError> {
        let api = self.api_for(object).await?;
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let before = match api.get_opt(name).await {
            Ok(found) => found.and_then(|o| o.metadata.resource_version),
            Err(e) => return Err(self.classify(object, e)),
        };
        let mut params = PatchParams::apply(FIELD_MANAGER).validation_strict();
        if dry_run {
            params = params.dry_run();
        }
        let applied = api
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| self.classify(object, e))?;
        let changed = before.is_none() || applied.metadata.resource_version != before;
        let object = serde_json::to_value(&applied).map_err(|e| KubeError::Unreachable {
            cluster: self.name.clone(),
            message: format!("unreadable answer: {e}"),
        })?;
        Ok(ApplyResult { object, changed })
    }

    /// The live object named like `object` (its apiVersion, kind, namespace and name); `None` when
    /// it does not exist.
    pub async fn get(&self, object: &Value) -> Result<Option<Value>, KubeError> {
        let api = self.api_for(object).await?;
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| self.classify(object, e))?;
        Ok(found.and_then(|o| serde_json::to_value(o).ok()))
    }

    /// Objects of a kind in a namespace (all namespaces when `None`) carrying the labels.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, KubeError> {
        let probe = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
        let (resource, namespaced) = self.resource(&probe).await?;
        let api: Api<DynamicObject> = match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        };
        let list = api
            .list(&ListParams::default().labels(label_selector))
            .await
            .map_err(|e| self.classify(&probe, e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// Recent events about one object, newest last.
    pub async fn events(&self, namespace: &str, name: &str) -> Result<Vec<Value>, KubeError> {
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&());
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let list = api
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await
            .map_err(|e| self.unreachable(&e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    fn unreachable(&self, error: &kube::Error) -> KubeError {
        KubeError::Unreachable {
            cluster: self.name.clone(),
            message: error.to_string(),
        }
    }

    /// Turns a client error into what the user needs to know: a conflict names the other managers.
    fn classify(&self, object: &Value, error: kube::Error) -> KubeError {
        let kube::Error::Api(status) = error else {
            return self.unreachable(&error);
        };
        if status.code == 409 && status.reason == "Conflict" {
            let conflicts: Vec<FieldConflict> = status
                .details
                .as_ref()
                .map(|d| {
                    d.causes
                        .iter()
                        .filter(|c| c.reason == "FieldManagerConflict")
                        .map(|c| FieldConflict {
                            manager: manager_of(&c.message),
                            field: c.field.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !conflicts.is_empty() {
                return KubeError::Conflict {
                    object: describe(object),
                    conflicts,
                };
            }
        }
        if status.code >= 500 {
            return KubeError::Unreachable {
                cluster: self.name.clone(),
                message: format!("{} {}: {}", status.code, status.reason, status.message),
            };
        }
        KubeError::Refused {
            object: describe(object),
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        }
    }
}

/// `conflict with "kubectl-edit" using apps/v1` → `kubectl-edit`.
fn manager_of(message: &str) -> String {
    message
        .split('"')
        .nth(1)
        .map_or_else(|| message.to_owned(), str::to_owned)
}

/// `Deployment/apps/web`: how objects are named in logs and errors.
pub fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("?");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).map_err(|_| "ca_file is not PEM text".to_owned())?;
    let mut certificates = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let body = current.take().ok_or("ca_file: END without BEGIN")?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| format!("ca_file: a certificate is not valid base64: {e}"))?;
            certificates.push(der);
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    if certificates.is_empty() {
        return Err("ca_file holds no certificate".to_owned());
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_message_names_the_manager() {
        assert_eq!(
            manager_of("conflict with \"kubectl-edit\" using apps/v1"),
            "kubectl-edit"
        );
    }

    #[test]
    fn objects_are_named_kind_namespace_name() {
        let deployment = serde_json::json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"}});
        assert_eq!(describe(&deployment), "Deployment/apps/web");
        let role = serde_json::json!({"kind": "ClusterRole", "metadata": {"name": "admin"}});
        assert_eq!(describe(&role), "ClusterRole/admin");
    }

    #[test]
    fn pem_bundles_give_each_certificate() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(pem.as_bytes()).expect("parses"),
            vec![vec![0, 1, 2, 3], vec![4, 5]]
        );
        assert!(pem_certificates(b"nothing").is_err());
    }
}
