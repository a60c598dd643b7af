//! Golden paths: Backstage software templates (`scaffolder.backstage.io/v1beta3`) run as durable tasks.
//!
//! - `template`: a `Template` entity's spec (parameter pages, steps, output) read from the catalog;
//! - `expr`: `${{ ... }}` expressions with Backstage's semantics, sandboxed and bounded;
//! - `params`: parameter validation against each page's JSON Schema;
//! - `workspace`: a task's own directory; every path an action touches is resolved inside it;
//! - `source`: where a template's files come from (its catalog location, or a dry run's contents);
//! - `actions`: the built-in actions (`fetch:*`, `publish:*`, `catalog:*`, `fs:*`, `debug:*`);
//! - `tasks`: the task engine on Postgres (queue, lease, fencing, events, checkpoints) and its runner;
//! - `api`: Backstage's `/api/scaffolder/v2`.

pub mod actions;
pub mod expr;
pub mod source;
pub mod workspace;
