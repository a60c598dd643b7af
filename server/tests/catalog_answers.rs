//! Counts, facets and search pages are kept per catalog generation (`catalog::answers`): these tests
//! check that what is kept is always exact. Every change a user can make — a file edited and
//! refreshed, an entity deleted, a location removed — shows in the very next `totalItems`, facet
//! count and page, while a refresh that changes nothing keeps the answers. And the planner's
//! statistics are kept fresh without anyone running ANALYZE.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

fn component(name: &str, kind_type: &str, title: &str, description: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  title: {title}\n  description: {description}\nspec:\n  type: {kind_type}\n  lifecycle: production\n  owner: team-a\n"
    )
}

fn file(components: &[String]) -> String {
    components.join("---\n")
}

async fn total(app: &TestApp, query: &str) -> i64 {
    let response = app
        .get(&format!("/api/catalog/entities/by-query?{query}"))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body["totalItems"].as_i64().expect("totalItems")
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let response = app
        .get(&format!("/api/catalog/entities/by-query?{query}"))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let mut names = TestApp::names(&json!(response.body["items"]));
    names.sort();
    names
}

async fn type_facet(app: &TestApp) -> Value {
    let response = app
        .get("/api/catalog/entity-facets?facet=spec.type&filter=kind=component")
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body["facets"]["spec.type"].clone()
}

/// Deletes an entity by its uid, as a user of the API does.
async fn delete_through_api(app: &TestApp, kind: &str, name: &str) {
    let uid = app.entity(kind, name).await["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let deleted = app
        .delete(&format!("/api/catalog/entities/by-uid/{uid}"))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
}

async fn generation(app: &TestApp) -> i64 {
    sqlx::query_scalar!("select value from catalog_generation")
        .fetch_one(&app.state.db)
        .await
        .expect("generation")
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn counts_facets_and_pages_follow_every_change_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = component("payments-api", "service", "Payments API", "Takes payments");
    let b = component("ledger", "service", "Ledger", "Books payments");
    let c = component("checkout-web", "website", "Checkout", "The shop front");
    app.add("c.yaml", &file(&[a.clone(), b.clone(), c.clone()]))
        .await;

    let service_query = "filter=kind=component,spec.type=service";
    let search = "filter=kind=component&fullTextFilterTerm=payments&fullTextFilterFields=metadata.name,metadata.title";
    assert_eq!(total(&app, "filter=kind=component").await, 3);
    assert_eq!(total(&app, service_query).await, 2);
    assert_eq!(names(&app, search).await, ["payments-api"]);
    let facet = json!([{"value": "service", "count": 2}, {"value": "website", "count": 1}]);
    assert_eq!(type_facet(&app).await, facet);

    // Asked again with nothing changed: the same answers, and a refresh that reads the same file
    // changes nothing, so the generation stays.
    let before = generation(&app).await;
    app.refresh_all().await;
    assert_eq!(generation(&app).await, before, "an unchanged refresh");
    assert_eq!(total(&app, service_query).await, 2);
    assert_eq!(type_facet(&app).await, facet);

    // An edit: the ledger becomes a website, and a new service mentions payments in its title.
    let b2 = component("ledger", "website", "Ledger", "Books payments");
    let d = component("fx", "service", "Payments FX", "Currency exchange");
    app.write("c.yaml", &file(&[a.clone(), b2, c.clone(), d]));
    app.refresh_all().await;
    assert!(generation(&app).await > before);
    assert_eq!(total(&app, "filter=kind=component").await, 4);
    assert_eq!(total(&app, service_query).await, 2);
    assert_eq!(names(&app, search).await, ["fx", "payments-api"]);
    assert_eq!(
        type_facet(&app).await,
        json!([{"value": "service", "count": 2}, {"value": "website", "count": 2}])
    );

    // A delete through the API.
    delete_through_api(&app, "component", "fx").await;
    assert_eq!(total(&app, "filter=kind=component").await, 3);
    assert_eq!(names(&app, search).await, ["payments-api"]);
    assert_eq!(
        type_facet(&app).await,
        json!([{"value": "website", "count": 2}, {"value": "service", "count": 1}])
    );
}

/// Checks `totalItems` of lists filtered on kinds alone, which are summed from the per-kind counts
/// the triggers keep (`db::counts`), against the visible entities themselves: per kind, for several
/// kinds, a kind with none, and all entities. Each is also asked with a condition every entity meets
/// (`metadata.namespace` exists), which is counted from the entities, and must agree.
async fn assert_kind_counts_agree(app: &TestApp) {
    let truth: Vec<(String, i64)> = sqlx::query_as(
        "select kind, count(*) from entity where final is not null group by kind order by kind",
    )
    .fetch_all(&app.state.db)
    .await
    .expect("counts");
    assert!(truth.len() >= 2, "the check needs several kinds: {truth:?}");
    for (kind, n) in &truth {
        assert_eq!(
            total(app, &format!("filter=kind={kind}")).await,
            *n,
            "{kind}"
        );
        let counted = format!("filter=kind={kind},metadata.namespace");
        assert_eq!(total(app, &counted).await, *n, "{kind} from entities");
    }
    let (a, b) = (&truth[0], &truth[1]);
    let both = format!("filter=kind={},kind={}", a.0, b.0);
    assert_eq!(total(app, &both).await, a.1 + b.1);
    let either = format!("filter=kind={}&filter=kind={}", a.0.to_uppercase(), b.0);
    assert_eq!(total(app, &either).await, a.1 + b.1);
    assert_eq!(total(app, "filter=kind=nosuchkind").await, 0);
    let all: i64 = truth.iter().map(|(_, n)| n).sum();
    assert_eq!(total(app, "limit=1").await, all);
    assert_eq!(total(app, "filter=metadata.namespace").await, all);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn counts_of_kinds_agree_with_the_entities_after_every_change(pool: PgPool) {
    let app = TestApp::new(pool).await;
    common::load_sample(&app).await;
    let services = [
        component("alpha", "service", "Alpha", "First"),
        component("beta", "service", "Beta", "Second"),
    ];
    let extra = app.add("c.yaml", &file(&services)).await;
    assert_kind_counts_agree(&app).await;
    // Folded when the queue drained: at most one row per kind is left to sum.
    let rows: i64 = sqlx::query_scalar("select count(*) from entity_kind_count")
        .fetch_one(&app.state.db)
        .await
        .expect("rows");
    let kinds: i64 =
        sqlx::query_scalar("select count(distinct kind) from entity where final is not null")
            .fetch_one(&app.state.db)
            .await
            .expect("kinds");
    assert!(rows <= kinds, "{rows} count rows for {kinds} kinds");

    // An edit that turns an entity into another kind (a new entity, the old one removed).
    let resource = "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: beta\nspec:\n  type: database\n  owner: team-a\n";
    app.write("c.yaml", &file(&[services[0].clone(), resource.to_owned()]));
    app.refresh_all().await;
    assert_kind_counts_agree(&app).await;

    // A delete through the API: counted from the change the delete adds, not yet folded.
    delete_through_api(&app, "component", "alpha").await;
    assert_kind_counts_agree(&app).await;

    // A location removed with everything it emitted.
    let removed = app.delete(&format!("/api/catalog/locations/{extra}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    app.process().await;
    assert_eq!(
        total(&app, "filter=kind=resource,metadata.name=beta").await,
        0
    );
    assert_kind_counts_agree(&app).await;
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn removing_a_location_empties_counts_and_pages(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let id = app
        .add(
            "c.yaml",
            &file(&[component("alpha", "service", "Alpha", "First")]),
        )
        .await;
    assert_eq!(total(&app, "filter=kind=component").await, 1);
    assert_eq!(names(&app, "filter=kind=component").await, ["alpha"]);
    let removed = app.delete(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    app.process().await;
    assert_eq!(total(&app, "filter=kind=component").await, 0);
    assert!(names(&app, "filter=kind=component").await.is_empty());
    assert_eq!(type_facet(&app).await, json!([]));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_search_on_some_text_fields_matches_only_those_fields(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.add(
        "c.yaml",
        &file(&[
            component("ledger", "service", "Ledger", "Books payments"),
            component("payments-api", "service", "Payments API", "Takes money"),
            component("shop", "website", "Shop", "Front"),
        ]),
    )
    .await;
    let search = |term: &str, fields: &str| {
        format!("filter=kind=component&fullTextFilterTerm={term}&fullTextFilterFields={fields}")
    };
    // "payments" is in the ledger's description only: not a match on name and title.
    assert_eq!(
        names(&app, &search("payments", "metadata.name,metadata.title")).await,
        ["payments-api"]
    );
    assert_eq!(
        total(&app, &search("payments", "metadata.name,metadata.title")).await,
        1
    );
    assert_eq!(
        names(&app, &search("payments", "metadata.description")).await,
        ["ledger"]
    );
    // Case-insensitive, a substring, and never across two fields' values ("ledger ledger" would be
    // the name and the title side by side in the text column).
    assert_eq!(
        names(&app, &search("AYMENT", "metadata.title")).await,
        ["payments-api"]
    );
    assert!(
        names(
            &app,
            &search("ledger%20ledger", "metadata.name,metadata.title")
        )
        .await
        .is_empty()
    );
    // A field outside the default text fields is searched too.
    assert_eq!(
        names(&app, &search("production", "spec.lifecycle"))
            .await
            .len(),
        3
    );
    assert_eq!(
        names(&app, &search("team-a", "spec.owner,spec.system"))
            .await
            .len(),
        3
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn ingestion_keeps_the_planner_statistics_fresh(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let components: Vec<String> = (0..120)
        .map(|i| component(&format!("c{i}"), "service", "C", "D"))
        .collect();
    app.add("many.yaml", &file(&components)).await;
    // `reltuples` is -1 until a table is first analyzed or vacuumed; ANALYZE sets it.
    let estimate: f32 = sqlx::query_scalar!(
        r#"select reltuples as "estimate!" from pg_class where oid = 'entity'::regclass"#
    )
    .fetch_one(&app.state.db)
    .await
    .expect("reltuples");
    assert!(
        estimate >= 120.0,
        "the stitcher analyzed `entity` after a bulk change: the planner estimates {estimate} rows"
    );
}

/// Unpaginated lists are kept whole per generation (`catalog::list_answers`): the same request gives
/// the same body, and an owner changing in a file shows in the very next list of both teams.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn unpaginated_lists_follow_every_change_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let owned = |owner: &str, names: &[&str]| -> String {
        file(
            &names
                .iter()
                .map(|n| {
                    component(n, "service", n, "x")
                        .replace("owner: team-a", &format!("owner: {owner}"))
                })
                .collect::<Vec<_>>(),
        )
    };
    app.add("a.yaml", &owned("team-a", &["billing", "ledger"]))
        .await;
    app.add("b.yaml", &owned("team-b", &["web"])).await;
    let list =
        |team: &str| format!("/api/catalog/entities?filter=relations.ownedBy=group:default/{team}");
    let names_of = |body: &Value| TestApp::names(body);

    let first = app.get(&list("team-a")).await;
    assert_eq!(names_of(&first.body), ["billing", "ledger"]);
    let again = app.get(&list("team-a")).await;
    assert_eq!(again.body, first.body, "the kept answer is the same body");
    assert_eq!(
        again
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let projected = app
        .get(&format!("{}&fields=metadata.name", list("team-a")))
        .await;
    // Without an order, entities come in id order: compare them sorted.
    let mut items = projected.body.as_array().expect("list").clone();
    items.sort_by_key(|item| item["metadata"]["name"].as_str().map(str::to_owned));
    assert_eq!(
        items,
        [
            json!({"metadata": {"name": "billing"}}),
            json!({"metadata": {"name": "ledger"}})
        ],
        "fields are part of what is kept"
    );

    // The ledger moves to team-b, in the same file.
    let moved = [owned("team-a", &["billing"]), owned("team-b", &["ledger"])].join("---\n");
    app.write("a.yaml", &moved);
    app.refresh_all().await;
    assert_eq!(names_of(&app.get(&list("team-a")).await.body), ["billing"]);
    assert_eq!(
        names_of(&app.get(&list("team-b")).await.body),
        ["ledger", "web"]
    );
}

/// An entity asked for by name is kept per generation too (`catalog.entity_cache_megabytes`), and
/// each replica learns of a new generation by LISTEN/NOTIFY instead of asking on every request
/// (`catalog::generation_watch`): a change shows at once on the replica that stored it, and on
/// another within moments, long before the watch's own 5 s re-read.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn entities_by_name_follow_changes_here_and_on_other_replicas(pool: PgPool) {
    let here = TestApp::new(pool.clone()).await;
    let other = TestApp::new(pool).await;
    let by_name = "/api/catalog/entities/by-name/component/default/ledger";
    here.add("l.yaml", &component("ledger", "service", "Ledger", "Books"))
        .await;
    for app in [&here, &other] {
        let response = app.get(by_name).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        assert_eq!(response.body["metadata"]["title"], "Ledger");
        assert_eq!(app.get(by_name).await.body, response.body, "kept, the same");
    }

    // Both replicas listen (each started its watch with its first request).
    let listening = async || {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and query = 'LISTEN \"atrium_catalog_generation\"'",
        )
        .fetch_one(&here.state.db)
        .await
        .expect("pg_stat_activity")
    };
    let started = std::time::Instant::now();
    while listening().await < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the replicas do not listen for generations"
        );
        tokio::task::yield_now().await;
    }

    here.write(
        "l.yaml",
        &component("ledger", "service", "Ledger v2", "Books"),
    );
    here.refresh_all().await;
    assert_eq!(
        here.get(by_name).await.body["metadata"]["title"],
        "Ledger v2",
        "the replica that stored the change shows it in its next request"
    );
    let started = std::time::Instant::now();
    loop {
        let title = other.get(by_name).await.body["metadata"]["title"].clone();
        if title == "Ledger v2" {
            break;
        }
        assert_eq!(title, "Ledger", "only the old or the new body");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(1000),
            "the other replica still serves the old body after {:?}",
            started.elapsed()
        );
        tokio::task::yield_now().await;
    }

    delete_through_api(&here, "component", "ledger").await;
    assert_eq!(here.get(by_name).await.status, StatusCode::NOT_FOUND);
}
