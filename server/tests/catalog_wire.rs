//! Details of the catalog API that Backstage clients rely on and the catalog-client suite does not reach:
//! each test pins one answer to what Backstage's catalog backend (4.0.0) gives for the same request.

mod common;

use axum::http::StatusCode;
use common::{TestApp, load_sample, relations};
use serde_json::json;
use sqlx::PgPool;

/// An MCP server as Backstage's AI-model module describes it: an API with `remotes`, no `definition`.
const MCP_SERVER: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: catalog-mcp
spec:
  type: mcp-server
  lifecycle: experimental
  owner: team-a
  system: payments
  remotes:
    - type: streamable-http
      url: https://mcp.example.com/api/mcp-actions/v1
"#;

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_mcp_server_api_is_valid_with_its_relations_and_facets(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    app.add("mcp.yaml", MCP_SERVER).await;

    let api = app.entity("api", "catalog-mcp").await;
    assert!(
        api.get("status").is_none(),
        "no processing errors: {}",
        api["status"]
    );
    assert_eq!(api["spec"]["remotes"][0]["type"], "streamable-http");
    assert_eq!(
        relations(&api),
        [
            "ownedBy group:default/team-a",
            "partOf system:default/payments"
        ]
    );
    let team = app.entity("group", "team-a").await;
    assert!(relations(&team).contains(&"ownerOf api:default/catalog-mcp".to_owned()));

    let facets = app
        .get("/api/catalog/entity-facets?facet=spec.type&filter=kind=api")
        .await;
    assert_eq!(
        facets.body["facets"]["spec.type"],
        json!([{"value": "mcp-server", "count": 1}, {"value": "openapi", "count": 1}])
    );

    let validate = |spec: serde_json::Value| {
        json!({"location": "url:https://example.com/mcp.yaml", "entity": {
            "apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "mcp"}, "spec": spec}})
    };
    let valid = app
        .post(
            "/api/catalog/validate-entity",
            validate(
                json!({"type": "mcp-server", "lifecycle": "production", "owner": "team-a",
                "remotes": [{"type": "sse", "url": "https://mcp.example.com/sse"}]}),
            ),
        )
        .await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.body);
    // Without remotes it is not an MCP server, and other API types still need their definition.
    for spec in [
        json!({"type": "mcp-server", "lifecycle": "production", "owner": "team-a"}),
        json!({"type": "openapi", "lifecycle": "production", "owner": "team-a",
            "remotes": [{"type": "sse", "url": "https://mcp.example.com/sse"}]}),
    ] {
        let invalid = app
            .post("/api/catalog/validate-entity", validate(spec))
            .await;
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.body);
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn error_bodies_name_the_url_as_the_catalog_router_sees_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let url_of = |response: common::Response| {
        response.body["request"]["url"]
            .as_str()
            .expect("url")
            .to_owned()
    };
    assert_eq!(
        url_of(app.get("/api/catalog/entities?filter==x").await),
        "/entities?filter==x"
    );
    assert_eq!(
        url_of(
            app.post(
                "/api/catalog/refresh",
                json!({"entityRef": "component:default/nope"})
            )
            .await
        ),
        "/refresh"
    );
    assert_eq!(
        url_of(
            app.post("/api/catalog/locations", json!({"target": "x"}))
                .await
        ),
        "/locations"
    );
    // A wrong method is answered by the catalog's router too.
    let wrong = app
        .request(axum::http::Method::PUT, "/api/catalog/entities", None)
        .await;
    assert_eq!(url_of(wrong), "/entities");
    // A path no plugin serves keeps its whole URL.
    assert_eq!(
        url_of(app.get("/api/nothing/here").await),
        "/api/nothing/here"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn bad_list_parameters_are_input_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    for (uri, message) in [
        (
            "/api/catalog/entities?limit=0",
            "Invalid limit, must be greater than zero",
        ),
        (
            "/api/catalog/entities?fields=",
            "Empty value found for query parameter 'fields'",
        ),
        (
            "/api/catalog/entities/by-query?fields=",
            "Empty value found for query parameter 'fields'",
        ),
        (
            "/api/catalog/entities?order=bogus",
            "Invalid order parameter \"bogus\", expected \"<asc or desc>:<field name>\"",
        ),
        (
            "/api/catalog/entities?order=metadata.name",
            "Invalid order parameter \"metadata.name\", expected \"<asc or desc>:<field name>\"",
        ),
        (
            "/api/catalog/entities?fields=spec.ports[0]",
            "Invalid field \"spec.ports[0]\", array type fields are not supported",
        ),
        (
            "/api/catalog/entities?kind=component",
            "Unknown query parameter 'kind'",
        ),
        (
            "/api/catalog/entities/by-name/component/default/checkout?format=yaml",
            "Unknown query parameter 'format'",
        ),
        ("/api/catalog/locations?x=1", "Unknown query parameter 'x'"),
        (
            "/api/catalog/entities?after=bm90LWpzb24",
            "Malformed after cursor, could not be parsed",
        ),
        (
            "/api/catalog/entities/by-query?totalItems=some",
            "Invalid totalItems \"some\", expected one of: include, exclude",
        ),
    ] {
        let response = app.get(uri).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(response.body["error"]["name"], "InputError", "{uri}");
        assert_eq!(response.body["error"]["message"], message, "{uri}");
    }
    // A by-query body may carry fields a newer client knows of.
    let newer = app
        .post(
            "/api/catalog/entities/by-query",
            json!({"query": {"kind": "component"}, "someFutureOption": true}),
        )
        .await;
    assert_eq!(newer.status, StatusCode::OK, "{}", newer.body);
    assert_eq!(newer.body["totalItems"], 2);
    // by-query takes a zero limit (a common way to count): no items, the total, no cursors.
    let counted = app
        .get("/api/catalog/entities/by-query?filter=kind=component&limit=0")
        .await;
    assert_eq!(counted.status, StatusCode::OK);
    assert_eq!(
        counted.body,
        json!({"items": [], "totalItems": 2, "pageInfo": {}})
    );
    let uncounted = app
        .get("/api/catalog/entities/by-query?filter=kind=component&totalItems=exclude")
        .await;
    assert_eq!(uncounted.body["totalItems"], 0);
    assert_eq!(TestApp::names(&uncounted.body), ["checkout", "storefront"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn paginated_entity_lists_follow_backstage(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let refs = |body: &serde_json::Value| -> Vec<String> {
        body.as_array()
            .expect("array")
            .iter()
            .map(|e| {
                format!(
                    "{}:{}",
                    e["kind"].as_str().expect("kind").to_lowercase(),
                    e["metadata"]["name"].as_str().expect("name")
                )
            })
            .collect()
    };
    // Paginated without order: entity ref order. The Link is relative to the catalog router, keeps the
    // other parameters (re-encoded), drops `offset` and sets `after`.
    let first = app
        .get("/api/catalog/entities?filter=kind=component,kind=api&offset=0&limit=2&fields=kind,metadata.name")
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        refs(&first.body),
        ["api:checkout-api", "component:checkout"]
    );
    let link = first.headers["link"].to_str().expect("ascii").to_owned();
    let after = link
        .strip_prefix(
            "</entities?filter=kind%3Dcomponent%2Ckind%3Dapi&limit=2&fields=kind%2Cmetadata.name&after=",
        )
        .and_then(|rest| rest.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("Link: {link}"));
    assert_eq!(
        urldecode(after),
        base64_json(r#"{"limit":2,"offset":2}"#),
        "Backstage's cursor"
    );
    let next_uri = format!(
        "/api/catalog{}",
        &link[1..link.find('>').expect("closing bracket")]
    );
    let next = app.get(&next_uri).await;
    assert_eq!(refs(&next.body), ["component:storefront"]);
    assert!(next.headers.get("link").is_none());

    // Paginated with order: every field, entities lacking one last in both directions, ties by uid.
    for direction in ["asc", "desc"] {
        let ordered = app
            .get(&format!(
                "/api/catalog/entities?filter=kind=component,kind=api&order={direction}:spec.system&order=asc:metadata.name&limit=10"
            ))
            .await;
        assert_eq!(
            refs(&ordered.body),
            [
                "component:checkout",
                "api:checkout-api",
                "component:storefront"
            ],
            "{direction}"
        );
    }
    // Not paginated: only the first order field, and entities lacking it are left out.
    let unpaginated = app
        .get("/api/catalog/entities?filter=kind=component,kind=api&order=asc:spec.system&order=asc:metadata.name")
        .await;
    assert_eq!(refs(&unpaginated.body), ["component:checkout"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn by_query_order_fields_leave_out_entities_without_them(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let page = app
        .get("/api/catalog/entities/by-query?filter=kind=component&orderField=spec.system,desc&orderField=metadata.name,asc")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["totalItems"], 1);
    assert_eq!(TestApp::names(&page.body), ["checkout"]);
    // Without a limit the page holds up to 200 entities: the whole sample, no cursor.
    let all = app.get("/api/catalog/entities/by-query").await;
    assert_eq!(all.body["totalItems"], 8);
    assert_eq!(all.body["items"].as_array().expect("items").len(), 8);
    assert_eq!(all.body["pageInfo"], json!({}));
    // A cursor does not carry the page size: followed without a limit, the default applies.
    let first = app
        .get("/api/catalog/entities/by-query?limit=3&orderField=metadata.name,asc")
        .await;
    let cursor = first.body["pageInfo"]["nextCursor"].as_str().expect("next");
    let rest = app
        .get(&format!(
            "/api/catalog/entities/by-query?cursor={}",
            urlencode(cursor)
        ))
        .await;
    assert_eq!(rest.body["items"].as_array().expect("items").len(), 5);
    assert!(rest.body["pageInfo"].get("nextCursor").is_none());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn fields_find_annotation_keys_with_dots_and_slashes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    // The sample's services come from services.yaml; that file's location manages them.
    let location = format!("file:{}", app.path("services.yaml").display());
    let response = app
        .get("/api/catalog/entities?filter=metadata.name=checkout&fields=metadata.annotations.backstage.io/managed-by-location,kind")
        .await;
    assert_eq!(
        response.body,
        json!([{"kind": "Component", "metadata": {"annotations": {"backstage.io/managed-by-location": location}}}])
    );
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn urldecode(value: &str) -> String {
    url::form_urlencoded::parse(format!("x={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn base64_json(json: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn locations_by_query_filter_count_and_page(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write("one.yaml", common::ORG);
    app.write("two.yaml", "");
    let one = app.register("one.yaml").await;
    let two = app.register("two.yaml").await;
    let mut ids = vec![one.clone(), two.clone()];
    ids.sort();

    let all = app.post("/api/catalog/locations/by-query", json!({})).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["totalItems"], 2);
    let listed: Vec<&str> = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, ids, "in id order");
    assert_eq!(all.body["pageInfo"], json!({}));

    // Case-insensitive values, `$hasPrefix`, `$in`, and the entity ref.
    let target = app.path("one.yaml").display().to_string();
    for query in [
        json!({"target": target.to_uppercase()}),
        json!({"$all": [{"type": "FILE"}, {"target": {"$hasPrefix": target.trim_end_matches("one.yaml")}}, {"id": {"$in": [&one]}}]}),
        json!({"$not": {"id": &two}}),
    ] {
        let found = app
            .post("/api/catalog/locations/by-query", json!({"query": query}))
            .await;
        assert_eq!(found.body["totalItems"], 1, "{query}: {}", found.body);
        assert_eq!(found.body["items"][0]["id"], one, "{query}");
    }
    let by_ref = all.body["items"][0]["entityRef"].as_str().expect("ref");
    let found = app
        .post(
            "/api/catalog/locations/by-query",
            json!({"query": {"entityRef": by_ref}}),
        )
        .await;
    assert_eq!(found.body["totalItems"], 1);

    // Pages of one: the cursor keeps the query and the page size.
    let first = app
        .post(
            "/api/catalog/locations/by-query",
            json!({"limit": 1, "query": {"type": "file"}}),
        )
        .await;
    assert_eq!(first.body["items"][0]["id"], ids[0].as_str());
    assert_eq!(first.body["totalItems"], 2);
    let cursor = first.body["pageInfo"]["nextCursor"].as_str().expect("next");
    let second = app
        .post(
            "/api/catalog/locations/by-query",
            json!({"cursor": cursor, "limit": 50}),
        )
        .await;
    assert_eq!(second.body["items"].as_array().expect("items").len(), 1);
    assert_eq!(second.body["items"][0]["id"], ids[1].as_str());
    assert_eq!(second.body["pageInfo"], json!({}));

    for (body, message) in [
        (
            json!({"query": {"kind": "x"}}),
            "Invalid filter predicate, expected key to be 'id', 'type', 'target', or 'entityRef', got 'kind'",
        ),
        (json!({"limit": 0}), "Limit must be a positive integer >= 1"),
        (
            json!({"limit": 1.5}),
            "Limit must be a positive integer >= 1",
        ),
    ] {
        let bad = app.post("/api/catalog/locations/by-query", body).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.body["error"]["message"], message);
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn dry_runs_answer_unstored_entities_and_refuse_failing_trees(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write("one.yaml", common::ORG);
    let target = app.path("one.yaml").display().to_string();
    let dry = app
        .post(
            "/api/catalog/locations?dryRun=yes",
            json!({"type": "file", "target": target, "presence": "required"}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::CREATED, "{}", dry.body);
    assert_eq!(dry.body["location"]["id"], format!("file:{target}"));
    assert_eq!(dry.body["location"]["type"], "file");
    let entities = dry.body["entities"].as_array().expect("entities");
    assert_eq!(entities.len(), 4);
    for entity in entities {
        assert!(entity.get("relations").is_none(), "{entity}");
        assert!(entity["metadata"].get("uid").is_none(), "{entity}");
    }

    // An entity that fails validation, and a Location whose target is not allowed, fail the tree.
    app.write(
        "bad.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Not Valid!\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    );
    app.write(
        "escape.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: escape\nspec:\n  targets: [/etc/passwd]\n",
    );
    for file in ["bad.yaml", "escape.yaml"] {
        let failing = app
            .post(
                "/api/catalog/locations?dryRun=true",
                json!({"type": "file", "target": app.path(file).display().to_string()}),
            )
            .await;
        assert_eq!(
            failing.status,
            StatusCode::BAD_REQUEST,
            "{file}: {}",
            failing.body
        );
        assert_eq!(failing.body["error"]["name"], "InputError");
    }
    // A location body holds type, target and presence only.
    let extra = app
        .post(
            "/api/catalog/locations?dryRun=true",
            json!({"type": "file", "target": target, "refresh": true}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
    // An unknown type is a 400 before anything is read.
    let gopher = app
        .post(
            "/api/catalog/locations?dryRun=true",
            json!({"type": "gopher", "target": "gopher://x"}),
        )
        .await;
    assert_eq!(gopher.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        gopher.body["error"]["message"],
        "Registered locations must be of an allowed type [\"file\",\"url\",\"git\"]"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn validate_entity_takes_url_refs_only_and_answers_in_its_own_shape(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "ok"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
    let file = app
        .post(
            "/api/catalog/validate-entity",
            json!({"location": "file:/srv/catalog-info.yaml", "entity": entity}),
        )
        .await;
    assert_eq!(file.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        file.body,
        json!({"errors": [{"name": "TypeError", "message": "Invalid location ref file:/srv/catalog-info.yaml, only 'url:<target>' is supported, e.g. url:https://host/path"}]})
    );
    let missing = app
        .post("/api/catalog/validate-entity", json!({"entity": entity}))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["errors"][0]["name"], "InputError");
}
