//! The audit log: catalog changes write exactly one event each, in the transaction of the change;
//! `GET /api/audit` and the `/audit` page filter and page it, for admins only.

mod common;

use atrium::auth::{ActorKind, Caller, Scopes};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::TestApp;
use scraper::{Html, Selector};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The events of one action, newest first.
async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    let response = app.get(&format!("/api/audit?action={action}")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body["items"].as_array().expect("items").clone()
}

fn request_id(response: &common::Response) -> String {
    response.headers["x-request-id"]
        .to_str()
        .expect("a request id")
        .to_owned()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn each_catalog_change_is_one_event_with_its_request(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let file = app.write("org.yaml", common::ORG).display().to_string();

    let added = app
        .post(
            "/api/catalog/locations",
            json!({"type": "file", "target": file}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let id = added.body["location"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let [event] = &events(&app, "location.add").await[..] else {
        panic!("one location.add event");
    };
    assert_eq!(event["actor"], "user:default/admin");
    assert_eq!(event["actorKind"], "token");
    assert_eq!(event["target"], format!("location:{id}"));
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["requestId"], request_id(&added));
    assert_eq!(event["detail"]["type"], "file");
    assert_eq!(event["detail"]["target"], file);
    assert!(event["detail"]["tokenId"].is_string());

    app.process().await;
    let system = app.entity("system", "payments").await;
    let uid = system["metadata"]["uid"].as_str().expect("uid").to_owned();
    let deleted = app
        .delete(&format!("/api/catalog/entities/by-uid/{uid}"))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    // Deleting it again changes nothing, and records nothing.
    let again = app
        .delete(&format!("/api/catalog/entities/by-uid/{uid}"))
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let [event] = &events(&app, "entity.delete").await[..] else {
        panic!("one entity.delete event");
    };
    assert_eq!(event["target"], "system:default/payments");
    assert_eq!(event["actor"], "user:default/admin");
    assert_eq!(event["actorKind"], "token");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["requestId"], request_id(&deleted));

    let removed = app.delete(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    let missing = app.delete(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let [event] = &events(&app, "location.remove").await[..] else {
        panic!("one location.remove event");
    };
    assert_eq!(event["target"], format!("location:{id}"));
    assert_eq!(event["actorKind"], "token");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["requestId"], request_id(&removed));
    assert_eq!(event["detail"]["type"], "file");
    assert_eq!(event["detail"]["target"], file);

    // No secret in the log: not the harness's token, nor its hash.
    let everything = app.get("/api/audit").await.body.to_string();
    let token = app.token.as_deref().expect("the harness token");
    assert!(!everything.contains(token));
    assert!(!everything.contains(&atrium::auth::token::hash(token)));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn refused_failed_and_dry_run_registrations_write_no_success_event(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let outside = tempfile::tempdir().expect("tempdir");
    let stray = outside.path().join("catalog-info.yaml");
    std::fs::write(&stray, common::ORG).expect("write");
    let refused = app
        .post(
            "/api/catalog/locations",
            json!({"type": "file", "target": stray.display().to_string()}),
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    let file = app.write("org.yaml", common::ORG).display().to_string();
    let dry_run = app
        .post(
            "/api/catalog/locations?dryRun=true",
            json!({"type": "file", "target": file}),
        )
        .await;
    assert_eq!(dry_run.status, StatusCode::CREATED, "{}", dry_run.body);
    // The refusal is recorded as one (a denial), the dry run not at all.
    let refusals = events(&app, "location.add").await;
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(refusals[0]["outcome"], "denied");
    assert_eq!(refusals[0]["detail"]["target"], stray.display().to_string());

    app.register("org.yaml").await;
    let twice = app
        .post(
            "/api/catalog/locations",
            json!({"type": "file", "target": file}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let added = events(&app, "location.add").await;
    assert_eq!(
        added.iter().filter(|e| e["outcome"] == "success").count(),
        1,
        "{added:#?}"
    );

    // The event is written in the change's transaction: when it cannot be written, the change is
    // not made either.
    sqlx::raw_sql(
        "create function refuse_event() returns trigger language plpgsql as $$
           begin raise exception 'no audit today'; end $$;
         create trigger refuse_event before insert on audit_event
           for each row when (new.action = 'location.add') execute function refuse_event();",
    )
    .execute(&app.state.db)
    .await
    .expect("trigger");
    app.write("other.yaml", common::SERVICES);
    let unaudited = app
        .post(
            "/api/catalog/locations",
            json!({"type": "file", "target": app.path("other.yaml").display().to_string()}),
        )
        .await;
    assert_eq!(unaudited.status, StatusCode::INTERNAL_SERVER_ERROR);
    let locations = app.get("/api/catalog/locations").await.body;
    assert_eq!(
        locations.as_array().expect("locations").len(),
        1,
        "{locations}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_register_page_is_audited_on_import_only(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let target = app.write("org.yaml", common::ORG).display().to_string();
    for action in ["analyze", "import"] {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("type", "file"), ("target", &target), ("action", action)])
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/catalog/register")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body))
            .expect("request");
        let (status, headers, _) = app.send_raw(request).await;
        assert_eq!(status, StatusCode::OK, "{action}");
        let added = events(&app, "location.add").await;
        if action == "analyze" {
            assert!(added.is_empty());
        } else {
            assert_eq!(added.len(), 1);
            assert_eq!(
                added[0]["requestId"],
                headers["x-request-id"].to_str().expect("id")
            );
            assert_eq!(added[0]["detail"]["target"], target);
        }
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_audit_api_filters_pages_and_is_for_admins(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let bot =
        common::agent_token_for(&app.state, "user:default/alice", "bot", &["catalog:write"]).await;
    for name in ["a", "b", "c"] {
        app.write(&format!("{name}.yaml"), common::ORG);
        app.register(&format!("{name}.yaml")).await;
    }
    app.write("d.yaml", common::ORG);
    let by_bot = app
        .request_as(
            &bot,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": app.path("d.yaml").display().to_string()})),
        )
        .await;
    assert_eq!(by_bot.status, StatusCode::CREATED, "{}", by_bot.body);

    let bots = app
        .get("/api/audit?action=location.add&actor=agent:bot")
        .await;
    let items = bots.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["actorKind"], "agent");
    assert_eq!(items[0]["detail"]["onBehalfOf"], "user:default/alice");
    assert_eq!(items[0]["requestId"], request_id(&by_bot));
    let admins = app
        .get("/api/audit?action=location.add&actor=user:default/admin")
        .await;
    assert_eq!(admins.body["items"].as_array().expect("items").len(), 3);

    // Newest first, in pages that go on from `nextBefore`.
    let mut ids = Vec::new();
    let mut uri = "/api/audit?action=location.add&limit=3".to_owned();
    loop {
        let page = app.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().expect("items");
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 3);
        ids.extend(items.iter().map(|e| e["id"].as_i64().expect("id")));
        let before = page.body["nextBefore"].as_i64().expect("nextBefore");
        assert_eq!(Some(&before), ids.last());
        uri = format!("/api/audit?action=location.add&limit=3&before={before}");
    }
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let first = events(&app, "location.add").await;
    assert_eq!(first[0]["actor"], "agent:bot", "the newest is first");

    // Not for anyone else: a token without admin, or a person who is no admin.
    let reader = common::token_for(&app.state, "user:default/bob", &["catalog:write"]).await;
    let refused = app
        .request_as(&reader, Method::GET, "/api/audit", None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"]["name"], "NotAllowedError");
    let refused = app.request_as(&bot, Method::GET, "/api/audit", None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

struct Page {
    status: StatusCode,
    html: Html,
    text: String,
}

impl Page {
    fn texts(&self, selector: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("selector");
        self.html
            .select(&selector)
            .map(|e| e.text().collect::<Vec<_>>().join(" "))
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("selector");
        self.html
            .select(&selector)
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }
}

async fn page(app: &TestApp, uri: &str, token: Option<&str>) -> Page {
    let mut request = Request::builder().uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let (status, _, bytes) = app
        .send_raw(request.body(Body::empty()).expect("request"))
        .await;
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    Page {
        status,
        html: Html::parse_document(&text),
        text,
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_audit_page_filters_and_pages_for_admins(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let carol = Caller {
        user_ref: "user:default/carol".to_owned(),
        kind: ActorKind::User,
        token_id: None,
        agent: None,
        scopes: Scopes::person(false),
        groups: Vec::new(),
        request_id: Some("req-<carol>".to_owned()),
    };
    for n in 0..55 {
        atrium::auth::service::audit(
            &app.state.db,
            &carol,
            "test.event",
            &format!("thing:{n}"),
            if n == 54 { "denied" } else { "success" },
            json!({"n": n}),
        )
        .await
        .expect("event");
    }

    let newest = page(
        &app,
        "/audit?action=test.event&actor=user:default/carol",
        None,
    )
    .await;
    assert_eq!(newest.status, StatusCode::OK, "{}", newest.text);
    let targets = newest.texts("tr.audit-event .event-target");
    assert_eq!(targets.len(), 50);
    assert_eq!(targets[0], "thing:54", "newest first");
    assert_eq!(newest.attrs("#filter-action", "value"), ["test.event"]);
    assert!(!newest.text.contains("<carol>"), "escaped");
    assert!(
        newest
            .texts("tr.audit-event code")
            .contains(&"req-<carol>".to_owned())
    );
    assert!(newest.attrs("a[rel=first]", "href").is_empty());
    let older = newest.attrs("a[rel=next]", "href").pop().expect("older");
    assert!(older.contains("action=test.event") && older.contains("before="));
    let last = page(&app, &older, None).await;
    assert_eq!(last.texts("tr.audit-event .event-target").len(), 5);
    assert_eq!(last.texts("tr.audit-event .event-target")[4], "thing:0");
    assert!(last.attrs("a[rel=next]", "href").is_empty());
    assert_eq!(last.attrs("a[rel=first]", "href").len(), 1);

    let denied = page(&app, "/audit?action=test.event&outcome=denied", None).await;
    assert_eq!(denied.texts("tr.audit-event .event-target"), ["thing:54"]);
    let by_target = page(&app, "/audit?target=thing:7", None).await;
    assert_eq!(
        by_target.texts("tr.audit-event .event-action"),
        ["test.event"]
    );
    assert_eq!(newest.texts("nav.site-nav a[href='/audit']"), ["Audit"]);

    let reader = common::token_for(&app.state, "user:default/bob", &["catalog:read"]).await;
    let refused = page(&app, "/audit", Some(&reader)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("admin"), "{}", refused.text);
    assert!(!refused.text.contains("thing:"));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_password_in_a_url_target_stays_out_of_the_log(pool: PgPool) {
    let app = TestApp::with_config(pool, |c| {
        c.url_allowlist = vec!["catalog.example.com".to_owned()];
    })
    .await;
    let added = app
        .post(
            "/api/catalog/locations",
            json!({"type": "url", "target": "https://bob:s3cret@catalog.example.com/catalog-info.yaml"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let [event] = &events(&app, "location.add").await[..] else {
        panic!("one location.add event");
    };
    assert_eq!(
        event["detail"]["target"],
        "https://bob:****@catalog.example.com/catalog-info.yaml"
    );
    assert!(!event.to_string().contains("s3cret"));
}
