//! A `Filter` as SQL: conditions on the entity row `e`.
//!
//! `kind`, `metadata.name`, `metadata.namespace`, `spec.type`, `spec.lifecycle` and `spec.owner` are real
//! lower-cased columns (with statistics the planner trusts); every other key is a containment test on
//! the GIN-indexed `search` jsonb (see `catalog::search`).

use sqlx::{Postgres, QueryBuilder};

use crate::catalog::filter::Filter;

/// The real column holding a key, when there is one. All hold lower-cased strings: validation makes
/// these fields strings for every kind, so the column holds exactly what `search` would.
pub fn column_of(key: &str) -> Option<&'static str> {
    match key {
        "kind" => Some("e.kind"),
        "metadata.name" => Some("e.name"),
        "metadata.namespace" => Some("e.namespace"),
        "spec.type" => Some("e.spec_type"),
        "spec.lifecycle" => Some("e.lifecycle"),
        "spec.owner" => Some("e.owner"),
        _ => None,
    }
}

/// Columns that every entity has (the others may be null when the field is absent).
fn always_present(column: &str) -> bool {
    matches!(column, "e.kind" | "e.name" | "e.namespace")
}

/// A condition on one field (`Exists`, `In`, `HasPrefix`) as SQL.
pub type PushCondition = fn(&Filter, &mut QueryBuilder<Postgres>);

/// Appends `filter` as SQL: the logic (`$all`, `$any`, `$not`) here, each field condition by
/// `condition`, so entity and location filters share it.
pub fn push_logic(filter: &Filter, query: &mut QueryBuilder<Postgres>, condition: PushCondition) {
    match filter {
        Filter::All(items) | Filter::Any(items) if items.is_empty() => {
            query.push(if matches!(filter, Filter::All(_)) {
                "true"
            } else {
                "false"
            });
        }
        Filter::All(items) | Filter::Any(items) => {
            let joiner = if matches!(filter, Filter::All(_)) {
                " and "
            } else {
                " or "
            };
            query.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    query.push(joiner);
                }
                push_logic(item, query, condition);
            }
            query.push(")");
        }
        Filter::Not(inner) => {
            query.push("not ");
            push_logic(inner, query, condition);
        }
        field => condition(field, query),
    }
}

/// Appends the SQL condition for `filter` (on table alias `e`) to `query`.
pub fn push_sql(filter: &Filter, query: &mut QueryBuilder<Postgres>) {
    push_logic(filter, query, push_entity_condition);
}

fn push_entity_condition(filter: &Filter, query: &mut QueryBuilder<Postgres>) {
    match filter {
        // The logic is push_logic's.
        Filter::All(_) | Filter::Any(_) | Filter::Not(_) => push_sql(filter, query),
        Filter::Exists(key) => match column_of(key) {
            Some(column) if always_present(column) => {
                query.push("true");
            }
            Some(column) => {
                query.push(format!("{column} is not null"));
            }
            None => {
                query.push("e.search ? ").push_bind(key.clone());
            }
        },
        Filter::In(key, values) => match column_of(key) {
            // A plain `=` keeps the (kind, id) index usable for ordered pages.
            Some(column) if values.len() == 1 => {
                query
                    .push(format!("{column} = "))
                    .push_bind(values[0].clone());
            }
            Some(column) => {
                query
                    .push(format!("{column} = any("))
                    .push_bind(values.clone())
                    .push(")");
            }
            None => {
                query.push("(");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        query.push(" or ");
                    }
                    let probe = serde_json::json!({ key.clone(): [value] });
                    query.push("e.search @> ").push_bind(probe);
                }
                query.push(")");
            }
        },
        Filter::HasPrefix(key, prefix) => {
            let pattern = format!("{}%", escape_like(prefix));
            match column_of(key) {
                Some(column) => {
                    query
                        .push(format!("{column} like "))
                        .push_bind(pattern)
                        .push(" escape '\\'");
                }
                None => {
                    query
                        .push("exists (select 1 from jsonb_array_elements_text(e.search -> ")
                        .push_bind(key.clone())
                        .push(") v where v like ")
                        .push_bind(pattern)
                        .push(" escape '\\')");
                }
            }
        }
    }
}

pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::filter::parse_filter_params;

    #[test]
    fn sql_uses_columns_for_hot_keys_and_containment_otherwise() {
        let filter =
            "kind=component,spec.type=service,metadata.tags,spec.system=x,spec.owner".to_owned();
        let f = parse_filter_params(&[filter]).expect("parses");
        let mut q = QueryBuilder::<Postgres>::new("");
        push_sql(&f.expect("some"), &mut q);
        assert_eq!(
            q.sql().as_str(),
            "(e.kind = $1 and e.spec_type = $2 and e.search ? $3 and (e.search @> $4) and e.owner is not null)"
        );
    }
}
