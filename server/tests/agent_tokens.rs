//! Agent tokens owned by a group, through the real router: a member makes a token for the group's
//! agent; the agent acts for the group (its tasks and audit events say so); every member sees it on
//! the tokens list and `/agents` and may revoke it; someone outside the group may neither make one
//! for it, see it, nor revoke it; and an agent's name cannot be taken over by another owner.

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use common::authz::{app_with_clusters, count, create_as, id_of};
use serde_json::json;
use sqlx::PgPool;

const PEOPLE: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: ml-team}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {memberOf: [ml-team]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {memberOf: [ml-team]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: carol}
spec: {memberOf: []}
"#;

const GROUP: &str = "group:default/ml-team";

async fn session(app: &TestApp, user: &str) -> String {
    app.state
        .auth
        .sign_in(&format!("user:default/{user}"), None)
        .await
        .expect("session")
}

fn agent_request(agent: &str, owner: Option<&str>) -> serde_json::Value {
    let mut request = json!({
        "name": format!("{agent} token"),
        "scopes": ["catalog:read", "template:run:template:default/x"],
        "expiresInDays": 7,
        "agent": agent,
    });
    if let Some(owner) = owner {
        request["owner"] = json!(owner);
    }
    request
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_groups_agent_acts_for_the_group_and_its_members_manage_it(pool: PgPool) {
    let (app, _fake) = app_with_clusters(pool).await;
    app.add("people.yaml", PEOPLE).await;
    app.entity("user", "carol").await;
    let (alice, bob, carol) = (
        session(&app, "alice").await,
        session(&app, "bob").await,
        session(&app, "carol").await,
    );

    // A member makes the group's agent token; a group's name alone is enough.
    let made = app
        .request_in_session(
            &alice,
            Method::POST,
            "/api/auth/tokens",
            Some(agent_request("model-bot", Some("ml-team"))),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["ownerRef"], GROUP);
    assert_eq!(made.body["createdBy"], "user:default/alice");
    let token = made.body["token"].as_str().expect("token").to_owned();
    let id = made.body["id"].as_str().expect("id").to_owned();

    // The agent acts for the group: as the actor of its task, with the group as the task's user.
    let me = app
        .request_as(&token, Method::GET, "/api/auth/me", None)
        .await;
    assert_eq!(me.body["actor"], "agent:model-bot", "{}", me.body);
    assert_eq!(me.body["userRef"], GROUP);
    let task = id_of(&create_as(&app, &token, "x", json!({"name": "a"})).await);
    let read = app
        .request_as(
            &token,
            Method::GET,
            &format!("/api/scaffolder/v2/tasks/{task}"),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["spec"]["user"]["ref"], GROUP);
    assert_eq!(read.body["createdBy"], "agent:model-bot");
    let created = sqlx::query_scalar::<_, serde_json::Value>(
        "select detail from audit_event where action = 'task.create' and actor = 'agent:model-bot'",
    )
    .fetch_one(&app.state.db)
    .await
    .expect("the task's creation is audited as the agent");
    assert_eq!(created["onBehalfOf"], GROUP);

    // Every member sees it, on the list and on /agents; carol, outside the group, does not.
    for (who, sees) in [(&bob, true), (&carol, false)] {
        let listed = app
            .request_in_session(who, Method::GET, "/api/auth/tokens", None)
            .await;
        assert_eq!(listed.status, StatusCode::OK);
        let ids: Vec<_> = listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| t["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(ids.contains(&id), sees, "{ids:?}");
        let page = app
            .request_in_session(who, Method::GET, "/agents", None)
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.body.as_str().expect("html").to_owned();
        assert_eq!(html.contains("model-bot"), sees, "{html}");
        if sees {
            assert!(
                html.contains(GROUP) && html.contains("task.create"),
                "{html}"
            );
        }
    }

    // Carol may not make a token for a group she is not in (denied and audited), nor take the
    // agent's name for herself, nor revoke the group's token.
    let foreign = app
        .request_in_session(
            &carol,
            Method::POST,
            "/api/auth/tokens",
            Some(agent_request("carol-bot", Some(GROUP))),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.body);
    assert_eq!(count(&app, "token.create", "denied", Some(GROUP)).await, 1);
    let taken = app
        .request_in_session(
            &carol,
            Method::POST,
            "/api/auth/tokens",
            Some(agent_request("model-bot", None)),
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST, "{}", taken.body);
    let message = taken.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("model-bot") && message.contains(GROUP),
        "{message}"
    );
    let revoke = format!("/api/auth/tokens/{id}");
    let refused = app
        .request_in_session(&carol, Method::DELETE, &revoke, None)
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let still = app
        .request_as(&token, Method::GET, "/api/auth/me", None)
        .await;
    assert_eq!(still.status, StatusCode::OK);

    // A group owns only agents' tokens; and an unknown group (here asked for by an admin) is named.
    let personal = app
        .request_in_session(
            &alice,
            Method::POST,
            "/api/auth/tokens",
            Some(json!({"name": "mine", "scopes": ["catalog:read"], "expiresInDays": 1, "owner": GROUP})),
        )
        .await;
    assert_eq!(
        personal.status,
        StatusCode::BAD_REQUEST,
        "{}",
        personal.body
    );
    assert!(
        personal.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("only an agent's token"),
        "{}",
        personal.body
    );
    let unknown = app
        .request(
            Method::POST,
            "/api/auth/tokens",
            Some(agent_request("ghost-bot", Some("group:default/nobody"))),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert!(
        unknown
            .body
            .to_string()
            .contains("no group group:default/nobody"),
        "{}",
        unknown.body
    );

    // Bob, another member, revokes it: the agent is refused at its next request.
    let revoked = app
        .request_in_session(&bob, Method::DELETE, &revoke, None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let after = app
        .request_as(&token, Method::GET, "/api/auth/me", None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}
