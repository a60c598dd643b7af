//! Label and field selectors, and watch streams.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Response;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::discovery::RESOURCES;
use super::http::{Incoming, respond};
use super::{Shared, State};

pub(super) enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

pub(super) fn parse_label_selector(selector: &str) -> Result<Vec<LabelReq>, String> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    let invalid = |term: &str| format!("unable to parse requirement: {term:?}");
    let set = |term: &str, key: &str, values: &str| {
        let inner = values
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'));
        let values = inner
            .ok_or_else(|| invalid(term))?
            .split(',')
            .map(|v| v.trim().to_owned());
        Ok::<_, String>((key.trim().to_owned(), values.collect()))
    };
    let mut out = Vec::new();
    for term in terms.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
        let req = if let Some((key, values)) = term.split_once(" notin ") {
            let (key, values) = set(term, key, values)?;
            LabelReq::NotIn(key, values)
        } else if let Some((key, values)) = term.split_once(" in ") {
            let (key, values) = set(term, key, values)?;
            LabelReq::In(key, values)
        } else if let Some((key, value)) = term.split_once("!=") {
            LabelReq::Ne(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            LabelReq::Eq(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some(key) = term.strip_prefix('!') {
            LabelReq::Absent(key.trim().to_owned())
        } else if term
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            LabelReq::Exists(term.to_owned())
        } else {
            return Err(invalid(term));
        };
        out.push(req);
    }
    Ok(out)
}

/// Which fields a field selector may name, per kind (as the real server allows them).
pub(super) fn selectable(kind: &str, field: &str) -> bool {
    let specific: &[&str] = match kind {
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ],
        "Secret" => &["type"],
        _ => &[],
    };
    matches!(field, "metadata.name" | "metadata.namespace") || specific.contains(&field)
}

pub(super) struct Filter {
    pub(super) res: usize,
    pub(super) namespace: Option<String>,
    pub(super) labels: Vec<LabelReq>,
    /// (field, equal?, value)
    pub(super) fields: Vec<(String, bool, String)>,
}

impl Filter {
    pub(super) fn new(
        res: usize,
        namespace: Option<&str>,
        request: &Incoming,
    ) -> Result<Self, String> {
        let labels = parse_label_selector(request.param("labelSelector").unwrap_or_default())?;
        let mut fields = Vec::new();
        let selector = request.param("fieldSelector").unwrap_or_default();
        for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((field, value)) = term.split_once("!=") {
                (field, false, value)
            } else if let Some((field, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                (field, true, value)
            } else {
                return Err(format!("invalid field selector: {term:?}"));
            };
            if !selectable(RESOURCES[res].kind, field.trim()) {
                return Err(format!("field label not supported: {}", field.trim()));
            }
            fields.push((field.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self {
            res,
            namespace: namespace.map(str::to_owned),
            labels,
            fields,
        })
    }

    pub(super) fn matches(&self, res: usize, namespace: &str, object: &Value) -> bool {
        if res != self.res || self.namespace.as_ref().is_some_and(|ns| ns != namespace) {
            return false;
        }
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
        };
        let labels_match = self.labels.iter().all(|req| match req {
            LabelReq::Eq(key, value) => label(key) == Some(value.as_str()),
            LabelReq::Ne(key, value) => label(key) != Some(value.as_str()),
            LabelReq::In(key, values) => label(key).is_some_and(|v| values.iter().any(|x| x == v)),
            LabelReq::NotIn(key, values) => {
                !label(key).is_some_and(|v| values.iter().any(|x| x == v))
            }
            LabelReq::Exists(key) => label(key).is_some(),
            LabelReq::Absent(key) => label(key).is_none(),
        });
        labels_match
            && self.fields.iter().all(|(field, equal, value)| {
                let field = if field == "source" {
                    "source.component"
                } else {
                    field
                };
                let found = object.pointer(&format!("/{}", field.replace('.', "/")));
                let found = match found {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                (found == *value) == *equal
            })
    }
}

/// One open watch.
pub(super) struct Watching {
    shared: Arc<Shared>,
    changes: watch::Receiver<u64>,
    filter: Filter,
    /// The last resource version looked at.
    cursor: u64,
    pending: VecDeque<Bytes>,
    deadline: tokio::time::Instant,
}

pub(super) fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

pub(super) fn watch_response(
    shared: &Arc<Shared>,
    state: &State,
    filter: Filter,
    request: &Incoming,
) -> Response<Body> {
    let res = &RESOURCES[filter.res];
    let mut pending = VecDeque::new();
    let cursor = match request.param("resourceVersion") {
        Some(rv)
            if !rv.is_empty()
                && rv != "0"
                && request.param("sendInitialEvents") != Some("true") =>
        {
            rv.parse().unwrap_or(state.rv)
        }
        _ => {
            let current = state
                .objects
                .iter()
                .filter(|(key, stored)| filter.matches(key.0, &key.1, &stored.object));
            pending.extend(current.map(|(_, stored)| event_line("ADDED", &stored.render())));
            if request.param("sendInitialEvents") == Some("true")
                && request.param("allowWatchBookmarks") == Some("true")
            {
                let bookmark = json!({
                    "kind": res.kind, "apiVersion": res.api_version(),
                    "metadata": {
                        "resourceVersion": state.rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}
                    }
                });
                pending.push_back(event_line("BOOKMARK", &bookmark));
            }
            state.rv
        }
    };
    let seconds = request
        .param("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(290u64);
    let watching = Watching {
        shared: Arc::clone(shared),
        changes: state.notify.subscribe(),
        filter,
        cursor,
        pending,
        deadline: tokio::time::Instant::now() + Duration::from_secs(seconds.min(300)),
    };
    let stream = futures::stream::unfold(watching, |mut watching| async move {
        loop {
            if let Some(line) = watching.pending.pop_front() {
                return Some((Ok::<Bytes, Infallible>(line), watching));
            }
            watching.changes.borrow_and_update();
            {
                let state = watching.shared.lock();
                let start = state
                    .changes
                    .partition_point(|change| change.rv <= watching.cursor);
                for change in &state.changes[start..] {
                    if watching
                        .filter
                        .matches(change.res, &change.namespace, &change.object)
                    {
                        watching
                            .pending
                            .push_back(event_line(change.kind, &change.object));
                    }
                    watching.cursor = change.rv;
                }
            }
            if !watching.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = watching.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(watching.deadline) => return None,
            }
        }
    });
    respond(200, "application/json", Body::from_stream(stream))
}
