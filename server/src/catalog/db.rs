//! Catalog queries used by the API and the service. Writes of the processing loop live in
//! `ingest::store` and `stitch`, next to the logic that needs them.

use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::filter::{self, Filter};
use super::ingest::read::Target;
use super::{LocationRow, generated_location_key};
use crate::config::OrphanPolicy;

/// Registers a root location; `None` when the same type and target is already registered.
pub async fn insert_root_location(
    db: impl PgExecutor<'_>,
    target: &Target,
    origin: &str,
) -> Result<Option<LocationRow>, sqlx::Error> {
    let id = Uuid::new_v4();
    sqlx::query_as(
        "insert into location (id, type, target, root_id, declared_by, origin)
         values ($1, $2, $3, $1, $4, $5)
         on conflict (type, target) where parent_id is null do nothing
         returning id, type, target, declared_by",
    )
    .bind(id)
    .bind(target.location_type())
    .bind(target.target_string())
    .bind(generated_location_key(target))
    .bind(origin)
    .fetch_optional(db)
    .await
}

/// Deletes a registered location and its tree; its entities become orphans and the policy applies.
pub async fn delete_location(
    tx: &mut PgConnection,
    id: Uuid,
    policy: OrphanPolicy,
) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("delete from location where id = $1 and parent_id is null")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    let touched = super::ingest::store::sweep_orphans(tx, policy).await?;
    super::ingest::store::queue_stitch(tx, touched).await?;
    Ok(true)
}

pub async fn list_locations(db: impl PgExecutor<'_>) -> Result<Vec<LocationRow>, sqlx::Error> {
    sqlx::query_as("select id, type, target, declared_by from location where parent_id is null order by created_at, id")
        .fetch_all(db)
        .await
}

pub async fn get_location(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<LocationRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, type, target, declared_by from location where id = $1 and parent_id is null",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The registered location at the top of the tree that provides an entity.
pub async fn get_location_by_entity(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<LocationRow>, sqlx::Error> {
    sqlx::query_as(
        "select r.id, r.type, r.target, r.declared_by from entity e
         join location l on l.id = e.location_id join location r on r.id = l.root_id
         where e.entity_key = $1",
    )
    .bind(key)
    .fetch_optional(db)
    .await
}

pub async fn get_final_by_key(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select final from entity where entity_key = $1 and final is not null")
        .bind(key)
        .fetch_optional(db)
        .await
}

pub async fn get_final_by_uid(
    db: impl PgExecutor<'_>,
    uid: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select final from entity where id = $1 and final is not null")
        .bind(uid)
        .fetch_optional(db)
        .await
}

/// (key, final body) of those of `keys` that exist and match `filter`, in no particular order.
pub async fn get_finals_by_keys(
    db: impl PgExecutor<'_>,
    keys: &[String],
    filter: Option<&Filter>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(
        "select e.entity_key, e.final from entity e where e.entity_key = any(",
    );
    q.push_bind(keys.to_vec()).push(") and e.final is not null");
    if let Some(filter) = filter {
        q.push(" and ");
        filter::push_sql(filter, &mut q);
    }
    q.build_query_as().fetch_all(db).await
}

/// (key, parent key, final) of an entity, for ancestry walks.
pub async fn get_ancestry_step(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<(Option<String>, String)>, sqlx::Error> {
    sqlx::query_as(
        "select parent_key, final from entity where entity_key = $1 and final is not null",
    )
    .bind(key)
    .fetch_optional(db)
    .await
}

/// Deletes one entity by uid; its relations go with it and their other ends re-stitch. Returns false
/// when there was no such entity.
pub async fn delete_entity(tx: &mut PgConnection, uid: Uuid) -> Result<bool, sqlx::Error> {
    let touched: Vec<String> = sqlx::query_scalar(
        "select distinct source_key from relation where originating_entity_id = $1",
    )
    .bind(uid)
    .fetch_all(&mut *tx)
    .await?;
    let deleted: Option<String> =
        sqlx::query_scalar("delete from entity where id = $1 returning entity_key")
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(deleted) = deleted else {
        return Ok(false);
    };
    let touched = touched.into_iter().filter(|k| *k != deleted).collect();
    super::ingest::store::queue_stitch(tx, touched).await?;
    Ok(true)
}

/// The field an entity list is ordered by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderField {
    pub field: String,
    pub descending: bool,
}

impl OrderField {
    /// SQL for the sort value: a real column for hot fields, else the first indexed value.
    fn sql(&self) -> String {
        match filter::column_of(&self.field) {
            Some(column) => column.to_owned(),
            None => format!("(e.search -> '{}' ->> 0)", self.field.replace('\'', "''")),
        }
    }

    fn nullable(&self) -> bool {
        !matches!(
            self.field.as_str(),
            "kind" | "metadata.name" | "metadata.namespace"
        )
    }
}

/// Text search: `term` must appear in one of `fields` (default: name, title, description, tags, kind,
/// type, lifecycle, owner).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FullText {
    pub term: String,
    pub fields: Vec<String>,
}

/// Where a keyset page starts: after (or before, going back) this sort value and uid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Keyset {
    pub sort_value: Option<String>,
    pub uid: Uuid,
    pub backwards: bool,
}

/// One query against the entity set.
#[derive(Debug, Default, Clone)]
pub struct EntityQuery<'a> {
    pub filter: Option<&'a Filter>,
    pub full_text: Option<&'a FullText>,
    pub order: &'a [OrderField],
    pub keyset: Option<&'a Keyset>,
    pub offset: Option<i64>,
    pub limit: Option<i64>,
}

fn push_where(q: &mut QueryBuilder<Postgres>, query: &EntityQuery<'_>) {
    q.push(" where e.final is not null");
    if let Some(filter) = query.filter {
        q.push(" and ");
        filter::push_sql(filter, q);
    }
    if let Some(text) = query.full_text {
        let pattern = format!("%{}%", filter::escape_like(&text.term.to_lowercase()));
        if text.fields.is_empty() {
            q.push(" and e.search_text like ")
                .push_bind(pattern)
                .push(" escape '\\'");
        } else {
            q.push(" and exists (select 1 from unnest(")
                .push_bind(
                    text.fields
                        .iter()
                        .map(|f| f.to_lowercase())
                        .collect::<Vec<_>>(),
                )
                .push("::text[]) f, jsonb_array_elements_text(e.search -> f) v where v like ")
                .push_bind(pattern)
                .push(" escape '\\')");
        }
    }
}

/// (uid, sort value, final) rows of one page.
pub type PageRow = (Uuid, Option<String>, String);

pub async fn query_entities(
    db: impl PgExecutor<'_>,
    query: &EntityQuery<'_>,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let order = query.order.first();
    let sort_sql = order
        .map(OrderField::sql)
        .unwrap_or_else(|| "null::text".to_owned());
    let mut q =
        QueryBuilder::<Postgres>::new(format!("select e.id, {sort_sql}, e.final from entity e"));
    push_where(&mut q, query);
    let descending = order.is_some_and(|o| o.descending);
    if let Some(keyset) = query.keyset {
        // Going backwards flips the comparison; the caller reverses the rows again.
        let forward = descending == keyset.backwards;
        let cmp = if forward { ">" } else { "<" };
        match order {
            Some(order) if order.nullable() => {
                // Entities without the field come last in both directions, so the null flag is compared
                // on its own: past the last non-null row come the nulls (going forward), and before the
                // first null row come the non-nulls (going backwards).
                let null_side = if keyset.backwards { "(" } else { "not (" };
                q.push(format!(" and ((({sort_sql}) is null) = ("))
                    .push_bind(!keyset.backwards)
                    .push(format!(") and {null_side}"))
                    .push_bind(keyset.sort_value.is_none())
                    .push(format!(") or (({sort_sql}) is null) = "))
                    .push_bind(keyset.sort_value.is_none())
                    .push(format!(" and (coalesce({sort_sql}, ''), e.id) {cmp} ("))
                    .push_bind(keyset.sort_value.clone().unwrap_or_default())
                    .push(", ")
                    .push_bind(keyset.uid)
                    .push("))");
            }
            Some(_) => {
                q.push(format!(" and ({sort_sql}, e.id) {cmp} ("))
                    .push_bind(keyset.sort_value.clone().unwrap_or_default())
                    .push(", ")
                    .push_bind(keyset.uid)
                    .push(")");
            }
            None => {
                q.push(format!(" and e.id {cmp} ")).push_bind(keyset.uid);
            }
        }
    }
    let backwards = query.keyset.is_some_and(|k| k.backwards);
    let direction = if descending != backwards {
        "desc"
    } else {
        "asc"
    };
    // Missing values sort last whatever the direction (reversed only while walking backwards).
    let nulls = if backwards { "desc" } else { "asc" };
    q.push(" order by ");
    for order in query.order {
        let dir = if order.descending != backwards {
            "desc"
        } else {
            "asc"
        };
        if order.nullable() {
            q.push(format!("({}) is null {nulls}, ", order.sql()));
        }
        q.push(format!("{} {dir}, ", order.sql()));
    }
    q.push(format!("e.id {direction}"));
    if let Some(limit) = query.limit {
        q.push(" limit ").push_bind(limit);
    }
    if let Some(offset) = query.offset {
        q.push(" offset ").push_bind(offset);
    }
    q.build_query_as().fetch_all(db).await
}

pub async fn count_entities(
    db: impl PgExecutor<'_>,
    query: &EntityQuery<'_>,
) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new("select count(*) from entity e");
    push_where(&mut q, query);
    q.build_query_scalar().fetch_one(db).await
}

/// Facet counts: (value as written, count) for `key` over the entities matching `filter`.
pub async fn facet_counts(
    db: impl PgExecutor<'_>,
    key: &str,
    filter: Option<&Filter>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let key = key.to_lowercase();
    if key.starts_with("relations.") {
        // Relation targets are stored lower-cased already, so `search` holds them as written.
        let mut q = QueryBuilder::<Postgres>::new(
            "select v, count(*) from entity e, jsonb_array_elements_text(e.search -> ",
        );
        q.push_bind(key).push(") v where e.final is not null");
        if let Some(filter) = filter {
            q.push(" and ");
            filter::push_sql(filter, &mut q);
        }
        q.push(" group by v order by count(*) desc, v");
        return q.build_query_as().fetch_all(db).await;
    }
    let mut q = QueryBuilder::<Postgres>::new("select f.value, count(*) from entity_facet f");
    match filter {
        None => {
            q.push(" where f.key = ").push_bind(key.to_lowercase());
        }
        // The usual filter, one or more kinds: answered from (key, kind, value) without a join.
        Some(Filter::In(filter_key, kinds)) if filter_key == "kind" => {
            q.push(" where f.key = ")
                .push_bind(key.to_lowercase())
                .push(" and f.kind = any(")
                .push_bind(kinds.clone())
                .push(")");
        }
        Some(filter) => {
            q.push(" join entity e on e.id = f.entity_id where f.key = ")
                .push_bind(key.to_lowercase())
                .push(" and e.final is not null and ");
            filter::push_sql(filter, &mut q);
        }
    }
    q.push(" group by f.value order by count(*) desc, f.value");
    q.build_query_as().fetch_all(db).await
}

#[derive(Debug, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingStatus {
    pub entities: i64,
    pub entities_pending: i64,
    pub locations: i64,
    pub locations_due: i64,
    pub stitch_queue: i64,
    pub locations_with_errors: i64,
}

/// How far processing has got; `GET /api/atrium/processing` and the metrics gauges.
pub async fn processing_status(db: impl PgExecutor<'_>) -> Result<ProcessingStatus, sqlx::Error> {
    sqlx::query_as(
        "select (select count(*) from entity) as entities,
                (select count(*) from entity where final is null) as entities_pending,
                (select count(*) from location) as locations,
                (select count(*) from location where next_refresh_at <= now()) as locations_due,
                (select count(*) from stitch_queue) as stitch_queue,
                (select count(*) from location where errors <> '[]'::jsonb) as locations_with_errors",
    )
    .fetch_one(db)
    .await
}

/// Joins serialized entities into a JSON array without parsing them again.
pub fn as_json_array(bodies: &[String]) -> String {
    let mut out = String::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, body) in bodies.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(body);
    }
    out.push(']');
    out
}

/// Keeps only `fields` (dotted paths) of an entity, Backstage's `fields` parameter.
pub fn project_fields(entity: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(serde_json::Map::new());
    for field in fields {
        let parts: Vec<&str> = field.split('.').collect();
        let mut source = entity;
        let mut found = true;
        for part in &parts {
            match source.get(part) {
                Some(next) => source = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut target = &mut out;
        for (i, part) in parts.iter().enumerate() {
            let Value::Object(map) = target else { break };
            if i + 1 == parts.len() {
                map.insert((*part).to_owned(), source.clone());
                break;
            }
            target = map
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    out
}
