//! Identity: who is calling, and what they may do.
//!
//! - `scope`: what a caller may do (`catalog:read`, `template:run:<ref>`, `deploy:<env>`, `admin`);
//! - `caller`: the caller of a request, put there by `middleware` and taken by handlers;
//! - `token`: API token strings (prefix, randomness, checksum; only their hash is stored);
//! - `config`: `auth` in `atrium.yaml`;
//! - `policy`: `permissions` in `atrium.yaml`, the rules each action on its target is decided by;
//! - `signin`: `/signin`, the round trip to an OpenID Connect provider or GitHub, `/signout`.
//!
//! Every route but health, metrics, static assets, sign-in and signed webhooks needs a caller: a
//! session (browser), an API token (`Authorization: Bearer atr_...`), or guest mode when it is on.

pub mod agents;
pub mod api;
pub mod caller;
pub mod config;
pub mod db;
pub mod github;
pub mod middleware;
pub mod oidc;
pub mod pages;
pub mod policy;
pub mod scope;
pub mod service;
pub mod signin;
pub mod token;

pub use caller::{ActorKind, Caller};
pub use scope::{Scope, Scopes};
pub use service::AuthService;
