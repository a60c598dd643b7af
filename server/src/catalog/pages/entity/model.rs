//! The model section of a Model entity's page: provider, license, format, tasks, versions with their
//! metrics, and a bar chart comparing the versions on one metric.

use serde_json::Value;

use super::super::view::EntityLink;
use super::values::{items, strings, text};

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

/// `metric`: the metric asked for in the URL; else the first numeric metric of the first version.
pub fn model_view(spec: &Value, metric: Option<&str>) -> ModelView {
    let versions: Vec<ModelVersion> = items(&spec["versions"])
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
        let values: Vec<(String, f64)> = items(&spec["versions"])
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

/// The model section of the page.
pub struct ModelSection {
    pub model: ModelView,
    /// What depends on the model.
    pub dependents: Vec<EntityLink>,
    /// The page itself, where the metric form is sent.
    pub page_href: String,
    pub chart_label_width: f64,
    pub chart_bar_max: f64,
}
