//! The permission policy: `permissions` in `atrium.yaml`, rules as data.
//!
//! Scopes (see `scope`) are the ceiling of what a caller may do at all; the policy then decides each
//! action on its target, from the caller's groups, the target entity's owner, the template, the
//! environment and the step. Rules are tried in order and the first whose conditions all hold
//! decides; when none does, `default` does. Holders of the `admin` scope are not subject to the rules
//! (they are the people who can change them).
//!
//! The same evaluation serves requests, scaffolder steps, deployments, the catalog's visibility
//! filter (`residual`, turned into a catalog filter by `catalog::access`) and
//! `atrium policy explain`.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use super::caller::{ActorKind, Caller};
use crate::catalog::model::refs::{EntityRef, RefDefaults};

/// The actions the policy decides. A rule's `actions` names these, or a prefix ending in `*`.
pub const ACTIONS: &[(&str, &str)] = &[
    (
        "catalog.entity.read",
        "see an entity: lists, queries, facets, its page (invisible entities are left out, or 404)",
    ),
    ("catalog.entity.delete", "delete an entity"),
    (
        "catalog.entity.refresh",
        "ask for an entity to be read again",
    ),
    ("catalog.location.create", "register a location"),
    ("catalog.location.delete", "remove a location"),
    (
        "scaffolder.task.create",
        "run a template (the target is the Template entity)",
    ),
    (
        "scaffolder.action.execute",
        "run one step of a task (`steps` names the action id; `environments` the step's environment)",
    ),
    ("deploy.apply", "deploy to an environment"),
    ("deploy.rollback", "roll a deployment back"),
    (
        "deploy.approve",
        "approve or deny a deployment waiting for approval",
    ),
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// `permissions` in `atrium.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// What happens when no rule matches. Default `allow`: the caller's scopes alone decide.
    pub default: Effect,
    /// Tried in order; the first rule whose conditions all hold decides.
    pub rules: Vec<Rule>,
}

/// One rule. Every condition given must hold (a list holds when any of its entries matches); a
/// condition on something the target does not have (an environment, for a catalog read) does not
/// hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Named in denials (the audit log, a failed step, `atrium policy explain`). Unique.
    pub name: String,
    pub effect: Effect,
    /// Action names (`deploy.apply`) or prefixes (`catalog.*`, `*`).
    pub actions: Vec<String>,
    /// The caller is one of these users (`alice`, `user:default/alice`).
    #[serde(default)]
    pub users: Vec<String>,
    /// The caller is a direct member of one of these groups (`group:default/platform`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the caller is calling: `user` (browser session), `token`, `agent`, `guest`.
    #[serde(default)]
    pub callers: Vec<String>,
    /// The caller is one of these agents (agent tokens' names).
    #[serde(default)]
    pub agents: Vec<String>,
    /// `true`: the target entity is owned by the caller or one of their groups; `false`: it is not.
    #[serde(default)]
    pub owner: Option<bool>,
    /// The target entity's kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// The target entity's namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// The target entity itself.
    #[serde(default)]
    pub entities: Vec<String>,
    /// The template being run (`template:default/x`).
    #[serde(default)]
    pub templates: Vec<String>,
    /// The environment deployed to.
    #[serde(default)]
    pub environments: Vec<String>,
    /// The scaffolder action a step runs (`kube:apply`, `publish:*`).
    #[serde(default)]
    pub steps: Vec<String>,
}

/// Who asks, as the policy sees them.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user_ref: String,
    /// Direct `memberOf` groups, lower-cased refs.
    pub groups: Vec<String>,
    pub kind: ActorKind,
    pub agent: Option<String>,
    pub admin: bool,
}

impl Subject {
    pub fn of(caller: &Caller) -> Self {
        Self {
            user_ref: caller.user_ref.to_ascii_lowercase(),
            groups: caller.groups.clone(),
            kind: caller.kind,
            agent: caller.agent.clone(),
            admin: caller.is_admin(),
        }
    }

    /// The refs that make an entity "owned by the caller": the user and their groups.
    pub fn ownership_refs(&self) -> Vec<String> {
        let mut refs = vec![self.user_ref.clone()];
        refs.extend(self.groups.iter().cloned());
        refs
    }
}

/// What an action is done to. Fields a given action has no use for stay empty.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The entity acted on (lower-cased `kind:namespace/name`).
    pub entity: Option<EntityRef>,
    /// Owners of that entity (its `ownedBy` relations), lower-cased refs.
    pub owners: Vec<String>,
    pub template: Option<String>,
    pub environment: Option<String>,
    pub step: Option<String>,
}

impl Target {
    /// The entity as the catalog serves it: its ref and its `ownedBy` relations.
    pub fn entity(entity: &Value) -> Self {
        let owners = entity["relations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["type"].as_str() == Some("ownedBy"))
            .filter_map(|r| r["targetRef"].as_str())
            .map(str::to_ascii_lowercase)
            .collect();
        Self {
            entity: EntityRef::of_entity(entity).map(lower),
            owners,
            ..Self::default()
        }
    }

    pub fn with_template(mut self, template: &str) -> Self {
        self.template = Some(template.to_ascii_lowercase());
        self
    }

    pub fn with_environment(mut self, environment: &str) -> Self {
        self.environment = Some(environment.to_owned());
        self
    }

    pub fn with_step(mut self, action_id: &str) -> Self {
        self.step = Some(action_id.to_owned());
        self
    }

    /// How the audit log names the target.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(entity) = &self.entity {
            parts.push(entity.to_string());
        }
        if let Some(t) = &self.template
            && self.entity.as_ref().is_none_or(|e| e.to_string() != *t)
        {
            parts.push(t.clone());
        }
        if let Some(e) = &self.environment {
            parts.push(format!("environment {e}"));
        }
        if let Some(s) = &self.step {
            parts.push(format!("step {s}"));
        }
        parts.join(", ")
    }
}

fn lower(r: EntityRef) -> EntityRef {
    EntityRef {
        kind: r.kind.to_ascii_lowercase(),
        namespace: r.namespace.to_ascii_lowercase(),
        name: r.name.to_ascii_lowercase(),
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The rule that decided; `None` when the default did (or the caller is an admin).
    pub rule: Option<String>,
    pub admin: bool,
}

impl Decision {
    /// One line for people: `allow (rule platform-deploys-prod)`, `deny (default)`.
    pub fn explain(&self) -> String {
        let verdict = if self.allowed { "allow" } else { "deny" };
        match (&self.rule, self.admin) {
            (_, true) => {
                format!("{verdict} (the caller holds the admin scope; rules do not apply)")
            }
            (Some(rule), _) => format!("{verdict} (rule {rule})"),
            (None, _) => format!("{verdict} (no rule matched; permissions.default)"),
        }
    }
}

/// For one subject and action, the rules that could still decide, with their target conditions
/// only: what a list of entities is filtered by.
#[derive(Debug)]
pub struct Residual<'a> {
    pub rules: Vec<&'a Rule>,
    pub default: Effect,
}

impl Residual<'_> {
    /// Whether every target is allowed whatever it is (no filter needed).
    pub fn allows_everything(&self) -> bool {
        self.default == Effect::Allow && self.rules.iter().all(|r| r.effect == Effect::Allow)
    }
}

impl Policy {
    /// Checks the rules when the configuration is read: every problem with its place.
    pub fn check(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("permissions.rules[{i}] ({})", rule.name);
            if rule.name.trim().is_empty() {
                return Err(format!("permissions.rules[{i}]: a rule needs a name"));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(format!("{at}: another rule has this name"));
            }
            if rule.actions.is_empty() {
                return Err(format!(
                    "{at}: `actions` is empty; name the actions it decides (or `*`)"
                ));
            }
            for action in &rule.actions {
                let known = match action.strip_suffix('*') {
                    Some(prefix) => ACTIONS.iter().any(|(a, _)| a.starts_with(prefix)),
                    None => ACTIONS.iter().any(|(a, _)| a == action),
                };
                if !known {
                    return Err(format!(
                        "{at}: unknown action `{action}`; the actions are {}",
                        ACTIONS
                            .iter()
                            .map(|(a, _)| *a)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            for caller in &rule.callers {
                if !matches!(caller.as_str(), "user" | "token" | "agent" | "guest") {
                    return Err(format!(
                        "{at}: unknown caller `{caller}`; callers are user, token, agent, guest"
                    ));
                }
            }
            for (field, refs, kind) in [
                ("users", &rule.users, "user"),
                ("groups", &rule.groups, "group"),
                ("entities", &rule.entities, ""),
                ("templates", &rule.templates, "template"),
            ] {
                for raw in refs {
                    entity_ref(raw, kind).map_err(|e| format!("{at}: {field}: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Whether any rule looks at the caller's groups (directly or through ownership): only then is
    /// group membership read from the catalog for each request.
    pub fn uses_groups(&self) -> bool {
        self.rules
            .iter()
            .any(|r| !r.groups.is_empty() || r.owner.is_some())
    }

    /// Whether the policy can ever hide an entity: only then are catalog reads filtered.
    pub fn restricts_reads(&self) -> bool {
        self.default == Effect::Deny
            || self
                .rules
                .iter()
                .any(|r| r.effect == Effect::Deny && r.names_action("catalog.entity.read"))
    }

    /// [`Policy::decide`] for a caller.
    pub fn decide_for(&self, caller: &Caller, action: &str, target: &Target) -> Decision {
        self.decide(&Subject::of(caller), action, target)
    }

    pub fn decide(&self, subject: &Subject, action: &str, target: &Target) -> Decision {
        if subject.admin {
            return Decision {
                allowed: true,
                rule: None,
                admin: true,
            };
        }
        for rule in &self.rules {
            if rule.names_action(action)
                && rule.holds_for_subject(subject)
                && rule.holds_for_target(subject, target)
            {
                return Decision {
                    allowed: rule.effect == Effect::Allow,
                    rule: Some(rule.name.clone()),
                    admin: false,
                };
            }
        }
        Decision {
            allowed: self.default == Effect::Allow,
            rule: None,
            admin: false,
        }
    }

    /// The rules left once the subject and action are known: those naming the action whose caller
    /// conditions hold and that can apply to an entity (none naming templates, environments or steps,
    /// which an entity does not have). Admins get no rules and `allow`.
    pub fn residual(&self, subject: &Subject, action: &str) -> Residual<'_> {
        if subject.admin {
            return Residual {
                rules: Vec::new(),
                default: Effect::Allow,
            };
        }
        Residual {
            rules: self
                .rules
                .iter()
                .filter(|r| r.names_action(action) && r.holds_for_subject(subject))
                .filter(|r| {
                    r.templates.is_empty() && r.environments.is_empty() && r.steps.is_empty()
                })
                .collect(),
            default: self.default,
        }
    }
}

impl Rule {
    fn names_action(&self, action: &str) -> bool {
        self.actions.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => action.starts_with(prefix),
            None => a == action,
        })
    }

    fn holds_for_subject(&self, subject: &Subject) -> bool {
        let user_ok = self.users.is_empty()
            || self
                .users
                .iter()
                .any(|u| ref_key(u, "user") == subject.user_ref);
        let group_ok = self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| subject.groups.contains(&ref_key(g, "group")));
        let caller_ok =
            self.callers.is_empty() || self.callers.iter().any(|c| c == subject.kind.as_str());
        let agent_ok = self.agents.is_empty()
            || subject
                .agent
                .as_ref()
                .is_some_and(|a| self.agents.iter().any(|x| x == a));
        user_ok && group_ok && caller_ok && agent_ok
    }

    fn holds_for_target(&self, subject: &Subject, target: &Target) -> bool {
        let entity = target.entity.as_ref();
        let kind_ok = self.kinds.is_empty()
            || entity.is_some_and(|e| self.kinds.iter().any(|k| k.eq_ignore_ascii_case(&e.kind)));
        let namespace_ok = self.namespaces.is_empty()
            || entity.is_some_and(|e| {
                self.namespaces
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&e.namespace))
            });
        let entity_ok = self.entities.is_empty()
            || entity.is_some_and(|e| {
                let key = e.to_string();
                self.entities.iter().any(|x| ref_key(x, "") == key)
            });
        let owner_ok = match self.owner {
            None => true,
            Some(wanted) => {
                let owned = entity.is_some()
                    && subject
                        .ownership_refs()
                        .iter()
                        .any(|r| target.owners.contains(r));
                owned == wanted
            }
        };
        let template_ok = self.templates.is_empty()
            || target
                .template
                .as_ref()
                .is_some_and(|t| self.templates.iter().any(|x| ref_key(x, "template") == *t));
        let environment_ok = self.environments.is_empty()
            || target
                .environment
                .as_ref()
                .is_some_and(|env| self.environments.iter().any(|x| x == env));
        let step_ok = self.steps.is_empty()
            || target.step.as_ref().is_some_and(|s| {
                self.steps.iter().any(|x| match x.strip_suffix('*') {
                    Some(prefix) => s.starts_with(prefix),
                    None => x == s,
                })
            });
        kind_ok && namespace_ok && entity_ok && owner_ok && template_ok && environment_ok && step_ok
    }
}

fn entity_ref(raw: &str, default_kind: &str) -> Result<EntityRef, String> {
    EntityRef::parse(
        raw,
        RefDefaults {
            kind: (!default_kind.is_empty()).then_some(default_kind),
            namespace: "default",
        },
    )
    .map(lower)
    .map_err(|e| format!("`{raw}`: {e}"))
}

/// A ref as written in a rule, in the lower-cased `kind:namespace/name` the policy compares (checked
/// at start-up, so a bad one never reaches here).
pub fn ref_key(raw: &str, default_kind: &str) -> String {
    entity_ref(raw, default_kind)
        .map(|r| r.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(yaml: &str) -> Policy {
        let policy: Policy = serde_saphyr::from_str(yaml).expect("yaml");
        policy.check().expect("valid");
        policy
    }

    fn alice(groups: &[&str]) -> Subject {
        Subject {
            user_ref: "user:default/alice".to_owned(),
            groups: groups.iter().map(ToString::to_string).collect(),
            kind: ActorKind::User,
            agent: None,
            admin: false,
        }
    }

    const PROD: &str = r#"
rules:
  - name: platform-deploys-prod
    effect: allow
    actions: [deploy.*]
    environments: [prod]
    groups: [platform]
  - name: nobody-else-deploys-prod
    effect: deny
    actions: [deploy.*]
    environments: [prod]
"#;

    #[test]
    fn the_first_matching_rule_decides() {
        let p = policy(PROD);
        let prod = Target::default().with_environment("prod");
        let outsider = p.decide(&alice(&[]), "deploy.apply", &prod);
        assert_eq!(
            outsider,
            Decision {
                allowed: false,
                rule: Some("nobody-else-deploys-prod".into()),
                admin: false
            }
        );
        let member = p.decide(
            &alice(&["group:default/platform"]),
            "deploy.rollback",
            &prod,
        );
        assert!(member.allowed);
        assert_eq!(member.rule.as_deref(), Some("platform-deploys-prod"));
        let dev = p.decide(
            &alice(&[]),
            "deploy.apply",
            &Target::default().with_environment("dev"),
        );
        assert_eq!(dev.rule, None);
        assert!(dev.allowed);
        let mut admin = alice(&[]);
        admin.admin = true;
        assert!(p.decide(&admin, "deploy.apply", &prod).allowed);
    }

    #[test]
    fn ownership_comes_from_the_targets_relations_and_the_callers_groups() {
        let p = policy(
            r#"
default: deny
rules:
  - name: owners-delete
    effect: allow
    actions: [catalog.entity.delete]
    owner: true
"#,
        );
        let entity = Target::entity(&json!({
            "kind": "Component",
            "metadata": {"name": "Web", "namespace": "default"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/Team-A"}]
        }));
        assert!(
            p.decide(
                &alice(&["group:default/team-a"]),
                "catalog.entity.delete",
                &entity
            )
            .allowed
        );
        let denied = p.decide(
            &alice(&["group:default/team-b"]),
            "catalog.entity.delete",
            &entity,
        );
        assert!(!denied.allowed);
        assert_eq!(denied.rule, None);
    }

    #[test]
    fn a_condition_on_what_the_target_lacks_does_not_hold() {
        let p = policy(
            r#"
rules:
  - name: no-prod-templates
    effect: deny
    actions: ["*"]
    environments: [prod]
"#,
        );
        let read = Target::entity(&json!({"kind": "API", "metadata": {"name": "x"}}));
        assert!(p.decide(&alice(&[]), "catalog.entity.read", &read).allowed);
        assert!(
            p.residual(&alice(&[]), "catalog.entity.read")
                .rules
                .is_empty()
        );
    }

    #[test]
    fn bad_rules_are_refused_with_their_place() {
        for (yaml, expected) in [
            (
                "rules: [{name: a, effect: allow, actions: [catalog.entity.reed]}]",
                "permissions.rules[0] (a): unknown action `catalog.entity.reed`",
            ),
            (
                "rules: [{name: a, effect: allow, actions: []}]",
                "`actions` is empty",
            ),
            (
                "rules: [{name: a, effect: allow, actions: ['*']}, {name: a, effect: deny, actions: ['*']}]",
                "permissions.rules[1] (a): another rule has this name",
            ),
            (
                "rules: [{name: a, effect: allow, actions: ['*'], callers: [robot]}]",
                "unknown caller `robot`",
            ),
            (
                "rules: [{name: a, effect: allow, actions: ['*'], groups: ['group:']}]",
                "permissions.rules[0] (a): groups: `group:`",
            ),
        ] {
            let p: Policy = serde_saphyr::from_str(yaml).expect("yaml");
            let error = p.check().expect_err(yaml);
            assert!(error.contains(expected), "{error}");
        }
        let typo: Result<Policy, _> =
            serde_saphyr::from_str("rules: [{name: a, effect: allow, actions: ['*'], group: [x]}]");
        assert!(typo.is_err());
    }

    #[test]
    fn agents_and_callers_narrow_a_rule() {
        let p = policy(
            r#"
rules:
  - name: bots-only-dev
    effect: deny
    actions: [deploy.apply, scaffolder.action.execute]
    callers: [agent]
    environments: [staging, prod]
"#,
        );
        let mut bot = alice(&[]);
        bot.kind = ActorKind::Agent;
        bot.agent = Some("deployer".into());
        let prod = Target::default().with_environment("prod");
        assert!(!p.decide(&bot, "deploy.apply", &prod).allowed);
        assert!(p.decide(&alice(&[]), "deploy.apply", &prod).allowed);
    }
}
