//! The browser portal pages, requested through the real router and checked by CSS selectors.

mod common;

use atrium::ui::csp::CONTENT_SECURITY_POLICY;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::{TestApp, load_sample};
use scraper::{Html, Selector};
use sqlx::PgPool;

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    html: Html,
    text: String,
}

impl Page {
    fn select(&self, selector: &str) -> Vec<scraper::ElementRef<'_>> {
        let selector = Selector::parse(selector).expect("selector");
        self.html.select(&selector).collect()
    }

    /// Text of every element matching `selector`, whitespace collapsed.
    fn texts(&self, selector: &str) -> Vec<String> {
        self.select(selector)
            .into_iter()
            .map(|e| e.text().collect::<Vec<_>>().join(" "))
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        self.select(selector)
            .into_iter()
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }

    /// The page is HTML with the strict CSP and nothing a strict CSP would block.
    fn assert_strict(&self) {
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/html; charset=utf-8"),
        );
        assert_eq!(
            self.headers
                .get(header::CONTENT_SECURITY_POLICY)
                .and_then(|v| v.to_str().ok()),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert!(self.select("[style]").is_empty(), "style attribute");
        assert!(self.select("style").is_empty(), "style element");
        for script in self.select("script") {
            assert!(script.value().attr("src").is_some(), "inline script");
        }
        for element in self.select("*") {
            for (name, _) in element.value().attrs() {
                assert!(!name.starts_with("on"), "inline handler {name}");
            }
        }
        assert!(!self.text.contains("javascript:"));
        assert_eq!(self.select("main").len(), 1, "one main landmark");
        // Every form control is labelled.
        for input in self.select("input:not([type=hidden]), select, textarea") {
            let labelled = match input.value().id() {
                Some(id) => !self.select(&format!("label[for='{id}']")).is_empty(),
                None => false,
            } || input.value().attr("aria-label").is_some()
                || input
                    .ancestors()
                    .any(|a| a.value().as_element().is_some_and(|e| e.name() == "label"));
            assert!(labelled, "unlabelled control {:?}", input.value());
        }
    }
}

async fn send(app: &TestApp, request: Request<Body>) -> Page {
    let (status, headers, bytes) = app.send_raw(request).await;
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    Page {
        status,
        headers,
        html: Html::parse_document(&text),
        text,
    }
}

async fn page(app: &TestApp, uri: &str) -> Page {
    let request = Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    send(app, request).await
}

async fn post_form(app: &TestApp, uri: &str, form: &[(&str, &str)], site: &str) -> Page {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "localhost")
        .header("sec-fetch-site", site)
        .body(Body::from(body))
        .expect("request");
    send(app, request).await
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn home_shows_search_counts_and_recent(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let home = page(&app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    home.assert_strict();
    assert_eq!(home.attrs("form[role=search]", "action"), ["/catalog"]);
    assert_eq!(home.attrs("#home-q", "name"), ["q"]);
    let kinds = home.texts(".kind-card");
    assert!(kinds.contains(&"2 Component".to_owned()), "{kinds:?}");
    assert!(
        home.attrs(".kind-card", "href")
            .contains(&"/catalog?kind=Component".to_owned())
    );
    assert!(!home.select(".recent-list li a").is_empty());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn list_filters_with_facet_counts(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;

    let all = page(&app, "/catalog").await;
    assert_eq!(all.status, StatusCode::OK);
    all.assert_strict();
    let kinds = all.texts("#facet-kind option");
    assert!(kinds.contains(&"Component (2)".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"API (1)".to_owned()), "{kinds:?}");

    let components = page(&app, "/catalog?kind=Component").await;
    components.assert_strict();
    assert_eq!(
        components.texts("td[data-label=Name] a.entity-link"),
        ["checkout", "storefront"]
    );
    assert_eq!(
        components.texts("#facet-kind option[selected]"),
        ["Component (2)"]
    );
    // Other facets count within the chosen kind; the kind facet keeps counting the alternatives.
    let types = components.texts("#facet-type option");
    assert!(types.contains(&"service (1)".to_owned()), "{types:?}");
    assert!(types.contains(&"website (1)".to_owned()), "{types:?}");
    assert!(!types.iter().any(|t| t.starts_with("openapi")), "{types:?}");
    assert!(
        components
            .texts("#facet-kind option")
            .contains(&"API (1)".to_owned())
    );

    let owned = page(&app, "/catalog?kind=Component&owner=team-a").await;
    assert_eq!(owned.texts("a.entity-link"), ["checkout"]);
    let tagged = page(&app, "/catalog?tag=pci").await;
    assert_eq!(tagged.texts("a.entity-link"), ["checkout"]);
    let lifecycle = page(&app, "/catalog?lifecycle=experimental").await;
    assert_eq!(lifecycle.texts("a.entity-link"), ["storefront"]);
    let searched = page(&app, "/catalog?q=money").await;
    assert_eq!(searched.texts("a.entity-link"), ["checkout"]);
    assert_eq!(searched.attrs("#list-q", "value"), ["money"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn list_sorts_and_pages_with_cursors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut docs = String::new();
    for i in 0..30 {
        docs.push_str(&format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i:02}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-{}\n",
            i % 3
        ));
    }
    app.write("many.yaml", &docs);
    app.register("many.yaml").await;
    app.process().await;

    let first = page(&app, "/catalog?kind=Component").await;
    let names = first.texts("a.entity-link");
    assert_eq!(names.len(), 25);
    assert_eq!(names[0], "svc-00");
    assert!(first.select("a[rel=prev]").is_empty());
    let next = first.attrs("a[rel=next]", "href");
    assert_eq!(next.len(), 1);
    assert!(next[0].contains("kind=Component"), "{next:?}");
    let second = page(&app, &next[0]).await;
    assert_eq!(
        second.texts("a.entity-link"),
        ["svc-25", "svc-26", "svc-27", "svc-28", "svc-29"]
    );
    let prev = second.attrs("a[rel=prev]", "href");
    let back = page(&app, &prev[0]).await;
    assert_eq!(back.texts("a.entity-link"), names);

    // Sorting by a column: its header link flips the direction and aria-sort says which.
    let by_name_desc = page(&app, "/catalog?kind=Component&sort=name&dir=desc").await;
    assert_eq!(by_name_desc.texts("a.entity-link")[0], "svc-29");
    assert_eq!(
        by_name_desc.attrs("th[aria-sort=descending] a", "href"),
        ["/catalog?kind=Component"]
    );
    let by_owner = page(&app, "/catalog?kind=Component&sort=owner").await;
    let owners = by_owner.texts("td[data-label=Owner]");
    let mut sorted = owners.clone();
    sorted.sort();
    assert_eq!(owners, sorted);
    assert_eq!(by_owner.select("th[aria-sort=ascending]").len(), 1);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn entity_pages_show_overview_relations_and_kind_sections(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;

    let checkout = page(&app, "/catalog/default/component/checkout").await;
    assert_eq!(checkout.status, StatusCode::OK);
    checkout.assert_strict();
    assert_eq!(checkout.texts("h1"), ["checkout"]);
    assert_eq!(checkout.texts(".description"), ["Takes the money"]);
    assert_eq!(
        checkout.attrs("a.owner-link", "href"),
        ["/catalog/default/group/team-a"]
    );
    assert_eq!(
        checkout.attrs("a.system-link", "href"),
        ["/catalog/default/system/payments"]
    );
    assert_eq!(checkout.texts(".tags li"), ["java", "pci"]);
    // The relations graph: one linked node per neighbour.
    let nodes = checkout.attrs("svg.relation-graph a.node", "href");
    for expected in [
        "/catalog/default/group/team-a",
        "/catalog/default/system/payments",
        "/catalog/default/api/checkout-api",
        "/catalog/default/component/storefront",
    ] {
        assert!(nodes.contains(&expected.to_owned()), "{nodes:?}");
    }
    assert!(checkout.text.contains("managed-by-location"));
    assert_eq!(checkout.select("details.raw pre").len(), 1);
    assert!(checkout.texts("details.raw pre")[0].contains("name: checkout"));

    // Every relation link leads to a page that exists.
    for href in &nodes {
        assert_eq!(page(&app, href).await.status, StatusCode::OK, "{href}");
    }

    let group = page(&app, "/catalog/default/group/team-a").await;
    group.assert_strict();
    assert_eq!(group.texts("ul.members a"), ["alice"]);
    let owned = group.texts("ul.owned a");
    for name in ["checkout", "checkout-api", "payments"] {
        assert!(owned.contains(&name.to_owned()), "{owned:?}");
    }
    let user = page(&app, "/catalog/default/user/alice").await;
    assert_eq!(user.texts("ul.groups a"), ["Team A"]);
    assert_eq!(user.texts("ul.owned a"), ["storefront"]);
    let system = page(&app, "/catalog/default/system/payments").await;
    assert_eq!(system.texts("ul.parts a"), ["checkout"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn api_page_lists_openapi_operations(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    app.write(
        "checkout-openapi.yaml",
        "openapi: 3.0.0\ninfo: {title: Checkout, version: '2'}\npaths:\n  /orders:\n    get: {summary: List orders}\n    post: {summary: Create an order}\n  /orders/{id}:\n    delete: {operationId: cancelOrder}\n",
    );
    app.refresh_all().await;
    let api = page(&app, "/catalog/default/api/checkout-api").await;
    api.assert_strict();
    let rows = api.texts("table.operations tbody tr");
    assert_eq!(
        rows,
        [
            "GET /orders List orders",
            "POST /orders Create an order",
            "DELETE /orders/{id} cancelOrder"
        ]
    );
    assert!(api.texts(".api-definition details pre")[0].contains("openapi: 3.0.0"));
}

/// An `mcp-server` API shows its transports, so people and agents find where an MCP server is.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_mcp_server_api_page_shows_its_transports(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.add(
        "mcp.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: portal-mcp}\nspec:\n  type: mcp-server\n  lifecycle: production\n  owner: team-a\n  remotes:\n    - {type: streamable-http, url: 'https://portal.example.com/api/mcp'}\n    - {type: websocket, url: 'wss://portal.example.com/mcp'}\n",
    )
    .await;
    let api = page(&app, "/catalog/default/api/portal-mcp").await;
    api.assert_strict();
    assert_eq!(
        api.texts(".mcp-remotes tbody tr"),
        [
            "streamable-http https://portal.example.com/api/mcp",
            "websocket wss://portal.example.com/mcp"
        ]
    );
    assert_eq!(
        api.attrs(".mcp-remotes a", "href"),
        ["https://portal.example.com/api/mcp"],
        "only http(s) is a link"
    );
    assert!(
        api.texts(".api-definition").is_empty(),
        "no empty definition card"
    );
}

const MODEL: &str = r#"
apiVersion: atrium.dev/v1alpha1
kind: Model
metadata:
  name: ranker
  title: Ranker
spec:
  type: classifier
  owner: team-a
  lifecycle: production
  license: Apache-2.0
  tasks: [ranking]
  versions:
    - name: v1
      uri: s3://models/ranker/v1
      metrics: {accuracy: 0.81, latency_ms: 12}
    - name: v2
      uri: s3://models/ranker/v2
      aliases: [champion]
      metrics: {accuracy: 0.9, latency_ms: 9}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: search
spec:
  type: service
  lifecycle: production
  owner: team-a
  dependsOn: [model:ranker]
---
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: new-service
spec:
  owner: team-a
  type: service
  parameters:
    - title: About
      required: [name]
      properties:
        name: {title: Name, type: string}
        description: {title: Description, type: string}
  steps:
    - id: fetch
      name: Fetch skeleton
      action: fetch:template
    - id: publish
      name: Publish
      action: publish:git
"#;

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn model_and_template_pages(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    app.write("model.yaml", MODEL);
    app.register("model.yaml").await;
    app.process().await;

    let model = page(&app, "/catalog/default/model/ranker").await;
    assert_eq!(model.status, StatusCode::OK, "{}", model.text);
    model.assert_strict();
    assert_eq!(model.texts(".license"), ["Apache-2.0"]);
    assert_eq!(model.texts(".tasks li"), ["ranking"]);
    let versions = model.texts("table.versions tbody tr td:first-child");
    assert_eq!(versions, ["v1", "v2"]);
    assert_eq!(model.texts("table.versions .alias"), ["champion"]);
    // The chart compares the first metric; another can be chosen.
    assert_eq!(model.texts("svg.metric-chart .bar-value"), ["0.81", "0.9"]);
    let widths = model.attrs("svg.metric-chart rect", "width");
    assert_eq!(widths.last().map(String::as_str), Some("380"));
    let latency = page(&app, "/catalog/default/model/ranker?metric=latency_ms").await;
    assert_eq!(latency.texts("svg.metric-chart .bar-value"), ["12", "9"]);
    assert_eq!(model.texts("ul.dependents a"), ["search"]);

    let template = page(&app, "/catalog/default/template/new-service").await;
    template.assert_strict();
    assert_eq!(template.texts(".parameter-page h4"), ["About"]);
    assert_eq!(
        template.texts("table.parameters tbody tr td:nth-child(3)"),
        ["required", "optional"]
    );
    assert_eq!(
        template.texts("ol.steps li"),
        [
            "Fetch skeleton fetch fetch:template",
            "Publish publish publish:git"
        ]
    );
    assert_eq!(
        template.attrs("a.run-template", "href"),
        ["/create/templates/default/new-service"],
        "the template page leads to its form"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn processing_errors_are_shown_first(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    // A provided API that does not exist leaves the component with a dangling relation, not an error,
    // so break the definition file the API's `$text` points at instead.
    app.remove("checkout-openapi.yaml");
    app.refresh_all().await;
    let api = page(&app, "/catalog/default/api/checkout-api").await;
    assert_eq!(api.status, StatusCode::OK);
    api.assert_strict();
    assert!(
        !api.select(".processing-errors li").is_empty(),
        "{}",
        api.text
    );
    // The errors come before the entity's header.
    let order: Vec<String> = api
        .select("main > *")
        .iter()
        .map(|e| {
            let classes: Vec<&str> = e.value().classes().collect();
            format!("{}.{}", e.value().name(), classes.join("."))
        })
        .collect();
    let errors_at = order
        .iter()
        .position(|n| n.contains("processing-errors"))
        .expect("errors");
    let header_at = order
        .iter()
        .position(|n| n.starts_with("header"))
        .expect("header");
    assert!(errors_at < header_at, "{order:?}");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn entity_pages_live_at_backstage_urls_and_old_links_redirect(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    // Backstage's `/catalog/:namespace/:kind/:name`, matched case-insensitively.
    let checkout = page(&app, "/catalog/Default/Component/checkout").await;
    assert_eq!(checkout.status, StatusCode::OK);
    // Atrium's first form, `/catalog/:kind/:namespace/:name`, moved there for good (query kept).
    for (old, new) in [
        (
            "/catalog/component/default/checkout",
            "/catalog/default/component/checkout",
        ),
        (
            "/catalog/group/default/team-a?tab=x",
            "/catalog/default/group/team-a?tab=x",
        ),
    ] {
        let moved = page(&app, old).await;
        assert_eq!(moved.status, StatusCode::PERMANENT_REDIRECT, "{old}");
        assert_eq!(moved.headers[header::LOCATION], new, "{old}");
    }
    // Neither form names an entity: a 404, not a redirect.
    let missing = page(&app, "/catalog/component/default/no-such-thing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn unknown_entity_is_an_html_404_with_a_search_suggestion(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let missing = page(&app, "/catalog/default/component/no-such-thing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_strict();
    assert_eq!(
        missing.attrs(".suggestion a", "href"),
        ["/catalog?q=no-such-thing"]
    );
    assert!(!missing.texts(".request-id code")[0].is_empty());

    let bad_cursor = page(&app, "/catalog?after=%%%").await;
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
    bad_cursor.assert_strict();
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn static_assets_are_embedded_with_cache_headers(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let css = page(&app, "/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(
        css.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(css.text.contains("prefers-color-scheme: dark"));
    let missing = page(&app, "/static/nope.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn register_analyzes_then_imports(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let form = page(&app, "/catalog/register").await;
    form.assert_strict();
    assert_eq!(form.attrs("form.register-form", "method"), ["post"]);

    app.write("new/catalog-info.yaml", common::ORG);
    let target = app.path("new/catalog-info.yaml").display().to_string();
    let analyzed = post_form(
        &app,
        "/catalog/register",
        &[("type", "file"), ("target", &target), ("action", "analyze")],
        "same-origin",
    )
    .await;
    assert_eq!(analyzed.status, StatusCode::OK, "{}", analyzed.text);
    analyzed.assert_strict();
    assert_eq!(
        analyzed.texts(".would-import strong"),
        ["Team A", "alice", "payments"]
    );
    assert_eq!(
        app.get("/api/catalog/locations").await.body,
        serde_json::json!([])
    );

    let imported = post_form(
        &app,
        "/catalog/register",
        &[("type", "file"), ("target", &target), ("action", "import")],
        "same-origin",
    )
    .await;
    assert_eq!(imported.status, StatusCode::OK);
    assert_eq!(imported.select(".success").len(), 1);
    app.process().await;
    let hrefs = imported.attrs("ul.imported a", "href");
    assert!(hrefs.contains(&"/catalog/default/group/team-a".to_owned()));
    for href in hrefs {
        assert_eq!(page(&app, &href).await.status, StatusCode::OK, "{href}");
    }

    // Registering twice, a path outside the roots, or a cross-site post: readable errors.
    let again = post_form(
        &app,
        "/catalog/register",
        &[("type", "file"), ("target", &target), ("action", "import")],
        "same-origin",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.texts(".form-error p")[0].contains("already exists"));
    let outside = post_form(
        &app,
        "/catalog/register",
        &[
            ("type", "file"),
            ("target", "/etc/passwd"),
            ("action", "analyze"),
        ],
        "same-origin",
    )
    .await;
    assert_eq!(outside.status, StatusCode::OK);
    assert_eq!(outside.select(".form-error").len(), 1, "{}", outside.text);
    let forged = post_form(
        &app,
        "/catalog/register",
        &[("type", "file"), ("target", &target), ("action", "import")],
        "cross-site",
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn content_is_escaped(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write(
        "evil.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: evil\n  description: '<script>alert(1)</script>'\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    );
    app.register("evil.yaml").await;
    app.process().await;
    let evil = page(&app, "/catalog/default/component/evil").await;
    assert_eq!(evil.status, StatusCode::OK);
    assert!(evil.select("script").is_empty());
    assert_eq!(evil.texts(".description"), ["<script>alert(1)</script>"]);
    assert!(evil.select("a[href^=javascript]").is_empty());
}

/// Links on an entity page mean what they say: an unqualified owner is resolved in the entity's own
/// namespace, and tags with URL-significant characters (`c++`, `c#`) link to a list that finds them.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn owner_and_tag_links_follow_the_entity(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write(
        "native.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: engine\n  namespace: platform\n  tags: [c++, c#]\nspec:\n  type: library\n  lifecycle: production\n  owner: runtime\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: runtime\n  namespace: platform\nspec:\n  type: team\n  children: []\n",
    );
    app.register("native.yaml").await;
    app.process().await;
    let engine = page(&app, "/catalog/platform/component/engine").await;
    assert_eq!(engine.status, StatusCode::OK);
    let owner = engine.attrs("a.owner-link", "href");
    assert_eq!(owner, ["/catalog/platform/group/runtime"]);
    assert_eq!(page(&app, &owner[0]).await.status, StatusCode::OK);

    let tags = engine.attrs("ul.tags a", "href");
    assert_eq!(tags.len(), 2, "{tags:?}");
    for href in &tags {
        assert!(!href.contains('+') && !href.contains('#'), "{href}");
        let tagged = page(&app, href).await;
        assert_eq!(tagged.status, StatusCode::OK, "{href}");
        assert_eq!(tagged.texts("a.entity-link"), ["engine"], "{href}");
    }
}

/// Skills: `AiResource` entities of type skill at `/.well-known/skills`, their SKILL.md read from the
/// source location under the catalog's reading rules.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn skills_are_served_where_skill_clients_look(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write(
        "skills/triage/SKILL.md",
        "---\nname: triage\ndescription: First ten minutes of a page\n---\n# Triage\nRead the runbook.\n",
    );
    let source = app.path("skills/triage/").display().to_string();
    app.add(
        "skills.yaml",
        &format!(
            "apiVersion: backstage.io/v1alpha1\nkind: AiResource\nmetadata:\n  name: triage\n  description: First ten minutes of a page\n  annotations:\n    backstage.io/source-location: 'file:{source}'\nspec: {{type: skill, owner: team-a, lifecycle: production}}\n---\napiVersion: backstage.io/v1alpha1\nkind: AiResource\nmetadata:\n  name: escape\n  annotations:\n    backstage.io/source-location: 'file:/etc/'\nspec: {{type: skill, owner: team-a, lifecycle: production}}\n---\napiVersion: backstage.io/v1alpha1\nkind: AiResource\nmetadata: {{name: house-rules}}\nspec: {{type: rule, owner: team-a, lifecycle: production}}\n"
        ),
    )
    .await;
    let index = app.get("/.well-known/skills/index.json").await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    assert_eq!(
        index.body,
        serde_json::json!({"skills": [
            {"name": "escape", "description": "", "files": ["SKILL.md"]},
            {"name": "triage", "description": "First ten minutes of a page", "files": ["SKILL.md"]}
        ]})
    );
    let request = Request::builder()
        .uri("/.well-known/skills/triage/SKILL.md")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = app.send_raw(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/markdown; charset=utf-8"
    );
    assert!(String::from_utf8_lossy(&body).contains("# Triage\nRead the runbook."));
    // Outside the file roots: refused by the catalog's reader, saying so.
    let request = Request::builder()
        .uri("/.well-known/skills/escape/SKILL.md")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = app.send_raw(request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("could not be read"), "{body}");
    assert!(!body.contains("root:"), "{body}");
    // A rule is not a skill; an unknown name is not found; without a caller, nothing.
    assert_eq!(
        app.get("/.well-known/skills/house-rules/SKILL.md")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let anonymous = TestApp::new(app.state.db.clone()).await.anonymous();
    let request = Request::builder()
        .uri("/.well-known/skills/index.json")
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = anonymous.send_raw(request).await;
    assert!(
        status == StatusCode::SEE_OTHER || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
}

/// A template's `ui:field: Secret` is a password input whose text goes to the task's secrets, not its
/// parameters: the step reads it as `${{ secrets.token }}`, the log shows it redacted, the stored
/// task holds only the mask, and a form shown again (here after an error) never echoes it.
/// `ui:widget: password` masks an ordinary parameter.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_secret_field_sends_its_value_as_a_secret(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.add(
        "secret/template.yaml",
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: with-secret\nspec:\n  owner: group:platform\n  type: service\n  parameters:\n    - required: [name, token]\n      properties:\n        name: {type: string, pattern: '^[a-z]+$'}\n        token: {title: Deploy token, type: string, 'ui:field': Secret}\n        pin: {title: PIN, type: string, 'ui:widget': password}\n  steps:\n    - id: use\n      action: debug:log\n      input:\n        message: 'token ${{ secrets.token }} for ${{ parameters.name }}'\n",
    )
    .await;
    app.entity("template", "with-secret").await;
    let form = page(&app, "/create/templates/default/with-secret").await;
    form.assert_strict();
    assert_eq!(form.attrs("input[name=token]", "type"), ["password"]);
    assert_eq!(form.attrs("input[name=pin]", "type"), ["password"]);

    let secret = "s3cr3t-value-42";
    let refused = post_form(
        &app,
        "/create/templates/default/with-secret",
        &[("name", "NOT-LOWER"), ("token", secret), ("pin", "1234")],
        "same-origin",
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::OK,
        "the form again, with its errors"
    );
    assert!(!refused.text.contains(secret), "the secret is never echoed");
    assert_eq!(refused.attrs("input[name=pin]", "value"), ["1234"]);

    let sent = post_form(
        &app,
        "/create/templates/default/with-secret",
        &[("name", "shop"), ("token", secret), ("pin", "1234")],
        "same-origin",
    )
    .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    let task_url = sent.headers[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    let id = task_url.rsplit('/').next().expect("id").to_owned();
    app.state.scaffolder.run_until_idle().await.expect("run");
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "completed", "{}", task.body);
    assert_eq!(
        task.body["spec"]["parameters"]["token"],
        "*".repeat(secret.len())
    );
    assert_eq!(task.body["spec"]["parameters"]["pin"], "1234");
    assert!(!task.body.to_string().contains(secret));
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let log = events.body.to_string();
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("token *** for shop"), "{log}");
}
