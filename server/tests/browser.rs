//! The portal in a real headless Chromium: browse from the home page through search, entity pages and
//! relation links, filter the list, register a location through the form, at desktop and phone sizes.
//! Screenshots go to `target/screenshots/`. Content-Security-Policy violations are reported by the
//! browser to `/csp-report`, which counts them; the test ends by asserting there were none.

mod common;
// The harness lives next to the shared helpers; `common/mod.rs` stays browser-free for other tests.
#[path = "common/browser.rs"]
mod harness;

use common::workspace_root;
use fantoccini::Locator;
use harness::{
    Chromedriver, Portal, console_errors, screenshot, screenshot_element, wait_for, wait_for_url,
};
use sqlx::PgPool;

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn browse_the_portal(pool: PgPool) {
    let workspace = workspace_root();
    let portal = Portal::start(pool, workspace).await;
    let driver = Chromedriver::start().await;
    let client = driver.session().await;

    for (width, height) in [(1280, 800), (375, 812)] {
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let size = format!("{width}");

        // Home → search.
        client.goto(&portal.url("/")).await.expect("home");
        let search = wait_for(&client, "#home-q").await;
        screenshot(&client, workspace, &format!("home-{size}")).await;
        search.send_keys("payments").await.expect("type");
        client
            .find(Locator::Css(".search-form button[type=submit]"))
            .await
            .expect("search button")
            .click()
            .await
            .expect("search");
        wait_for_url(&client, |u| {
            u.path() == "/catalog" && u.query() == Some("q=payments")
        })
        .await;
        wait_for(&client, "a.entity-link").await;
        screenshot(&client, workspace, &format!("search-{size}")).await;

        // Search result → entity page → a relation in the graph.
        client
            .find(Locator::Css(
                "a.entity-link[href='/catalog/default/system/payments']",
            ))
            .await
            .expect("payments system in the results")
            .click()
            .await
            .expect("open system");
        wait_for(&client, "svg.relation-graph a.node").await;
        screenshot(&client, workspace, &format!("system-{size}")).await;
        let graph = wait_for(&client, "section.relations").await;
        screenshot_element(&graph, workspace, &format!("system-graph-{size}")).await;
        client
            .find(Locator::Css(
                "svg.relation-graph a.node[href='/catalog/default/component/payments-gateway']",
            ))
            .await
            .expect("graph node")
            .click()
            .await
            .expect("follow relation");
        wait_for_url(&client, |u| {
            u.path() == "/catalog/default/component/payments-gateway"
        })
        .await;
        wait_for(&client, "a.owner-link").await;
        screenshot(&client, workspace, &format!("component-{size}")).await;

        // Its API, through the relations list.
        client
            .find(Locator::Css(
                ".relation-list a[href='/catalog/default/api/payments-api']",
            ))
            .await
            .expect("provided API")
            .click()
            .await
            .expect("open API");
        let operations = wait_for(&client, "section.api-definition").await;
        wait_for(&client, "table.operations tbody tr").await;
        screenshot_element(&operations, workspace, &format!("api-operations-{size}")).await;

        // A model page with its metric chart.
        client
            .goto(&portal.url("/catalog/default/model/llama-3.1-8b-instruct"))
            .await
            .expect("model");
        wait_for(&client, "svg.metric-chart rect").await;
        screenshot(&client, workspace, &format!("model-{size}")).await;
        let model = wait_for(&client, "section.model").await;
        screenshot_element(&model, workspace, &format!("model-section-{size}")).await;

        // List filters: choose a kind and apply.
        client.goto(&portal.url("/catalog")).await.expect("list");
        let kind = wait_for(&client, "#facet-kind").await;
        kind.select_by_value("Model").await.expect("choose Model");
        client
            .find(Locator::Css(".filter-actions button"))
            .await
            .expect("apply")
            .click()
            .await
            .expect("apply filters");
        wait_for_url(&client, |u| {
            u.query().is_some_and(|q| q.contains("kind=Model"))
        })
        .await;
        wait_for(&client, "a.entity-link").await;
        for cell in client
            .find_all(Locator::Css("td[data-label=Kind]"))
            .await
            .expect("kinds")
        {
            assert_eq!(cell.text().await.expect("text").trim(), "Model");
        }
        screenshot(&client, workspace, &format!("list-models-{size}")).await;

        // Every page so far rendered without a console error.
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "console errors at {size}: {errors:?}");

        // A missing entity: the 404 page. Its own 404 status is the one console error allowed.
        client
            .goto(&portal.url("/catalog/default/component/nope"))
            .await
            .expect("missing");
        wait_for(&client, "main").await;
        screenshot(&client, workspace, &format!("missing-{size}")).await;
        let errors = console_errors(&client).await;
        assert!(
            // Non-empty proves the console is really captured; the 404 is the only thing in it.
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| e.contains("/catalog/default/component/nope") && e.contains("404")),
            "console errors on the 404 page: {errors:?}"
        );
    }

    // Register a location through the form: analyze, then import.
    client.set_window_size(1280, 800).await.expect("size");
    let file = portal.extra_root.path().join("catalog-info.yaml");
    std::fs::write(
        &file,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: browser-registered\n  description: Registered from the browser test\nspec:\n  type: service\n  lifecycle: experimental\n  owner: group:platform-team\n",
    )
    .expect("write catalog file");
    client
        .goto(&portal.url("/catalog/register"))
        .await
        .expect("register");
    wait_for(&client, "input[name=type][value=file]")
        .await
        .click()
        .await
        .expect("file type");
    client
        .find(Locator::Css("#target"))
        .await
        .expect("target")
        .send_keys(&file.display().to_string())
        .await
        .expect("type path");
    client
        .find(Locator::Css("button[value=analyze]"))
        .await
        .expect("analyze")
        .click()
        .await
        .expect("analyze");
    let found = wait_for(&client, ".would-import strong").await;
    assert_eq!(found.text().await.expect("text"), "browser-registered");
    screenshot(&client, workspace, "register-analyzed-1280").await;
    client
        .find(Locator::Css("button[value=import]"))
        .await
        .expect("import")
        .click()
        .await
        .expect("import");
    wait_for(&client, ".success").await;
    portal
        .state
        .catalog
        .process_until_idle()
        .await
        .expect("process");
    client
        .find(Locator::Css("ul.imported a"))
        .await
        .expect("imported link")
        .click()
        .await
        .expect("open imported");
    let title = wait_for(&client, ".entity-header h1").await;
    assert_eq!(title.text().await.expect("title"), "browser-registered");

    // One more navigation so reports sent by earlier pages have arrived.
    client.goto(&portal.url("/")).await.expect("home");
    wait_for(&client, "#home-q").await;
    assert_eq!(
        atrium::ui::csp::report_count(),
        0,
        "the browser reported Content-Security-Policy violations (see the log)"
    );
    // Everything the pages logged since the 404 check: no script errors, no failed loads.
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.expect("close");
}
