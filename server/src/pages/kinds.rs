//! Kind-specific sections of the entity page: API operations, model versions and metrics, template
//! parameters and steps. Pure functions of the entity JSON.

use serde_json::Value;

use crate::catalog::yaml::{YamlLimits, parse_documents};

pub struct Operation {
    pub method: String,
    pub path: String,
    pub summary: String,
}

/// What an API's definition shows as.
pub enum ApiDefinition {
    /// OpenAPI: its operations (possibly none), with the raw text kept for the details element.
    OpenApi {
        operations: Vec<Operation>,
        title: String,
        version: String,
    },
    /// Could not be read as OpenAPI; shown as text with why.
    Unparsed { problem: String },
    /// Another format (asyncapi, graphql, grpc...): shown as text.
    Other,
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub fn api_definition(spec_type: &str, definition: &str) -> ApiDefinition {
    if !spec_type.eq_ignore_ascii_case("openapi") {
        return ApiDefinition::Other;
    }
    // JSON is YAML, so one parser reads both; the catalog's limits bound size, depth and aliases.
    let documents = match parse_documents(definition, &YamlLimits::default()) {
        Ok(documents) => documents,
        Err(e) => {
            return ApiDefinition::Unparsed {
                problem: e.to_string(),
            };
        }
    };
    let Some(document) = documents.into_iter().next() else {
        return ApiDefinition::Unparsed {
            problem: "the definition is empty".to_owned(),
        };
    };
    let doc = document.value;
    let mut operations = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if !METHODS.contains(&method.to_ascii_lowercase().as_str()) {
                    continue;
                }
                let summary = operation
                    .get("summary")
                    .or_else(|| operation.get("operationId"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    summary,
                });
            }
        }
    }
    let info = |field: &str| {
        doc.get("info")
            .and_then(|i| i.get(field))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    ApiDefinition::OpenApi {
        operations,
        title: info("title"),
        version: info("version"),
    }
}

pub struct ModelVersion {
    pub name: String,
    pub uri: String,
    pub aliases: Vec<String>,
    /// (metric, value as written).
    pub metrics: Vec<(String, String)>,
}

pub struct Bar {
    pub label: String,
    pub value: String,
    pub y: f64,
    pub width: f64,
}

pub struct MetricChart {
    pub metric: String,
    pub bars: Vec<Bar>,
    pub height: f64,
    /// Other metrics the chart can show, with links.
    pub choices: Vec<(String, bool)>,
}

pub struct ModelView {
    pub provider: String,
    pub license: String,
    pub format: String,
    pub tasks: Vec<String>,
    pub versions: Vec<ModelVersion>,
    pub chart: Option<MetricChart>,
}

pub const CHART_BAR_SPACE: f64 = 34.0;
pub const CHART_LABEL_WIDTH: f64 = 160.0;
pub const CHART_BAR_MAX: f64 = 380.0;

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `metric`: the metric asked for in the URL; else the first numeric metric of the first version.
pub fn model_view(spec: &Value, metric: Option<&str>) -> ModelView {
    let versions: Vec<ModelVersion> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| ModelVersion {
            name: text(&v["name"]),
            uri: text(&v["uri"]),
            aliases: strings(&v["aliases"]),
            metrics: v["metrics"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        })
        .collect();
    // Numeric metrics in first-seen order.
    let mut names: Vec<String> = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        for (name, value) in version["metrics"].as_object().into_iter().flatten() {
            if value.is_number() && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let chosen = metric
        .filter(|m| names.iter().any(|n| n == m))
        .map(str::to_owned)
        .or_else(|| names.first().cloned());
    let chart = chosen.map(|metric| {
        let values: Vec<(String, f64)> = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v["metrics"][metric.as_str()]
                    .as_f64()
                    .map(|x| (text(&v["name"]), x))
            })
            .collect();
        let max = values.iter().map(|(_, x)| x.abs()).fold(0.0_f64, f64::max);
        let bars: Vec<Bar> = values
            .iter()
            .enumerate()
            .map(|(i, (label, x))| Bar {
                label: label.clone(),
                value: format_number(*x),
                y: i as f64 * CHART_BAR_SPACE,
                width: if max > 0.0 {
                    (x.abs() / max * CHART_BAR_MAX).max(1.0).round()
                } else {
                    1.0
                },
            })
            .collect();
        MetricChart {
            height: (bars.len() as f64 * CHART_BAR_SPACE).max(CHART_BAR_SPACE),
            bars,
            choices: names.iter().map(|n| (n.clone(), *n == metric)).collect(),
            metric,
        }
    });
    ModelView {
        provider: text(&spec["provider"]),
        license: text(&spec["license"]),
        format: text(&spec["format"]),
        tasks: strings(&spec["tasks"]),
        versions,
        chart,
    }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

pub struct TemplateField {
    pub name: String,
    pub title: String,
    pub field_type: String,
    pub description: String,
    pub required: bool,
}

pub struct TemplateStep {
    pub title: String,
    pub fields: Vec<TemplateField>,
}

pub struct TemplateAction {
    pub id: String,
    pub name: String,
    pub action: String,
}

pub struct TemplateView {
    pub parameters: Vec<TemplateStep>,
    pub steps: Vec<TemplateAction>,
}

pub fn template_view(spec: &Value) -> TemplateView {
    // `parameters` is one JSON Schema object or a list of pages.
    let pages: Vec<&Value> = match &spec["parameters"] {
        Value::Array(pages) => pages.iter().collect(),
        Value::Object(_) => vec![&spec["parameters"]],
        _ => Vec::new(),
    };
    let parameters = pages
        .into_iter()
        .enumerate()
        .map(|(i, page)| {
            let required = strings(&page["required"]);
            TemplateStep {
                title: match text(&page["title"]) {
                    t if t.is_empty() => format!("Step {}", i + 1),
                    t => t,
                },
                fields: page["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, field)| TemplateField {
                        title: match text(&field["title"]) {
                            t if t.is_empty() => name.clone(),
                            t => t,
                        },
                        field_type: text(&field["type"]),
                        description: text(&field["description"]),
                        required: required.contains(name),
                        name: name.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let steps = spec["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| TemplateAction {
            id: text(&step["id"]),
            name: text(&step["name"]),
            action: text(&step["action"]),
        })
        .collect();
    TemplateView { parameters, steps }
}
