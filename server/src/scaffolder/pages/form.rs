//! `/create/templates/{namespace}/{name}`: a template's form, server-rendered from its parameter pages
//! (every page a fieldset of one form). The post is checked against the same schemas as the API; a
//! refused post comes back as the form with what was entered and each error next to its field, an
//! accepted one redirects (303) to the new task's page.

use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::fields::{self, OptionView, PageView, Picker};
use super::task_href;
use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::catalog::db::{EntityQuery, OrderField};
use crate::catalog::filter::Filter;
use crate::catalog::pages::view::{EntitySummary, entity_href};
use crate::catalog::service::parse_stored;
use crate::error::{AppError, OwnErrorBody};
use crate::http::Path;
use crate::scaffolder::ScaffolderService;
use crate::scaffolder::params::{self, ParameterError};
use crate::scaffolder::service::{CreateError, NewTaskRequest};
use crate::scaffolder::template::Template;

/// Entities one picker offers at most.
const MAX_PICKER_OPTIONS: i64 = 500;

#[derive(askama::Template, WebTemplate)]
#[template(path = "scaffolder/form.html")]
pub struct FormPage {
    title: String,
    description: String,
    action: String,
    template_href: String,
    pages: Vec<PageView>,
    /// Errors that belong to no field on the form.
    errors: Vec<String>,
    /// How many fields have an error.
    field_errors: usize,
}

async fn load(
    scaffolder: &ScaffolderService,
    caller: &Caller,
    namespace: &str,
    name: &str,
) -> Result<Template, AppError> {
    scaffolder
        .template(caller, &format!("template:{namespace}/{name}"))
        .await
        .map_err(|e| e.suggest("/create", "Choose another template"))
}

async fn render(
    scaffolder: &ScaffolderService,
    caller: &Caller,
    template: &Template,
    values: &Value,
    errors: &[ParameterError],
) -> Result<FormPage, AppError> {
    let metadata = &template.entity["metadata"];
    let summary = EntitySummary::from_entity(&template.entity);
    let mut pages = fields::pages(&template.pages, values, scaffolder.allowed_hosts());
    for field in pages.iter_mut().flat_map(|p| p.fields.iter_mut()) {
        if let Some(picker) = &field.picker {
            let chosen = super::shown::display(&values[field.name.as_str()]);
            field.options = picker_options(scaffolder.catalog(), caller, picker, &chosen).await?;
        }
    }
    let mut unplaced = Vec::new();
    let mut field_errors = 0;
    for error in errors {
        let target = match error.path.first().and_then(Value::as_str) {
            Some(name) => pages
                .iter_mut()
                .flat_map(|p| p.fields.iter_mut())
                .find(|f| f.name == name),
            None => None,
        };
        match target {
            Some(field) => {
                if field.error.is_empty() {
                    field_errors += 1;
                    field.error = sentence(&error.message);
                }
            }
            None => unplaced.push(format!("{}: {}", error.property, error.message)),
        }
    }
    Ok(FormPage {
        title: summary.title.clone(),
        description: metadata["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        action: super::form_href(&summary.namespace, &summary.name),
        template_href: entity_href("template", &summary.namespace, &summary.name),
        pages,
        errors: unplaced,
        field_errors,
    })
}

/// `"^[a-z]+$" does not match ...` reads well already; the required keyword's "is required" needs
/// its subject.
fn sentence(message: &str) -> String {
    match message {
        "is required" => "This field is required.".to_owned(),
        other => other.to_owned(),
    }
}

/// The entities a picker offers, as full refs (`group:default/payments-team`); the current value
/// stays selectable even when it is not among them.
async fn picker_options(
    catalog: &CatalogService,
    caller: &Caller,
    picker: &Picker,
    chosen: &str,
) -> Result<Vec<OptionView>, AppError> {
    let alternatives: Vec<Filter> = picker
        .filters
        .iter()
        .map(|conditions| {
            Filter::All(
                conditions
                    .iter()
                    .map(|(key, values)| {
                        Filter::In(
                            key.to_lowercase(),
                            values.iter().map(|v| v.to_lowercase()).collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let filter = match alternatives.len() {
        0 => None,
        _ => Some(Filter::Any(alternatives)),
    };
    let filter = catalog.restrict(caller, filter.as_ref());
    let order = [OrderField {
        field: "metadata.name".to_owned(),
        descending: false,
    }];
    let query = EntityQuery {
        filter: filter.as_ref(),
        order: &order,
        limit: Some(MAX_PICKER_OPTIONS),
        ..EntityQuery::default()
    };
    let mut options = vec![OptionView {
        value: String::new(),
        label: "Choose…".to_owned(),
        selected: chosen.is_empty(),
    }];
    for row in catalog.query_page(&query).await? {
        let entity = EntitySummary::from_entity(&parse_stored(&row.body)?);
        let reference = format!(
            "{}:{}/{}",
            entity.kind.to_lowercase(),
            entity.namespace,
            entity.name
        );
        let label = if entity.title == entity.name {
            reference.clone()
        } else {
            format!("{} ({reference})", entity.title)
        };
        options.push(OptionView {
            selected: reference.eq_ignore_ascii_case(chosen),
            value: reference,
            label,
        });
    }
    if !chosen.is_empty() && !options.iter().any(|o| o.selected) {
        options.push(OptionView {
            value: chosen.to_owned(),
            label: chosen.to_owned(),
            selected: true,
        });
    }
    Ok(options)
}

pub async fn show_form(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<FormPage, AppError> {
    let template = load(&scaffolder, &caller, &namespace, &name).await?;
    let mut values = json!({});
    params::apply_defaults(&template.pages, &mut values);
    render(&scaffolder, &caller, &template, &values, &[]).await
}

pub async fn submit_form(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    crate::ui::csrf::check_same_origin(&headers)?;
    let template = load(&scaffolder, &caller, &namespace, &name).await?;
    let (values, secrets) = fields::values_and_secrets_from_form(&template.pages, &form);
    let given = secrets.as_object().is_some_and(|s| !s.is_empty());
    let created = scaffolder
        .create_task(NewTaskRequest {
            template_ref: &template.entity_ref,
            values: &values,
            secrets: given.then_some(&secrets),
            idempotency_key: None,
            caller: &caller,
        })
        .await;
    match created {
        Ok(id) => Ok(Redirect::to(&task_href(id)).into_response()),
        // The form comes back as 200: it is the page to correct and send again.
        Err(CreateError::Invalid(errors)) => {
            Ok(render(&scaffolder, &caller, &template, &values, &errors)
                .await?
                .into_response())
        }
        // Refusals the person can act on (a template that is not valid, an environment they may
        // not deploy to) show on the form, with what was entered; a refusal keeps its status.
        Err(CreateError::Other(error)) if !error.status().is_server_error() => {
            let status = error.status();
            let mut page = render(&scaffolder, &caller, &template, &values, &[]).await?;
            page.errors.push(error.public_message());
            let mut response = page.into_response();
            if status == StatusCode::FORBIDDEN {
                *response.status_mut() = status;
                // The form is the page to show, not the generic error page.
                response.extensions_mut().insert(OwnErrorBody);
            }
            Ok(response)
        }
        Err(CreateError::Other(error)) => Err(error),
    }
}
