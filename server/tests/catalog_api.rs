//! The Backstage catalog API over the real router and a real Postgres database.

mod common;

use axum::http::StatusCode;
use common::{TestApp, load_sample, relations};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn entity_by_name_is_stitched_with_relations_both_ways(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;

    let checkout = app.entity("component", "checkout").await;
    assert_eq!(checkout["metadata"]["namespace"], "default");
    assert!(
        checkout["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(checkout["metadata"]["etag"].as_str().is_some());
    assert_eq!(
        relations(&checkout),
        [
            "dependencyOf component:default/storefront",
            "ownedBy group:default/team-a",
            "partOf system:default/payments",
            "providesApi api:default/checkout-api",
        ]
    );
    let team = app.entity("group", "team-a").await;
    assert!(relations(&team).contains(&"hasMember user:default/alice".to_owned()));
    assert!(relations(&team).contains(&"ownerOf component:default/checkout".to_owned()));
    // Kind and name are case-insensitive in the path.
    assert_eq!(
        app.get("/api/catalog/entities/by-name/Component/default/CHECKOUT")
            .await
            .status,
        StatusCode::OK
    );

    // The $text placeholder was read from the file beside the entity.
    let api = app.entity("api", "checkout-api").await;
    assert_eq!(api["spec"]["definition"], common::CHECKOUT_OPENAPI);
    let annotations = &api["metadata"]["annotations"];
    assert!(
        annotations["backstage.io/managed-by-location"]
            .as_str()
            .expect("loc")
            .ends_with("/services.yaml")
    );
    assert!(
        annotations["backstage.io/managed-by-origin-location"]
            .as_str()
            .expect("origin")
            .ends_with("/catalog.yaml")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn unknown_entities_are_404_in_backstage_error_shape(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app
        .get("/api/catalog/entities/by-name/component/default/nope")
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.body["error"]["name"], "NotFoundError");
    assert_eq!(response.body["response"]["statusCode"], 404);
    assert_eq!(response.body["request"]["method"], "GET");
    // As Backstage writes it: the URL as the catalog router sees it, without the mount prefix.
    assert_eq!(
        response.body["request"]["url"],
        "/entities/by-name/component/default/nope"
    );
    assert!(response.headers.contains_key("x-request-id"));

    let by_uid = app
        .get("/api/catalog/entities/by-uid/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(by_uid.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn filters_follow_backstage_semantics(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let names = |uri: &'static str| {
        let app = &app;
        async move {
            let response = app.get(uri).await;
            assert_eq!(response.status, StatusCode::OK, "{uri}: {}", response.body);
            TestApp::names(&response.body)
        }
    };
    assert_eq!(
        names("/api/catalog/entities?filter=kind=component").await,
        ["checkout", "storefront"]
    );
    // Keys and values are case-insensitive; conditions in one filter are AND'ed.
    assert_eq!(
        names("/api/catalog/entities?filter=KIND=Component,Spec.Type=SERVICE").await,
        ["checkout"]
    );
    // Repeated filter parameters are OR'ed.
    assert_eq!(
        names("/api/catalog/entities?filter=kind=api&filter=kind=user").await,
        ["alice", "checkout-api"]
    );
    // Arrays match any element, and the `key.item` form too.
    assert_eq!(
        names("/api/catalog/entities?filter=metadata.tags=pci").await,
        ["checkout"]
    );
    assert_eq!(
        names("/api/catalog/entities?filter=metadata.tags.java,metadata.tags.pci").await,
        ["checkout"]
    );
    // Relations and existence.
    assert_eq!(
        names("/api/catalog/entities?filter=relations.ownedBy=user:default/alice").await,
        ["storefront"]
    );
    assert_eq!(
        names("/api/catalog/entities?filter=kind=component,spec.system").await,
        ["checkout"]
    );
    // A bad filter is a 400 that says what is wrong.
    let bad = app.get("/api/catalog/entities?filter==x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["name"], "InputError");
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("'=x'")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn fields_order_offset_and_limit(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let response = app
        .get("/api/catalog/entities?filter=kind=component&fields=metadata.name,spec.type&order=desc:metadata.name")
        .await;
    assert_eq!(
        response.body,
        json!([
            {"metadata": {"name": "storefront"}, "spec": {"type": "website"}},
            {"metadata": {"name": "checkout"}, "spec": {"type": "service"}},
        ])
    );
    let page = app
        .get("/api/catalog/entities?order=asc:metadata.name&limit=2&offset=1&fields=metadata.name")
        .await;
    assert_eq!(
        page.body,
        json!([{"metadata": {"name": "checkout"}}, {"metadata": {"name": "checkout-api"}}])
    );
    assert!(
        page.headers.contains_key("link"),
        "a next page is announced"
    );
    let bad = app.get("/api/catalog/entities?limit=-1").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn by_query_pages_with_cursors_in_both_directions(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    // 2 components, 1 API, 1 group, 1 user, 1 system, 2 locations = 8 entities.
    let first = app.get("/api/catalog/entities/by-query?limit=3&orderField=metadata.name,asc&fields=metadata.name").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["totalItems"], 8);
    assert!(first.body["pageInfo"].get("prevCursor").is_none());
    let mut seen = TestApp::names(&first.body);
    let mut cursor = first.body["pageInfo"]["nextCursor"]
        .as_str()
        .expect("next")
        .to_owned();
    let mut last_page = first.body.clone();
    for _ in 0..5 {
        let page = app
            .get(&format!(
                "/api/catalog/entities/by-query?limit=3&cursor={}",
                urlencode(&cursor)
            ))
            .await;
        assert_eq!(page.body["totalItems"], 8);
        seen.extend(TestApp::names(&page.body));
        last_page = page.body.clone();
        match page.body["pageInfo"]["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 8, "every entity exactly once: {seen:?}");
    assert_eq!(unique.len(), 8);
    // Back from the last page gives the page before it.
    let prev = last_page["pageInfo"]["prevCursor"].as_str().expect("prev");
    let back = app
        .get(&format!(
            "/api/catalog/entities/by-query?limit=3&cursor={}",
            urlencode(prev)
        ))
        .await;
    assert_eq!(TestApp::names(&back.body).len(), 3);

    let bad = app
        .get("/api/catalog/entities/by-query?cursor=not-a-cursor")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn predicate_queries(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let response = app
        .post(
            "/api/catalog/entities/by-query",
            json!({
                "query": {"$all": [
                    {"kind": {"$in": ["component", "api"]}},
                    {"$not": {"spec.lifecycle": "experimental"}},
                    {"spec.owner": {"$exists": true}}
                ]},
                "orderBy": [{"field": "metadata.name", "order": "asc"}],
                "limit": 1
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["totalItems"], 2);
    assert_eq!(TestApp::names(&response.body), ["checkout"]);
    let cursor = response.body["pageInfo"]["nextCursor"]
        .as_str()
        .expect("next");
    let next = app
        .post(
            "/api/catalog/entities/by-query",
            json!({"cursor": cursor, "limit": 1}),
        )
        .await;
    assert_eq!(TestApp::names(&next.body), ["checkout-api"]);

    let bad = app
        .post(
            "/api/catalog/entities/by-query",
            json!({"query": {"kind": {"$regex": "x"}}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("\"kind\"")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn facets_count_original_values(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let response = app
        .get("/api/catalog/entity-facets?facet=kind&facet=spec.type&filter=kind=component")
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body["facets"]["kind"],
        json!([{"value": "Component", "count": 2}])
    );
    assert_eq!(
        response.body["facets"]["spec.type"],
        json!([{"value": "service", "count": 1}, {"value": "website", "count": 1}])
    );
    let tags = app
        .get("/api/catalog/entity-facets?facet=metadata.tags")
        .await;
    assert_eq!(
        tags.body["facets"]["metadata.tags"]
            .as_array()
            .expect("tags")
            .len(),
        3
    );
    let owners = app
        .get("/api/catalog/entity-facets?facet=relations.ownedBy")
        .await;
    assert_eq!(
        owners.body["facets"]["relations.ownedBy"],
        json!([{"value": "group:default/team-a", "count": 3}, {"value": "user:default/alice", "count": 1}])
    );
    let typed = app
        .get("/api/catalog/entity-facets?facet=spec.lifecycle&filter=spec.type=service")
        .await;
    assert_eq!(
        typed.body["facets"]["spec.lifecycle"],
        json!([{"value": "production", "count": 1}])
    );
    assert_eq!(
        app.get("/api/catalog/entity-facets").await.status,
        StatusCode::BAD_REQUEST
    );
}

/// Names, titles, descriptions, links, `apiVersion`, the namespace, annotations and tag-item keys
/// (`metadata.tags.java`) keep no `entity_facet` rows; their facets are still exact, values as
/// written, over the filtered set.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn facets_of_per_entity_text_are_counted_without_rows(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let component = |name: &str, title: &str, kind_type: &str, namespace: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  title: {title}\n  description: Shared words\n  tags: [shared, {kind_type}]\n  annotations:\n    example.com/tier: Tier-{kind_type}\n  links:\n    - url: https://runbooks.example/{name}\n    - url: https://status.example\nspec:\n  type: {kind_type}\n  lifecycle: production\n  owner: team-a\n---\n"
        )
    };
    let file = [
        component("Checkout", "Payments", "service", "default"),
        component("cart", "Payments", "service", "shop"),
        component("Web", "Storefront", "website", "shop"),
    ]
    .concat()
        + "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\n  title: Payments\nspec:\n  type: team\n  children: []\n";
    app.add("many.yaml", &file).await;

    let facets = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .get(&format!("/api/catalog/entity-facets?{query}"))
                .await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{query}: {}",
                response.body
            );
            response.body["facets"].clone()
        }
    };
    let body =
        facets("facet=metadata.title&facet=metadata.name&facet=apiVersion&filter=kind=component")
            .await;
    assert_eq!(
        body["metadata.title"],
        json!([{"value": "Payments", "count": 2}, {"value": "Storefront", "count": 1}])
    );
    assert_eq!(
        body["metadata.name"],
        json!([{"value": "Checkout", "count": 1}, {"value": "Web", "count": 1}, {"value": "cart", "count": 1}]),
        "names as written, in byte order among equal counts"
    );
    assert_eq!(
        body["apiVersion"],
        json!([{"value": "backstage.io/v1alpha1", "count": 3}])
    );
    let body = facets("facet=metadata.title").await;
    assert_eq!(
        body["metadata.title"],
        json!([{"value": "Payments", "count": 3}, {"value": "Storefront", "count": 1}]),
        "the group counts too without a filter"
    );
    let body = facets("facet=metadata.links.url&filter=spec.type=service").await;
    assert_eq!(
        body["metadata.links.url"],
        json!([
            {"value": "https://status.example", "count": 2},
            {"value": "https://runbooks.example/Checkout", "count": 1},
            {"value": "https://runbooks.example/cart", "count": 1},
        ])
    );
    let body = facets("facet=metadata.namespace&facet=metadata.description&filter=kind=component,metadata.namespace=shop").await;
    assert_eq!(
        body["metadata.namespace"],
        json!([{"value": "shop", "count": 2}])
    );
    assert_eq!(
        body["metadata.description"],
        json!([{"value": "Shared words", "count": 2}])
    );
    let body = facets("facet=metadata.annotations.backstage.io/managed-by-location").await;
    let locations = body["metadata.annotations.backstage.io/managed-by-location"]
        .as_array()
        .expect("values")
        .clone();
    assert_eq!(locations.len(), 1, "{locations:?}");
    assert_eq!(
        locations[0]["count"], 5,
        "four entities and the Location generated for the file: {locations:?}"
    );
    assert!(
        locations[0]["value"]
            .as_str()
            .expect("value")
            .ends_with("many.yaml"),
        "{locations:?}"
    );

    let body = facets("facet=metadata.tags.shared&facet=metadata.tags.service&facet=metadata.annotations.example.com/tier&filter=kind=component").await;
    assert_eq!(
        body["metadata.tags.shared"],
        json!([{"value": "true", "count": 3}])
    );
    assert_eq!(
        body["metadata.tags.service"],
        json!([{"value": "true", "count": 2}])
    );
    assert_eq!(
        body["metadata.annotations.example.com/tier"],
        json!([{"value": "Tier-service", "count": 2}, {"value": "Tier-website", "count": 1}])
    );
    let body = facets("facet=metadata.tags&filter=kind=component").await;
    assert_eq!(
        body["metadata.tags"],
        json!([{"value": "shared", "count": 3}, {"value": "service", "count": 2}, {"value": "website", "count": 1}])
    );

    let stored: Vec<String> =
        sqlx::query_scalar("select distinct key from entity_facet order by key")
            .fetch_all(&pool)
            .await
            .expect("keys");
    assert!(stored.contains(&"spec.type".to_owned()), "{stored:?}");
    assert!(stored.contains(&"metadata.tags".to_owned()), "{stored:?}");
    assert!(
        !stored
            .iter()
            .any(|k| k.starts_with("metadata.tags.") || k.starts_with("metadata.annotations.")),
        "{stored:?}"
    );
    for key in [
        "metadata.name",
        "metadata.title",
        "metadata.namespace",
        "metadata.links.url",
        "apiversion",
    ] {
        assert!(
            !stored.contains(&key.to_owned()),
            "{key} has rows: {stored:?}"
        );
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn by_refs_keeps_request_order_with_nulls(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let response = app
        .post(
            "/api/catalog/entities/by-refs",
            json!({"entityRefs": ["component:storefront", "component:default/missing", "group:team-a"], "fields": ["kind"]}),
        )
        .await;
    assert_eq!(
        response.body,
        json!({"items": [{"kind": "Component"}, null, {"kind": "Group"}]})
    );
    let filtered = app
        .post(
            "/api/catalog/entities/by-refs?filter=kind=group",
            json!({"entityRefs": ["component:storefront", "group:team-a"], "fields": ["kind"]}),
        )
        .await;
    assert_eq!(filtered.body, json!({"items": [null, {"kind": "Group"}]}));
    let bad = app
        .post("/api/catalog/entities/by-refs", json!({"refs": []}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn ancestry_walks_up_to_the_registered_location(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let response = app
        .get("/api/catalog/entities/by-name/component/default/checkout/ancestry")
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["rootEntityRef"], "component:default/checkout");
    let items = response.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0]["parentEntityRefs"],
        json!(["location:default/sample"])
    );
    let generated = items[2]["entity"]["metadata"]["name"]
        .as_str()
        .expect("name");
    assert!(generated.starts_with("generated-") && generated.len() == "generated-".len() + 40);
    assert_eq!(items[2]["parentEntityRefs"], json!([]));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn locations_register_list_conflict_and_delete(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write("one.yaml", common::ORG);
    let target = app.path("one.yaml").display().to_string();

    // A dry run answers with what would be added and stores nothing.
    let dry = app
        .post(
            "/api/catalog/locations?dryRun=true",
            json!({"type": "file", "target": target}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::CREATED, "{}", dry.body);
    assert_eq!(dry.body["exists"], false);
    assert_eq!(dry.body["entities"].as_array().expect("entities").len(), 4);
    assert_eq!(app.get("/api/catalog/locations").await.body, json!([]));

    let id = app.register("one.yaml").await;
    let again = app
        .post(
            "/api/catalog/locations",
            json!({"type": "file", "target": target}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains(&target)
    );
    app.process().await;

    let listed = app.get("/api/catalog/locations").await;
    assert_eq!(listed.body[0]["data"]["id"], id);
    assert!(
        listed.body[0]["data"]["entityRef"]
            .as_str()
            .expect("ref")
            .starts_with("location:default/generated-")
    );
    let by_entity = app
        .get("/api/catalog/locations/by-entity/user/default/alice")
        .await;
    assert_eq!(by_entity.body["id"], id);
    assert_eq!(
        app.get(&format!("/api/catalog/locations/{id}")).await.body["target"],
        target
    );

    assert_eq!(
        app.delete(&format!("/api/catalog/locations/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.entity_status("user", "alice").await,
        StatusCode::NOT_FOUND,
        "entities go with their location"
    );
    assert_eq!(
        app.delete(&format!("/api/catalog/locations/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/catalog/locations/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn locations_outside_the_roots_or_of_unknown_type_are_refused(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let outside = app
        .post(
            "/api/catalog/locations",
            json!({"type": "file", "target": "/etc/passwd"}),
        )
        .await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN);
    assert!(
        outside.body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("outside the allowed roots")
    );
    let url = app
        .post(
            "/api/catalog/locations",
            json!({"type": "url", "target": "https://evil.example.com/x.yaml"}),
        )
        .await;
    assert_eq!(url.status, StatusCode::FORBIDDEN);
    // A type the catalog does not read is bad input, as in Backstage.
    let kind = app
        .post(
            "/api/catalog/locations",
            json!({"type": "gopher", "target": "x"}),
        )
        .await;
    assert_eq!(kind.status, StatusCode::BAD_REQUEST);
    assert_eq!(kind.body["error"]["name"], "InputError");
    let malformed = app
        .post("/api/catalog/locations", json!({"target": "x"}))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed.body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("type")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn validate_entity_reports_every_problem(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let valid = app
        .post(
            "/api/catalog/validate-entity",
            json!({"location": "url:https://example.com/x.yaml", "entity": {
                "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": "ok"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}}}),
        )
        .await;
    assert_eq!(valid.status, StatusCode::OK);
    let invalid = app
        .post(
            "/api/catalog/validate-entity",
            json!({"location": "url:https://example.com/x.yaml", "entity": {
                "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": "not valid!", "links": [{"url": "javascript:alert(1)"}]},
                "spec": {"type": "service", "lifecycle": "production"}}}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    let messages: Vec<String> = invalid.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("metadata.name")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("metadata.links.0.url")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("spec.owner")),
        "{messages:?}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn delete_by_uid_and_refresh(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let storefront = app.entity("component", "storefront").await;
    let uid = storefront["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        app.get(&format!("/api/catalog/entities/by-uid/{uid}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.delete(&format!("/api/catalog/entities/by-uid/{uid}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.process().await;
    assert_eq!(
        app.entity_status("component", "storefront").await,
        StatusCode::NOT_FOUND
    );
    // Its relations went with it: checkout no longer has a dependent.
    let checkout = app.entity("component", "checkout").await;
    assert!(
        !relations(&checkout)
            .iter()
            .any(|r| r.contains("storefront"))
    );

    // A refresh of an entity from the same file brings the deleted one back.
    let refresh = app
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/checkout"}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::OK);
    app.process().await;
    assert_eq!(
        app.entity_status("component", "storefront").await,
        StatusCode::OK
    );
    let unknown = app
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/nope"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn operator_endpoints(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().expect("text").to_owned();
    assert!(text.contains("atrium_catalog_entities"), "{text}");
    assert!(text.contains("atrium_http_requests_total"), "{text}");
    let status = app.get("/api/atrium/processing").await;
    assert_eq!(status.body["entities"], 8);
    assert_eq!(status.body["stitchQueue"], 0);
    assert_eq!(
        status.body["locationsWithErrors"], 0,
        "a clean catalog reads without errors"
    );
    assert_eq!(
        app.get("/no/such/route").await.status,
        StatusCode::NOT_FOUND
    );
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn middleware_errors_use_the_backstage_error_shape_too(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let wrong_method = app
        .request(axum::http::Method::PUT, "/api/catalog/entities", None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.body["response"]["statusCode"], 405);
    let huge = "x".repeat(3 * 1024 * 1024);
    let too_big = app
        .post(
            "/api/catalog/validate-entity",
            json!({"location": "url:x", "entity": {"x": huge}}),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_big.body["error"]["name"], "InputError");
}
