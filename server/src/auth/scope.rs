//! What a caller may do: scopes, as API tokens carry them and as sessions are given them.
//!
//! `catalog:read`, `catalog:write` (implies read), `template:run:<template ref>` (or `template:run:*`),
//! `deploy:<environment>` (or `deploy:*`), `admin` (everything, including other users' tasks, tokens and
//! the audit log).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    CatalogRead,
    CatalogWrite,
    /// A template ref in canonical form (`template:default/x`), or `*`.
    TemplateRun(String),
    /// An environment name, or `*`.
    Deploy(String),
    Admin,
}

impl Scope {
    /// Parses a scope as written in token requests; template refs are made canonical.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        match raw {
            "catalog:read" => return Ok(Self::CatalogRead),
            "catalog:write" => return Ok(Self::CatalogWrite),
            "admin" => return Ok(Self::Admin),
            _ => {}
        }
        if let Some(template) = raw.strip_prefix("template:run:") {
            if template == "*" {
                return Ok(Self::TemplateRun("*".to_owned()));
            }
            return canonical_template_ref(template)
                .map(Self::TemplateRun)
                .ok_or_else(|| format!("scope `{raw}`: `{template}` is not a template reference"));
        }
        if let Some(environment) = raw.strip_prefix("deploy:") {
            let valid = environment == "*"
                || (!environment.is_empty()
                    && environment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
            if valid {
                return Ok(Self::Deploy(environment.to_owned()));
            }
        }
        Err(format!(
            "unknown scope `{raw}`; scopes are catalog:read, catalog:write, template:run:<template ref>, deploy:<environment>, admin"
        ))
    }

    /// Whether holding `self` allows what `wanted` names.
    pub fn covers(&self, wanted: &Scope) -> bool {
        match (self, wanted) {
            (Self::Admin, _) | (Self::CatalogWrite, Self::CatalogRead) => true,
            (Self::TemplateRun(held), Self::TemplateRun(want))
            | (Self::Deploy(held), Self::Deploy(want)) => held == "*" || held == want,
            (held, want) => held == want,
        }
    }
}

/// `template:default/x`, `default/x` or `x` → `template:default/x`.
pub fn canonical_template_ref(raw: &str) -> Option<String> {
    let raw = raw.trim().to_ascii_lowercase();
    let rest = raw.strip_prefix("template:").unwrap_or(&raw);
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    let part_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (part_ok(namespace) && part_ok(name)).then(|| format!("template:{namespace}/{name}"))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CatalogRead => f.write_str("catalog:read"),
            Self::CatalogWrite => f.write_str("catalog:write"),
            Self::TemplateRun(template) => {
                let template = template.strip_prefix("template:").unwrap_or(template);
                write!(f, "template:run:{template}")
            }
            Self::Deploy(environment) => write!(f, "deploy:{environment}"),
            Self::Admin => f.write_str("admin"),
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    pub fn parse_all(raw: &[String]) -> Result<Self, String> {
        let mut scopes = raw
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(Self(scopes))
    }

    pub fn allows(&self, wanted: &Scope) -> bool {
        self.0.iter().any(|held| held.covers(wanted))
    }

    /// Whether every scope of `other` is allowed by these (a token may not be wider than its maker).
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.0.iter().all(|scope| self.allows(scope))
    }

    pub fn strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// What a signed-in person may do before the permission policy narrows it.
    pub fn person(admin: bool) -> Self {
        let mut scopes = vec![
            Scope::CatalogRead,
            Scope::CatalogWrite,
            Scope::TemplateRun("*".to_owned()),
            Scope::Deploy("*".to_owned()),
        ];
        if admin {
            scopes.push(Scope::Admin);
        }
        Self(scopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() {
        for raw in [
            "catalog:read",
            "catalog:write",
            "template:run:default/deploy-llm-model",
            "template:run:*",
            "deploy:dev",
            "deploy:*",
            "admin",
        ] {
            assert_eq!(Scope::parse(raw).expect(raw).to_string(), raw);
        }
        assert_eq!(
            Scope::parse("template:run:template:default/X").expect("ref"),
            Scope::TemplateRun("template:default/x".to_owned())
        );
        assert!(Scope::parse("catalog:delete").is_err());
        assert!(Scope::parse("deploy:").is_err());
        assert!(Scope::parse("template:run:a/b/c").is_err());
    }

    #[test]
    fn what_each_scope_covers() {
        let dev_runner = Scopes::parse_all(&[
            "catalog:read".to_owned(),
            "template:run:default/deploy-llm-model".to_owned(),
            "deploy:dev".to_owned(),
        ])
        .expect("scopes");
        assert!(dev_runner.allows(&Scope::TemplateRun(
            "template:default/deploy-llm-model".to_owned()
        )));
        assert!(!dev_runner.allows(&Scope::TemplateRun("template:default/other".to_owned())));
        assert!(dev_runner.allows(&Scope::Deploy("dev".to_owned())));
        assert!(!dev_runner.allows(&Scope::Deploy("prod".to_owned())));
        assert!(!dev_runner.allows(&Scope::CatalogWrite));
        assert!(Scopes(vec![Scope::CatalogWrite]).allows(&Scope::CatalogRead));
        assert!(Scopes(vec![Scope::Admin]).allows(&Scope::Deploy("prod".to_owned())));
        assert!(!Scopes::person(false).allows(&Scope::Admin));
        assert!(Scopes::person(false).contains_all(&dev_runner));
        assert!(!dev_runner.contains_all(&Scopes::person(false)));
    }
}
