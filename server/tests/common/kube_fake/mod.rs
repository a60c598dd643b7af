//! A loopback fake of the Kubernetes API server for the parts Atrium uses: discovery (classic and
//! aggregated), server-side apply (with managed fields and conflicts at leaf granularity), get, list,
//! watch and delete. It checks every request it receives against how Atrium must talk to a cluster
//! (server-side apply only, as the expected field manager, never `force`, `dryRun` only `All`, the
//! bearer token when one is required, only paths the fake serves, JSON accepted, an `Accept` header
//! on PATCH: kube sends none on GET, list, watch and DELETE) and records what breaks that in
//! [`KubeFake::violations`]; tests end with [`KubeFake::assert_clean`].
//!
//! Simplified against a real server: no defaulting, validation, admission or garbage collection;
//! namespaces need not exist; lists are not paginated; watches never expire (no 410); merge keys
//! come from a small table (items keyed by `name`, ports by port and protocol, ...), other lists
//! are atomic.
//!
//! Layout: `store` commits objects and runs apply, `ssa` keeps field ownership, `http` routes and
//! checks requests, `watches` has selectors and watch streams, `discovery` the served resources.

mod discovery;
mod http;
mod ssa;
mod store;
mod watches;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use discovery::{RESOURCES, Res};
use http::{FakeListener, handle};
use ssa::Entry;
use store::{now_rfc3339, remove, strip};

/// The manager [`KubeFake::set_status`] writes status as (operation `Update`, subresource `status`).
pub const STATUS_MANAGER: &str = "kube-controller-manager";

/// One request the fake answered (not those it dropped while unreachable).
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// The status code answered.
    pub status: u16,
}

/// Resource index in [`RESOURCES`], namespace (empty when cluster-scoped), name.
type Key = (usize, String, String);

#[derive(Clone)]
struct Stored {
    /// Without `metadata.managedFields`, which [`Stored::render`] adds from `entries`.
    object: Value,
    entries: Vec<Entry>,
}

impl Stored {
    fn render(&self) -> Value {
        let mut object = self.object.clone();
        if !self.entries.is_empty() {
            object["metadata"]["managedFields"] = self.entries.iter().map(Entry::render).collect();
        }
        object
    }
}

/// One change, for watches.
struct Change {
    rv: u64,
    res: usize,
    namespace: String,
    kind: &'static str,
    object: Value,
}

struct State {
    objects: BTreeMap<Key, Stored>,
    changes: Vec<Change>,
    notify: watch::Sender<u64>,
    /// The last resource version handed out (an etcd revision: one counter for everything).
    rv: u64,
    serial: u64,
    requests: Vec<SeenRequest>,
    violations: Vec<String>,
    manager: String,
    token: Option<String>,
    hidden: Vec<String>,
    fail_with: Option<u16>,
}

struct Shared {
    state: Mutex<State>,
    down: Arc<AtomicBool>,
    address: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("kube fake state")
    }
}

/// The fake API server; it serves until the test's runtime ends.
pub struct KubeFake {
    shared: Arc<Shared>,
}

impl KubeFake {
    /// Serves plain HTTP on 127.0.0.1 (a port picked by the system).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the kube fake");
        let address = listener.local_addr().expect("kube fake address");
        let down = Arc::new(AtomicBool::new(false));
        let state = State {
            objects: BTreeMap::new(),
            changes: Vec::new(),
            notify: watch::channel(0).0,
            rv: 0,
            serial: 0,
            requests: Vec::new(),
            violations: Vec::new(),
            manager: "atrium".to_owned(),
            token: None,
            hidden: Vec::new(),
            fail_with: None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            down: down.clone(),
            address,
        });
        let for_handler = shared.clone();
        let handler = move |request: Request<Body>| {
            let shared = for_handler.clone();
            async move { handle(shared, request).await }
        };
        let router = axum::Router::new().fallback(handler);
        let listener = FakeListener {
            inner: listener,
            down,
        };
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { shared }
    }

    /// `http://127.0.0.1:PORT`, the `cluster_url` for kube.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.address)
    }

    /// The field manager server-side apply must name (default `atrium`).
    pub fn expect_field_manager(&self, manager: &str) {
        manager.clone_into(&mut self.shared.lock().manager);
    }

    /// Requires `Authorization: Bearer {token}` on every request from now on.
    pub fn require_token(&self, token: &str) {
        self.shared.lock().token = Some(token.to_owned());
    }

    /// Serves an API group no more, as a cluster without that CRD would (requests to it are then
    /// answered 404 without counting as violations).
    pub fn without_group(&self, group: &str) {
        self.shared.lock().hidden.push(group.to_owned());
    }

    /// Drops every connection (open ones at their next read or write) while `true`. kube does not
    /// retry connection errors, whereas it retries a 503 up to 15 times with backoff by default.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.shared.down.store(unreachable, Ordering::SeqCst);
    }

    /// Answers every request with this status code (and a `Status` body) while set.
    pub fn fail_with(&self, code: Option<u16>) {
        self.shared.lock().fail_with = code;
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().requests.clone()
    }

    /// What broke the rules for talking to the cluster, one line each, with the request.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    pub fn assert_clean(&self) {
        let state = self.shared.lock();
        assert!(
            state.violations.is_empty(),
            "the fake Kubernetes API saw protocol violations: {:#?}\nall requests: {:#?}",
            state.violations,
            state.requests
        );
    }

    /// The stored object as the API would return it; `namespace` is empty for cluster-scoped kinds.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = key(api_version, kind, namespace, name);
        self.shared.lock().objects.get(&key).map(Stored::render)
    }

    /// Every stored object of a kind, in all namespaces.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let res = resource(api_version, kind);
        let state = self.shared.lock();
        let of_kind = state.objects.iter().filter(|(key, _)| key.0 == res);
        of_kind.map(|(_, stored)| stored.render()).collect()
    }

    /// Server-side apply by another manager (never forced): the stored object, or the `Status`.
    pub fn apply_as(&self, manager: &str, object: Value) -> Result<Value, Value> {
        let key = key_of(&object);
        let mut state = self.shared.lock();
        let result = state.apply(&key, object, manager, false, false);
        result.map(|(_, object)| object)
    }

    /// A whole-object update (a PUT, as `kubectl edit` makes) by `manager`: it takes ownership of
    /// every field it sets or changes, from any other manager. `status` is kept as stored.
    pub fn update_as(&self, manager: &str, object: Value) -> Value {
        let key = key_of(&object);
        let res = &RESOURCES[key.0];
        let mut state = self.shared.lock();
        let (live, entries) = match state.objects.get(&key) {
            Some(stored) => (stored.object.clone(), stored.entries.clone()),
            None => (skeleton(res, &key), Vec::new()),
        };
        let mut object = object;
        if res.status {
            match live.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => remove(&mut object, "status"),
            }
        }
        let (before, after) = (strip(&live, res.status), strip(&object, res.status));
        let entries = ssa::update(&before, &after, &entries, manager, &res.api_version(), None);
        state.commit(&key, object, entries, false).1
    }

    /// Sets `status` as a controller would (an update of the status subresource by
    /// [`STATUS_MANAGER`]); panics if there is no such object.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Value {
        let key = key(api_version, kind, namespace, name);
        let mut state = self.shared.lock();
        let stored = state.objects.get(&key).cloned();
        let stored = stored.unwrap_or_else(|| panic!("set_status: no {kind} {namespace}/{name}"));
        let before = stored
            .object
            .get("status")
            .map_or(json!({}), |s| json!({"status": s}));
        let after = json!({"status": status});
        let entries = ssa::update(
            &before,
            &after,
            &stored.entries,
            STATUS_MANAGER,
            api_version,
            Some("status"),
        );
        let mut object = stored.object;
        object["status"] = status;
        state.commit(&key, object, entries, false).1
    }

    /// Stores an object as given (plus server metadata), replacing any with its name; managed fields
    /// are left as they were.
    pub fn insert(&self, object: Value) -> Value {
        let key = key_of(&object);
        let mut state = self.shared.lock();
        let entries = state
            .objects
            .get(&key)
            .map(|s| s.entries.clone())
            .unwrap_or_default();
        state.commit(&key, object, entries, false).1
    }

    /// [`KubeFake::insert`] for a pod; `apiVersion`, `kind` and namespace `default` may be left out.
    pub fn put_pod(&self, mut pod: Value) -> Value {
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        if pod.pointer("/metadata/namespace").is_none() {
            pod["metadata"]["namespace"] = json!("default");
        }
        self.insert(pod)
    }

    /// Records a core/v1 Event about `involved` (a stored object, as [`KubeFake::get`] returns it).
    pub fn add_event(&self, involved: &Value, type_: &str, reason: &str, message: &str) -> Value {
        let meta = &involved["metadata"];
        let namespace = meta["namespace"].as_str().unwrap_or("default");
        let name = meta["name"].as_str().unwrap_or_default();
        let serial = {
            let mut state = self.shared.lock();
            state.serial += 1;
            state.serial
        };
        let now = now_rfc3339();
        self.insert(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{serial:016x}"), "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": name,
                "namespace": namespace, "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]
            },
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "fake-controller"}, "firstTimestamp": now, "lastTimestamp": now,
            "count": 1, "reportingComponent": "fake-controller", "reportingInstance": ""
        }))
    }

    /// Deletes an object (a DELETED watch event); returns it, or `None` if there was none.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let key = key(api_version, kind, namespace, name);
        self.shared.lock().delete(&key, false)
    }
}

fn resource(api_version: &str, kind: &str) -> usize {
    discovery::find_kind(api_version, kind)
        .unwrap_or_else(|| panic!("the kube fake does not serve {api_version} {kind}"))
}

fn key(api_version: &str, kind: &str, namespace: &str, name: &str) -> Key {
    let res = resource(api_version, kind);
    let namespace = if RESOURCES[res].namespaced {
        namespace
    } else {
        ""
    };
    (res, namespace.to_owned(), name.to_owned())
}

fn key_of(object: &Value) -> Key {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let namespace = match text("/metadata/namespace") {
        "" => "default",
        namespace => namespace,
    };
    key(
        text("/apiVersion"),
        text("/kind"),
        namespace,
        text("/metadata/name"),
    )
}

fn skeleton(res: &Res, key: &Key) -> Value {
    let mut metadata = json!({"name": key.2});
    if res.namespaced {
        metadata["namespace"] = json!(key.1);
    }
    json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": metadata})
}
