//! Which entities a caller may see: `catalog.entity.read` of the permission policy, as a catalog
//! [`Filter`] added to every list, query, facet count and page, and as a check on single entities
//! (an entity the caller may not see is answered as not found, so its existence is not told).
//!
//! When no rule can hide an entity (the usual configuration) nothing is added and no entity is
//! parsed: reads cost what they cost without a policy.

use serde_json::Value;

use crate::auth::Caller;
use crate::auth::policy::{Effect, Policy, Rule, Subject, Target, ref_key};
use crate::catalog::filter::Filter;

pub const READ: &str = "catalog.entity.read";

/// What the caller may see as a filter; `None` when they may see everything.
pub fn visible(policy: &Policy, caller: &Caller) -> Option<Filter> {
    if !policy.restricts_reads() {
        return None;
    }
    let subject = Subject::of(caller);
    let residual = policy.residual(&subject, READ);
    if residual.allows_everything() {
        return None;
    }
    // First match wins: fold from the last rule back, starting from the default.
    let mut visible = match residual.default {
        Effect::Allow => Filter::All(Vec::new()),
        Effect::Deny => Filter::Any(Vec::new()),
    };
    for rule in residual.rules.iter().rev() {
        let condition = condition_of(rule, &subject);
        visible = match rule.effect {
            Effect::Allow => or(condition, visible),
            Effect::Deny => and(not(condition), visible),
        };
    }
    (!is_true(&visible)).then_some(visible)
}

/// `filter` narrowed to what the caller may see.
pub fn restrict(filter: Option<&Filter>, visible: Option<&Filter>) -> Option<Filter> {
    match (filter, visible) {
        (None, None) => None,
        (Some(f), None) | (None, Some(f)) => Some(f.clone()),
        (Some(f), Some(v)) => Some(Filter::All(vec![f.clone(), v.clone()])),
    }
}

/// Whether the caller may see this entity (a served body, with its relations).
pub fn may_read(policy: &Policy, caller: &Caller, entity: &Value) -> bool {
    !policy.restricts_reads()
        || policy
            .decide_for(caller, READ, &Target::entity(entity))
            .allowed
}

/// [`may_read`] for a body as stored (JSON text): parsed only when a rule could hide it.
pub fn may_read_body(policy: &Policy, caller: &Caller, body: &str) -> bool {
    if !policy.restricts_reads() {
        return true;
    }
    serde_json::from_str::<Value>(body).is_ok_and(|entity| may_read(policy, caller, &entity))
}

/// A rule's conditions on the entity, as a filter (the caller's were settled by `residual`).
fn condition_of(rule: &Rule, subject: &Subject) -> Filter {
    let lower = |items: &[String]| items.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
    let mut all = Vec::new();
    if !rule.kinds.is_empty() {
        all.push(Filter::In("kind".to_owned(), lower(&rule.kinds)));
    }
    if !rule.namespaces.is_empty() {
        all.push(Filter::In(
            "metadata.namespace".to_owned(),
            lower(&rule.namespaces),
        ));
    }
    if !rule.entities.is_empty() {
        all.push(Filter::Any(
            rule.entities
                .iter()
                .map(|raw| ref_key(raw, ""))
                .filter_map(|key| {
                    let (kind, rest) = key.split_once(':')?;
                    let (namespace, name) = rest.split_once('/')?;
                    Some(Filter::All(vec![
                        Filter::In("kind".to_owned(), vec![kind.to_owned()]),
                        Filter::In("metadata.namespace".to_owned(), vec![namespace.to_owned()]),
                        Filter::In("metadata.name".to_owned(), vec![name.to_owned()]),
                    ]))
                })
                .collect(),
        ));
    }
    if let Some(wanted) = rule.owner {
        let owned = Filter::In("relations.ownedby".to_owned(), subject.ownership_refs());
        all.push(if wanted { owned } else { not(owned) });
    }
    if all.len() == 1 {
        all.remove(0)
    } else {
        Filter::All(all)
    }
}

fn is_true(f: &Filter) -> bool {
    matches!(f, Filter::All(items) if items.is_empty())
}

fn is_false(f: &Filter) -> bool {
    matches!(f, Filter::Any(items) if items.is_empty())
}

fn or(a: Filter, b: Filter) -> Filter {
    if is_true(&a) || is_true(&b) {
        Filter::All(Vec::new())
    } else if is_false(&a) {
        b
    } else if is_false(&b) {
        a
    } else {
        Filter::Any(vec![a, b])
    }
}

fn and(a: Filter, b: Filter) -> Filter {
    if is_false(&a) || is_false(&b) {
        Filter::Any(Vec::new())
    } else if is_true(&a) {
        b
    } else if is_true(&b) {
        a
    } else {
        Filter::All(vec![a, b])
    }
}

fn not(a: Filter) -> Filter {
    if is_true(&a) {
        Filter::Any(Vec::new())
    } else if is_false(&a) {
        Filter::All(Vec::new())
    } else {
        Filter::Not(Box::new(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::caller::ActorKind;

    fn caller(groups: &[&str]) -> Caller {
        let mut caller = Caller::guest();
        caller.user_ref = "user:default/alice".to_owned();
        caller.kind = ActorKind::User;
        caller.groups = groups.iter().map(ToString::to_string).collect();
        caller
    }

    fn policy(yaml: &str) -> Policy {
        let policy: Policy = serde_saphyr::from_str(yaml).expect("yaml");
        policy.check().expect("valid");
        policy
    }

    #[test]
    fn no_rule_that_hides_means_no_filter() {
        assert_eq!(visible(&Policy::default(), &caller(&[])), None);
        let only_allows = policy("rules: [{name: a, effect: allow, actions: ['*'], kinds: [API]}]");
        assert_eq!(visible(&only_allows, &caller(&[])), None);
    }

    #[test]
    fn rules_fold_into_one_filter_in_order() {
        let p = policy(
            r#"
default: deny
rules:
  - {name: own-group-sees-secret, effect: allow, actions: [catalog.entity.read], groups: [security], namespaces: [secret]}
  - {name: nobody-else-sees-secret, effect: deny, actions: [catalog.entity.read], namespaces: [secret]}
  - {name: everyone-sees-the-rest, effect: allow, actions: [catalog.*]}
"#,
        );
        // An outsider: the first rule is gone (its group does not hold), the rest fold.
        assert_eq!(
            visible(&p, &caller(&[])),
            Some(Filter::Not(Box::new(Filter::In(
                "metadata.namespace".into(),
                vec!["secret".into()]
            ))))
        );
        // A member: the namespace by the first rule, anything else by the third.
        let secret = Filter::In("metadata.namespace".into(), vec!["secret".into()]);
        assert_eq!(
            visible(&p, &caller(&["group:default/security"])),
            Some(Filter::Any(vec![
                secret.clone(),
                Filter::Not(Box::new(secret))
            ]))
        );
    }

    #[test]
    fn ownership_is_the_callers_refs_in_the_relations() {
        let p = policy(
            "default: deny\nrules: [{name: mine, effect: allow, actions: [catalog.entity.read], owner: true}]",
        );
        assert_eq!(
            visible(&p, &caller(&["group:default/team-a"])),
            Some(Filter::In(
                "relations.ownedby".into(),
                vec!["user:default/alice".into(), "group:default/team-a".into()]
            ))
        );
    }
}
