//! The catalog: entities read from locations, validated, related and served through a
//! Backstage-compatible API and the portal's pages.
//!
//! Layers, top down (a module only uses the ones below it):
//!
//! - `api` (the Backstage REST API) and `pages` (HTML): handlers, thin;
//! - `service` (`CatalogService`): registering locations, refreshes, dry runs, the workers;
//! - `ingest` (the processing loop: `process` a location, `store` the outcome, `stitch` final
//!   entities) and `lint` (`atrium validate`);
//! - `source` (location targets, their rules, reading them; git through `crate::git`), `db` (all SQL);
//! - `model` (entities, refs, validation, relations), `yaml`, `placeholder`, `search` (flattening an
//!   entity for filters), `filter` (the filter language): pure, no I/O.

pub mod access;
pub mod answers;
pub mod api;
pub mod db;
pub mod filter;
pub mod generation_cache;
pub mod generation_watch;
pub mod ingest;
pub mod kept_bodies;
pub mod lint;
pub mod list_answers;
pub mod model;
pub mod pages;
pub mod placeholder;
pub mod search;
pub mod service;
pub mod skills;
pub mod source;
pub mod yaml;

pub use service::CatalogService;
