//! Deployments to Kubernetes: the only module that holds a Kubernetes client, so nothing reaches a
//! cluster around the guardrails.
//!
//! - `config`: clusters and per-environment guardrails from `atrium.yaml`;
//! - `policy`: the guardrails (Pod Security Standards and Atrium's own rules) as pure functions over
//!   manifests, shared with `atrium policy test`;
//! - `health`: health of live objects as Argo CD computes it;
//! - `model`: the manifests that serve a catalog Model (vLLM or KServe);
//! - `cluster`: the kube client (server-side apply, dry runs, discovery, lists);
//! - `service`: one apply in order (labels → guardrails → `dryRun=All` → apply → record), health
//!   waits, rollback and drift;
//! - `db`: deployment records; `actions`: `kube:apply`, `kube:wait`, `deploy:model` for templates;
//!   `api` and `pages`: what people and scripts see.

pub mod actions;
pub mod api;
pub mod cluster;
pub mod config;
pub mod db;
pub mod health;
pub mod model;
pub mod pages;
pub mod policy;
pub mod service;
pub mod workloads;

pub use service::{DeployError, DeployService};
