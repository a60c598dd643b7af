//! Golden paths: Backstage software templates (`scaffolder.backstage.io/v1beta3`) run as durable tasks.
//!
//! - `template`: a `Template` entity's spec (parameter pages, steps, output) read from the catalog;
//! - `params`: parameter validation against each page's JSON Schema;
//! - `expr`: `${{ ... }}` expressions with Backstage's semantics, sandboxed and bounded;
//! - `workspace`: a task's own directory; every path an action touches is resolved inside it;
//! - `source`: where a template's files come from (its catalog location, or a dry run's contents);
//! - `actions`: the built-in actions (`fetch:*`, `publish:*`, `catalog:*`, `fs:*`, `debug:*`);
//! - `tasks`: the task engine on Postgres (queue, lease, fencing, events, checkpoints) and its runner;
//! - `service`: the operations the API and pages use; `api`: Backstage's `/api/scaffolder/v2`.

pub mod actions;
pub mod api;
pub mod expr;
pub mod pages;
pub mod params;
pub mod service;
pub mod source;
pub mod tasks;
pub mod template;
pub mod workspace;

pub use service::ScaffolderService;
