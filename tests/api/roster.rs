//! Reading the program's roster: `limit`/`offset` paging that ends, even when the program keeps
//! answering full pages past the end.
use attribution_bridge::flows::roster;

use crate::{doubles::*, helpers::*};

async fn read(n: usize, never_ending: bool) -> (usize, usize, TestApp, ProgramDouble) {
    let program = ProgramDouble::start("gpat_roster", n, never_ending).await;
    let app = spawn_app().await;
    app.send(&install_event_at("st_1", "gpat_roster", &program.api_url()))
        .await;
    let summary = roster::sync(&app.state.deps, &store_id("st_1"))
        .await
        .unwrap();
    let calls = *program.roster.calls.lock().unwrap();
    (summary.affiliates, calls, app, program)
}

#[tokio::test]
async fn rosters_of_every_size_are_read_whole_and_paging_ends() {
    for (n, pages) in [(0, 1), (1, 1), (250, 2), (251, 2), (1000, 5)] {
        let (read, calls, app, _program) = read(n, false).await;
        assert_eq!(read, n, "{n} affiliates");
        assert_eq!(calls, pages, "{n} affiliates: pages requested");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM affiliates WHERE deleted_at IS NULL")
                .await,
            n as i64
        );
    }
}

#[tokio::test]
async fn a_program_that_never_stops_paging_is_read_once() {
    for (n, pages) in [(250, 2), (1000, 5), (251, 2), (500, 3)] {
        let (read, calls, _app, _program) = read(n, true).await;
        assert_eq!(read, n, "{n} affiliates");
        assert_eq!(calls, pages, "{n} affiliates: pages requested");
    }
}

#[tokio::test]
async fn affiliates_the_program_no_longer_has_are_retired() {
    let (_, _, app, program) = read(5, false).await;
    program.roster.people.lock().unwrap().truncate(3);
    let summary = roster::sync(&app.state.deps, &store_id("st_1"))
        .await
        .unwrap();
    assert_eq!((summary.affiliates, summary.removed), (3, 2));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM affiliates WHERE deleted_at IS NOT NULL")
            .await,
        2
    );
}

/// A 2xx answer that holds no roster (`{}`, another key, nothing at all) is not understood: read
/// as "no affiliates" it would retire every one of them.
#[tokio::test]
async fn an_answer_without_a_roster_is_an_error_and_retires_no_one() {
    use wiremock::{Mock, ResponseTemplate, matchers::method};
    for answer in [
        ResponseTemplate::new(200).set_body_json(serde_json::json!({})),
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})),
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"affiliates": null})),
        ResponseTemplate::new(204),
    ] {
        let (_, _, app, program) = read(3, false).await;
        Mock::given(method("GET"))
            .respond_with(answer)
            .with_priority(1)
            .mount(&program.server)
            .await;
        let err = roster::sync(&app.state.deps, &store_id("st_1"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not understood"), "{err}");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM affiliates WHERE deleted_at IS NULL")
                .await,
            3
        );
    }
}

/// An entry without a usable id could be any affiliate: none is retired on that read.
#[tokio::test]
async fn a_roster_with_an_unreadable_entry_retires_no_one() {
    let (_, _, app, program) = read(3, false).await;
    {
        let mut people = program.roster.people.lock().unwrap();
        people.truncate(2);
        people.push(serde_json::json!({"id": null, "name": "Who?"}));
    }
    let summary = roster::sync(&app.state.deps, &store_id("st_1"))
        .await
        .unwrap();
    assert_eq!(
        (summary.affiliates, summary.removed, summary.unreadable),
        (2, 0, 1)
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM affiliates WHERE deleted_at IS NULL")
            .await,
        3
    );
}

#[tokio::test]
async fn a_refused_program_token_is_an_error_not_an_empty_roster() {
    let program = ProgramDouble::start("gpat_right", 3, false).await;
    let app = spawn_app().await;
    app.send(&install_event_at("st_1", "gpat_wrong", &program.api_url()))
        .await;
    app.add_affiliate("st_1", 9, "Known").await;
    let err = roster::sync(&app.state.deps, &store_id("st_1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refused the access token"),
        "{err}"
    );
    // Nothing was retired on the strength of a failed read.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM affiliates WHERE deleted_at IS NULL")
            .await,
        1
    );
}

/// PostgreSQL refuses a NUL in text: a roster whose names carry one is stored with U+FFFD in its
/// place, on both databases, instead of failing the read (and every read after it) for good.
#[tokio::test]
async fn a_nul_in_a_roster_name_is_stored_as_the_replacement_character() {
    let (_, _, app, program) = read(2, false).await;
    {
        let mut people = program.roster.people.lock().unwrap();
        people[0]["name"] = "Ann\u{0}a".into();
        people[1]["ref_code"] = "code\u{0}".into();
    }
    let summary = roster::sync(&app.state.deps, &store_id("st_1"))
        .await
        .unwrap();
    assert_eq!(summary.affiliates, 2);
    let stored =
        attribution_bridge::store::affiliates::list_current(&app.state.deps.db, &store_id("st_1"))
            .await
            .unwrap();
    assert_eq!(stored[0].name, "Ann\u{FFFD}a");
    assert_eq!(stored[1].ref_code.as_deref(), Some("code\u{FFFD}"));
}

/// A roster that lists an affiliate twice (a program paging while its list changes) is read
/// whole, the affiliate once, as first listed (the client keeps the first of an id).
#[tokio::test]
async fn an_affiliate_listed_twice_in_a_roster_is_read_once_as_first_listed() {
    let (_, _, app, program) = read(3, false).await;
    {
        let mut people = program.roster.people.lock().unwrap();
        let mut again = people[0].clone();
        again["name"] = "Listed again".into();
        people.push(again);
    }
    let summary = roster::sync(&app.state.deps, &store_id("st_1"))
        .await
        .unwrap();
    assert_eq!((summary.affiliates, summary.removed), (3, 0));
    let stored =
        attribution_bridge::store::affiliates::list_current(&app.state.deps.db, &store_id("st_1"))
            .await
            .unwrap();
    let names: Vec<_> = stored.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Affiliate 1", "Affiliate 2", "Affiliate 3"]);
}
