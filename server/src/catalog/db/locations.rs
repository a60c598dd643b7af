//! Locations: the registered ones (API and config) and the trees of child locations below them.

use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::catalog::filter::Filter;

/// A registered location as the API shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct LocationRow {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub location_type: String,
    pub target: String,
    /// The generated Location entity that represents this registration.
    #[serde(rename = "entityRef")]
    pub entity_ref: String,
}

/// What a new registered location is.
pub struct NewLocation<'a> {
    pub location_type: &'a str,
    pub target: &'a str,
    /// Key of its generated Location entity.
    pub declared_by: &'a str,
    /// `api` or `config`.
    pub origin: &'a str,
}

/// The unique index that makes registered locations unique by type and target.
pub const UNIQUE_REGISTERED_LOCATION: &str = "location_root_type_target_idx";

/// Registers a location. Registering the same type and target twice violates
/// [`UNIQUE_REGISTERED_LOCATION`].
pub async fn insert_location(
    db: impl PgExecutor<'_>,
    location: &NewLocation<'_>,
) -> Result<LocationRow, sqlx::Error> {
    sqlx::query_as!(
        LocationRow,
        r#"insert into location (id, type, target, root_id, declared_by, origin)
           values ($1, $2, $3, $1, $4, $5)
           returning id, type as location_type, target, declared_by as entity_ref"#,
        Uuid::new_v4(),
        location.location_type,
        location.target,
        location.declared_by,
        location.origin,
    )
    .fetch_one(db)
    .await
}

/// Registers a location unless the same type and target already is (config locations at every start).
pub async fn ensure_location(
    db: impl PgExecutor<'_>,
    location: &NewLocation<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into location (id, type, target, root_id, declared_by, origin)
         values ($1, $2, $3, $1, $4, $5)
         on conflict (type, target) where parent_id is null do nothing",
        Uuid::new_v4(),
        location.location_type,
        location.target,
        location.declared_by,
        location.origin,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a registered location and its tree (children cascade; their entities' `location_id`
/// becomes null). False when there was no such registered location.
pub async fn delete_location(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "delete from location where id = $1 and parent_id is null",
        id
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

pub async fn list_locations(db: impl PgExecutor<'_>) -> Result<Vec<LocationRow>, sqlx::Error> {
    sqlx::query_as!(
        LocationRow,
        r#"select id, type as location_type, target, declared_by as entity_ref
           from location where parent_id is null order by created_at, id"#
    )
    .fetch_all(db)
    .await
}

/// The keys a location predicate may name (lower-cased), as Backstage's `POST /locations/by-query`
/// allows them.
pub const LOCATION_FILTER_KEYS: &[&str] = &["id", "type", "target", "entityref"];

/// One page of registered locations matching `filter`, in id order, after `after_id`.
pub async fn query_locations(
    db: impl PgExecutor<'_>,
    filter: Option<&Filter>,
    after_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<LocationRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(
        "select id, type as location_type, target, declared_by as entity_ref from location l",
    );
    push_location_where(&mut q, filter);
    if let Some(after) = after_id {
        q.push(" and l.id > ").push_bind(after);
    }
    q.push(" order by l.id limit ").push_bind(limit);
    q.build_query_as().fetch_all(db).await
}

/// How many registered locations match `filter`.
pub async fn count_locations(
    db: impl PgExecutor<'_>,
    filter: Option<&Filter>,
) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new("select count(*) from location l");
    push_location_where(&mut q, filter);
    q.build_query_scalar().fetch_one(db).await
}

fn push_location_where(q: &mut QueryBuilder<Postgres>, filter: Option<&Filter>) {
    q.push(" where l.parent_id is null");
    if let Some(filter) = filter {
        q.push(" and ");
        super::filter::push_logic(filter, q, push_location_condition);
    }
}

/// A condition on a location's fields, compared case-insensitively (values are already lower-cased).
/// Keys outside [`LOCATION_FILTER_KEYS`] match nothing; the API refuses them first.
fn push_location_condition(filter: &Filter, q: &mut QueryBuilder<Postgres>) {
    let column = |key: &str| match key {
        "id" => Some("l.id::text"),
        "type" => Some("l.type"),
        "target" => Some("l.target"),
        "entityref" => Some("l.declared_by"),
        _ => None,
    };
    match filter {
        Filter::All(_) | Filter::Any(_) | Filter::Not(_) => {
            super::filter::push_logic(filter, q, push_location_condition);
        }
        // Every location has all four fields.
        Filter::Exists(key) => {
            q.push(if column(key).is_some() {
                "true"
            } else {
                "false"
            });
        }
        Filter::In(key, values) => match column(key) {
            Some(column) => {
                q.push(format!("lower({column}) = any("))
                    .push_bind(values.clone())
                    .push(")");
            }
            None => {
                q.push("false");
            }
        },
        Filter::HasPrefix(key, prefix) => match column(key) {
            Some(column) => {
                q.push(format!("lower({column}) like "))
                    .push_bind(format!("{}%", super::filter::escape_like(prefix)))
                    .push(" escape '\\'");
            }
            None => {
                q.push("false");
            }
        },
    }
}

/// Registered locations of one origin (`config`), for syncing them with the configuration.
pub async fn list_locations_of_origin(
    db: impl PgExecutor<'_>,
    origin: &str,
) -> Result<Vec<LocationRow>, sqlx::Error> {
    sqlx::query_as!(
        LocationRow,
        r#"select id, type as location_type, target, declared_by as entity_ref
           from location where parent_id is null and origin = $1"#,
        origin
    )
    .fetch_all(db)
    .await
}

pub async fn get_location(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<LocationRow>, sqlx::Error> {
    sqlx::query_as!(
        LocationRow,
        r#"select id, type as location_type, target, declared_by as entity_ref
           from location where id = $1 and parent_id is null"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The id of the registered location with this type and target, if any.
pub async fn find_location_id(
    db: impl PgExecutor<'_>,
    location_type: &str,
    target: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from location where parent_id is null and type = $1 and target = $2",
        location_type,
        target
    )
    .fetch_optional(db)
    .await
}

/// The registered location at the top of the tree that provides an entity.
pub async fn get_location_by_entity(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<LocationRow>, sqlx::Error> {
    sqlx::query_as!(
        LocationRow,
        r#"select r.id, r.type as location_type, r.target, r.declared_by as entity_ref
           from entity e
           join location l on l.id = e.location_id
           join location r on r.id = l.root_id
           where e.entity_key = $1"#,
        key
    )
    .fetch_optional(db)
    .await
}

/// Serialises the start-up sync of configured locations between replicas, until the transaction ends.
pub async fn lock_config_sync(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_advisory_xact_lock(7007001)")
        .execute(tx)
        .await?;
    Ok(())
}

/// Makes due now the location `id` of an entity (none for an orphan), every location the entity (a
/// Location entity) declared, and, for a file in a git repository, the repository itself. Claims in
/// progress are revoked: their result may predate the change the caller refreshes for.
pub async fn make_due_for_entity(
    db: impl PgExecutor<'_>,
    id: Option<Uuid>,
    entity_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update location set next_refresh_at = now(), claim_token = null
         where id = $1 or declared_by = $2
            or id = (select root_id from location where id = $1 and type = 'git-file')",
        id as Option<Uuid>,
        entity_key
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A registered git repository location.
pub struct GitLocationRow {
    pub id: Uuid,
    pub target: String,
}

pub async fn list_git_locations(
    db: impl PgExecutor<'_>,
) -> Result<Vec<GitLocationRow>, sqlx::Error> {
    sqlx::query_as!(
        GitLocationRow,
        "select id, target from location where type = 'git' and parent_id is null"
    )
    .fetch_all(db)
    .await
}

/// Makes these locations due now and revokes claims in progress.
pub async fn make_due(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update location set next_refresh_at = now(), claim_token = null where id = any($1)",
        ids
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A child location: declared by a Location entity read at its parent.
pub struct ChildLocationRow {
    pub id: Uuid,
    pub location_type: String,
    pub target: String,
    pub declared_by: String,
}

pub async fn list_children(
    tx: &mut PgConnection,
    parent: Uuid,
) -> Result<Vec<ChildLocationRow>, sqlx::Error> {
    sqlx::query_as!(
        ChildLocationRow,
        r#"select id, type as location_type, target, declared_by
           from location where parent_id = $1"#,
        parent
    )
    .fetch_all(tx)
    .await
}

/// Deletes locations (and their subtrees); returns how many were deleted.
pub async fn delete_locations(tx: &mut PgConnection, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!("delete from location where id = any($1)", ids)
        .execute(tx)
        .await?
        .rows_affected())
}

/// A child location to create: (type, target, key of the declaring Location entity).
pub struct NewChild<'a> {
    pub location_type: &'a str,
    pub target: &'a str,
    pub declared_by: &'a str,
}

pub async fn insert_children(
    tx: &mut PgConnection,
    parent: Uuid,
    root: Uuid,
    children: &[NewChild<'_>],
) -> Result<(), sqlx::Error> {
    if children.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = children.iter().map(|_| Uuid::new_v4()).collect();
    let types: Vec<String> = children
        .iter()
        .map(|c| c.location_type.to_owned())
        .collect();
    let targets: Vec<String> = children.iter().map(|c| c.target.to_owned()).collect();
    let declared: Vec<String> = children.iter().map(|c| c.declared_by.to_owned()).collect();
    sqlx::query!(
        "insert into location (id, type, target, parent_id, root_id, declared_by, origin)
         select u.id, u.type, u.target, $5, $6, u.declared_by, 'entity'
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as u(id, type, target, declared_by)",
        &ids,
        &types,
        &targets,
        &declared,
        parent,
        root,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// After a repository was fetched: records each catalog file's new version and makes due the
/// `git-file` children under `repository` whose version changed (a child with no version yet is due
/// too). Making a file due revokes any claim on it: a worker still reading the old commit must not
/// store over the new one.
pub async fn make_changed_files_due(
    tx: &mut PgConnection,
    repository: Uuid,
    targets: &[String],
    versions: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update location l set source_version = u.version, next_refresh_at = now(), claim_token = null
         from unnest($2::text[], $3::text[]) as u(target, version)
         where l.parent_id = $1 and l.type = 'git-file' and l.target = u.target
           and l.source_version is distinct from u.version",
        repository,
        targets,
        versions,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// After a repository moved to a new commit: makes due the `git-file` locations deeper in its tree
/// (declared by Location entities inside the repository), and records the commit.
pub async fn record_repository_commit(
    tx: &mut PgConnection,
    repository: Uuid,
    commit: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update location set next_refresh_at = now(), claim_token = null
         where root_id = $1 and parent_id <> $1 and type = 'git-file'",
        repository
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update location set source_version = $2 where id = $1",
        repository,
        commit
    )
    .execute(tx)
    .await?;
    Ok(())
}
