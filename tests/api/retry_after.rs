//! `Retry-After` in both of its forms (RFC 9110: delta-seconds and HTTP-date), for Amazon and for
//! the program: honoured by the inline retries and by the job schedule, and a 429 pausing every
//! call of the same caller (the store's program token, the Amazon profile) to that host, not only
//! the request it answered. Waits are measured at the doubles, never slept.
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use attribution_bridge::{
    clients::{
        amazon::{AmazonApp, Region, ads::AmazonError, lwa},
        program::{ProgramApp, ProgramError, orders::RemoteOrder},
    },
    config::Settings,
    store::jobs,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    doubles::*,
    helpers::*,
    sync::{one_order_sync_world, sync_world},
    world::World,
};

/// An HTTP-date `ahead` from now, as an upstream writes it, and the instant it names (whole
/// seconds: up to a second sooner than `ahead`).
fn http_date(ahead: Duration) -> (String, SystemTime) {
    let text = httpdate::fmt_http_date(SystemTime::now() + ahead);
    let at = httpdate::parse_http_date(&text).unwrap();
    (text, at)
}

/// A 429 whose `Retry-After` is `retry_after` (an HTTP-date or delta-seconds).
pub(crate) fn throttled_until(retry_after: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("Retry-After", retry_after)
        .set_body_json(json!({"code": "429", "details": "Too Many Requests"}))
}

/// When each request reached a double, and with which credential (the program's token header or
/// Amazon's profile scope).
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(SystemTime, String)>>>);

impl Arrivals {
    fn record(&self, req: &Request) {
        let who = ["x-goaffpro-access-token", "amazon-advertising-api-scope"]
            .iter()
            .find_map(|h| req.headers.get(*h))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.0.lock().unwrap().push((SystemTime::now(), who));
    }

    /// When the requests made with `who` arrived, in order.
    fn of(&self, who: &str) -> Vec<SystemTime> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(_, w)| w == who)
            .map(|(t, _)| *t)
            .collect()
    }

    fn all(&self) -> Vec<SystemTime> {
        self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
}

/// Another double's answers, with each request's arrival recorded first.
struct Timed<R>(Arrivals, R);

impl<R: Respond> Respond for Timed<R> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.record(req);
        self.1.respond(req)
    }
}

/// Amazon's report answers its next request with a 429 until the HTTP-date `date`.
fn throttle_report(w: &World, date: &str) {
    w.report
        .faults
        .lock()
        .unwrap()
        .push_back(throttled_until(date));
}

/// Puts `inner` in front of POSTs to `route` on `server`, recording when each arrives.
async fn timed(server: &MockServer, route: &str, inner: impl Respond + 'static) -> Arrivals {
    let arrivals = Arrivals::default();
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(Timed(arrivals.clone(), inner))
        .with_priority(1)
        .mount(server)
        .await;
    arrivals
}

/// Answers from a script, in order, then `then` for good; every arrival recorded.
#[derive(Clone)]
pub(crate) struct Script {
    arrivals: Arrivals,
    answers: Arc<Mutex<VecDeque<ResponseTemplate>>>,
    then: ResponseTemplate,
}

impl Script {
    pub(crate) fn new(answers: Vec<ResponseTemplate>, then: ResponseTemplate) -> Self {
        Self {
            arrivals: Arrivals::default(),
            answers: Arc::new(Mutex::new(answers.into())),
            then,
        }
    }
}

impl Respond for Script {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.arrivals.record(req);
        let next = self.answers.lock().unwrap().pop_front();
        next.unwrap_or_else(|| self.then.clone())
    }
}

pub(crate) async fn serve(script: &Script) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(script.clone())
        .mount(&server)
        .await;
    server
}

/// The settings of a deployment talking to nothing but these test doubles.
pub(crate) fn settings(extra: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = [
        ("APP__AMAZON__CLIENT_ID", CLIENT_ID),
        ("APP__AMAZON__CLIENT_SECRET", CLIENT_SECRET),
        ("APP__SANDBOX__ENABLED", "false"),
        (
            "APP__PLATFORM__WEBHOOK_SECRETS",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ),
        ("APP__AMAZON__RETRY_BASE_MS", "1"),
        ("APP__PROGRAM__RETRY_BASE_MS", "1"),
        // The doubles listen on loopback.
        ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "127.0.0.1"),
        ("APP__PROGRAM__MAX_REQUESTS_PER_SEC", "1000"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push(("APP__LOG__LEVEL".into(), "warn".into()));
    Settings::from_sources(None, env).unwrap()
}

fn amazon(settings: &Settings) -> AmazonApp {
    let callback = url::Url::parse("http://127.0.0.1:8080/oauth/amazon/callback").unwrap();
    AmazonApp::from_settings(&settings.amazon, callback, None).unwrap()
}

fn no_sooner_than(arrived: SystemTime, at: SystemTime) {
    assert!(
        arrived >= at,
        "a request came {:?} before the upstream's Retry-After",
        at.duration_since(arrived).unwrap_or_default()
    );
}

fn sooner_than(arrived: SystemTime, at: SystemTime) {
    assert!(arrived < at, "this call was held until the pause ended");
}

#[tokio::test]
async fn a_report_throttled_until_an_http_date_is_read_again_at_that_date_and_the_sync_finishes() {
    let w = sync_world(1)
        // The inline retry may wait up to 10 s (the default): a few seconds are honoured.
        .setting("APP__AMAZON__RETRY_CAP_MS", "10000")
        .sales("20261101", &[(1, "10.00")])
        .connected()
        .await;
    let arrivals = timed(&w.amazon.server, "/attribution/report", w.report.clone()).await;
    let (date, at) = http_date(Duration::from_secs(2));
    throttle_report(&w, &date);

    let started = Instant::now();
    w.sync_now().await;
    let took = started.elapsed();

    let [throttled, read] = arrivals.all()[..] else {
        panic!("two report requests, not {}", arrivals.all().len());
    };
    sooner_than(throttled, at);
    no_sooner_than(read, at);
    assert!(took < Duration::from_secs(5), "done at the date: {took:?}");
    w.app.assert_rows("sync_runs WHERE status = 'ok'", 1).await;
    w.app
        .assert_rows("jobs WHERE status NOT IN ('done', 'cancelled')", 0)
        .await;
    assert_eq!(w.orders.count(), 1);
}

#[tokio::test]
async fn a_report_throttled_beyond_the_inline_cap_is_run_again_by_the_schedule_at_that_date() {
    // The world's inline cap is 20 ms: two minutes are the job schedule's to wait.
    let w = one_order_sync_world().connected().await;
    let (date, at) = http_date(Duration::from_secs(120));
    throttle_report(&w, &date);
    let sent = SystemTime::now();
    w.sync_now().await;
    let done = SystemTime::now();
    let waiting = jobs::waiting(&w.app.state.deps.db, &store_id("st_1"), None, None)
        .await
        .unwrap();
    let [job] = waiting.as_slice() else {
        panic!("the sync waits, alone: {}", waiting.len());
    };
    assert_eq!(job.kind, "sync_store");
    run_again_at(job, &w, at, (sent, done));
    assert_eq!(
        w.report.bodies.lock().unwrap().len(),
        0,
        "asked once, not again early"
    );
    w.app.clock.advance(chrono::Duration::seconds(121));
    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 1);
}

/// Asserts that `job` runs again (on the injected clock) as long after now as the upstream's
/// date `at` was ahead of the real clock when its answer came, between `sent` and `done`.
fn run_again_at(
    job: &jobs::Job,
    w: &crate::world::World,
    at: SystemTime,
    (sent, done): (SystemTime, SystemTime),
) {
    let scheduled = (job.run_at - w.app.clock_now()).to_std().unwrap();
    let soonest = at.duration_since(done).unwrap();
    let latest = at.duration_since(sent).unwrap();
    let slack = Duration::from_millis(1);
    assert!(
        scheduled + slack >= soonest && scheduled <= latest + slack,
        "run again at the date: in {scheduled:?}, not within {soonest:?}..{latest:?}"
    );
}

/// The one push job the store has waiting.
async fn waiting_push(w: &crate::world::World) -> jobs::Job {
    let waiting = jobs::waiting(&w.app.state.deps.db, &store_id("st_1"), None, None)
        .await
        .unwrap();
    let [job] = waiting.as_slice() else {
        panic!("one job waits, not {}", waiting.len());
    };
    assert_eq!(job.kind, "push_order");
    job.clone()
}

#[tokio::test]
async fn a_create_and_an_update_throttled_until_an_http_date_run_again_at_that_date_within_the_schedule()
 {
    let w = one_order_sync_world().connected().await;
    // The create: asked to come back in two minutes (more than the floor and the first wait).
    let (date, at) = http_date(Duration::from_secs(120));
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((throttled_until(&date), false));
    let sent = SystemTime::now();
    w.sync_now().await;
    let done = SystemTime::now();
    assert_eq!(w.orders.count(), 0);
    let job = waiting_push(&w).await;
    run_again_at(&job, &w, at, (sent, done));
    assert!(job.last_error.as_deref().unwrap().contains("429"));
    w.app.clock.advance(chrono::Duration::seconds(118));
    assert_eq!(w.app.run_due_jobs().await, 0, "not before the date");
    w.app.clock.advance(chrono::Duration::seconds(3));
    assert_eq!(w.app.run_due_jobs().await, 1);
    assert_eq!(w.orders.count(), 1);

    // The update: asked to come back in two hours, beyond the schedule's longest wait (30 min).
    *w.report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "20.00")];
    let (date, _) = http_date(Duration::from_secs(7200));
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((throttled_until(&date), false));
    w.sync_now().await;
    assert_eq!(w.orders.patches(), 0);
    let job = waiting_push(&w).await;
    assert_eq!(
        job.run_at - w.app.clock_now(),
        chrono::Duration::seconds(1800),
        "clamped to the schedule's longest wait"
    );
    w.app.clock.advance(chrono::Duration::seconds(1800));
    assert_eq!(w.app.run_due_jobs().await, 1);
    assert_eq!(w.orders.patches(), 1);
    let attempts = w
        .app
        .count("SELECT COUNT(*) FROM job_attempts WHERE http_status = 429")
        .await;
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn a_throttled_push_is_sent_again_at_the_date_and_holds_the_next_push_of_the_same_store() {
    let w = sync_world(2)
        // The pause may last as long as a few seconds.
        .setting("APP__PROGRAM__RETRY_CAP_MS", "10000")
        .sales("20261101", &[(1, "10.00"), (2, "10.00")])
        .connected()
        .await;
    let arrivals = timed(&w.program.server, "/v1/admin/orders", w.orders.clone()).await;
    let (date, at) = http_date(Duration::from_secs(2));
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((throttled_until(&date), false));
    // The sync, then both pushes: the first is throttled and sent again within its run at the
    // date (within the cap); the second waits for the same pause.
    w.sync_now().await;
    let [throttled, again, next] = arrivals.of("gpat_prog")[..] else {
        panic!("three creates, not {}", arrivals.all().len());
    };
    sooner_than(throttled, at);
    no_sooner_than(again, at);
    no_sooner_than(next, at);
    assert_eq!(w.orders.count(), 2);
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'done'", 2)
        .await;
}

/// An order created; the same answer, read as a roster, holds none (this double answers every
/// call alike).
pub(crate) fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"order": {"id": 1}, "affiliates": []}))
}

pub(crate) fn new_order(number: &str) -> attribution_bridge::clients::program::orders::NewOrder {
    use attribution_bridge::clients::program::orders::{NewOrder, OrderMeta, amount};
    NewOrder {
        number: number.to_owned(),
        affiliate_id: 1,
        total: amount(1000, 2),
        subtotal: amount(1000, 2),
        commission: amount(100, 2),
        currency: "USD".into(),
        date: "2026-11-01".into(),
        status: "approved".into(),
        source: "amazon_attribution",
        meta: OrderMeta {
            clicks: 1,
            purchases: 1,
            units: 1,
        },
    }
}

#[tokio::test]
async fn a_429_pauses_the_same_token_at_the_same_host_and_no_one_else() {
    let (date, at) = http_date(Duration::from_secs(2));
    let program = Script::new(vec![throttled_until(&date)], created());
    let server = serve(&program).await;
    let elsewhere = Script::new(vec![], created());
    let other_host = serve(&elsewhere).await;
    // One try per call: the 429 is handed back rather than waited out inline.
    let app = ProgramApp::from_settings(
        &settings(&[
            ("APP__PROGRAM__RETRY_CAP_MS", "10000"),
            ("APP__PROGRAM__RETRY_ATTEMPTS", "1"),
        ])
        .program,
    )
    .unwrap();
    let api = format!("{}/v1", server.uri());
    let other_api = format!("{}/v1", other_host.uri());
    let client = |api: &str, token: &str| {
        app.client_once(Some(api), SecretString::from(token.to_owned()))
            .unwrap()
    };

    let err = client(&api, "gpat_a")
        .create_order(&new_order("AMZ-1"), 2)
        .await
        .unwrap_err();
    let ProgramError::Throttled {
        retry_after: Some(after),
    } = err
    else {
        panic!("{err}");
    };
    assert!(after <= Duration::from_secs(2), "{after:?}");

    // Then, together: the same store's next order and its roster; another store's order at the
    // same host; the same token at another host.
    let same = client(&api, "gpat_a");
    let other_store = client(&api, "gpat_b");
    let other_host_client = client(&other_api, "gpat_a");
    let orders = [new_order("AMZ-2"), new_order("AMZ-3"), new_order("AMZ-4")];
    let (a, roster, b, c) = tokio::join!(
        same.create_order(&orders[0], 2),
        same.affiliates(),
        other_store.create_order(&orders[1], 2),
        other_host_client.create_order(&orders[2], 2),
    );
    for r in [a, b, c] {
        assert_eq!(r.unwrap(), remote_one());
    }
    roster.unwrap();

    let same_token = program.arrivals.of("gpat_a");
    assert_eq!(same_token.len(), 3, "the 429, the order and the roster");
    for arrived in &same_token[1..] {
        no_sooner_than(*arrived, at);
    }
    sooner_than(program.arrivals.of("gpat_b")[0], at);
    sooner_than(elsewhere.arrivals.of("gpat_a")[0], at);
}

fn remote_one() -> RemoteOrder {
    RemoteOrder {
        id: "1".into(),
        total_minor: None,
        commission_minor: None,
        status: None,
    }
}

/// An Ads API whose first answer is a 429 until an HTTP-date `ahead_secs` from now, then empty
/// report pages; and a client of it with `cap_ms` as its inline cap. Returns the script, its
/// server (alive while held), the client and the instant the date names.
async fn throttled_ads(
    ahead_secs: u64,
    cap_ms: &str,
    extra: &[(&str, &str)],
) -> (Script, MockServer, AmazonApp, SystemTime) {
    let (date, at) = http_date(Duration::from_secs(ahead_secs));
    let script = Script::new(vec![throttled_until(&date)], report_page());
    let server = serve(&script).await;
    let uri = server.uri();
    let mut env = vec![
        ("APP__AMAZON__API_URL", uri.as_str()),
        ("APP__AMAZON__RETRY_CAP_MS", cap_ms),
    ];
    env.extend_from_slice(extra);
    let app = amazon(&settings(&env));
    (script, server, app, at)
}

fn report_page() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"reports": [], "cursorId": "", "size": 0}))
}

#[tokio::test]
async fn a_429_pauses_the_amazon_profile_not_other_profiles() {
    let (script, _server, app, at) =
        throttled_ads(2, "10000", &[("APP__AMAZON__RETRY_ATTEMPTS", "1")]).await;
    let ads = app.ads(Region::Na);
    let token = SecretString::from("Atza|t".to_owned());
    let body = json!({"reportType": "PERFORMANCE"});

    let err = ads.report_page(&token, "111", &body).await.unwrap_err();
    assert!(
        matches!(err, AmazonError::Throttled { retry_after: Some(after) } if after <= Duration::from_secs(2)),
        "{err}"
    );
    let (same, other) = tokio::join!(
        ads.report_page(&token, "111", &body),
        ads.report_page(&token, "222", &body),
    );
    same.unwrap();
    other.unwrap();
    let profile = script.arrivals.of("111");
    assert_eq!(profile.len(), 2);
    no_sooner_than(profile[1], at);
    sooner_than(script.arrivals.of("222")[0], at);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_handed_back_not_sent_early() {
    let (script, _server, app, at) = throttled_ads(30, "1000", &[]).await;
    let token = SecretString::from("Atza|t".to_owned());
    let started = Instant::now();
    let err = app
        .ads(Region::Na)
        .report_page(&token, "111", &json!({}))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    let AmazonError::Throttled {
        retry_after: Some(after),
    } = err
    else {
        panic!("{err}");
    };
    assert!(
        after > Duration::from_secs(28),
        "the whole wait, for the job schedule: {after:?}"
    );
    assert_eq!(script.arrivals.all().len(), 1);
    sooner_than(SystemTime::now(), at);
    // The profile's next call waits out the pause, which is clamped to the cap: 1 s.
    let started = Instant::now();
    app.ads(Region::Na)
        .report_page(&token, "111", &json!({}))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn delta_seconds_are_honoured_by_the_inline_retries_too() {
    let script = Script::new(
        vec![ResponseTemplate::new(429).insert_header("Retry-After", "1")],
        report_page(),
    );
    let server = serve(&script).await;
    let uri = server.uri();
    let settings = settings(&[
        ("APP__AMAZON__API_URL", uri.as_str()),
        ("APP__AMAZON__RETRY_CAP_MS", "5000"),
    ]);
    let app = amazon(&settings);
    let token = SecretString::from("Atza|t".to_owned());
    app.ads(Region::Na)
        .report_page(&token, "111", &json!({}))
        .await
        .unwrap();
    let [first, second] = script.arrivals.all()[..] else {
        panic!("two requests");
    };
    let gap = second.duration_since(first).unwrap();
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(3),
        "{gap:?}"
    );
}

#[tokio::test]
async fn login_with_amazon_honours_an_http_date_too() {
    let (date, at) = http_date(Duration::from_secs(2));
    let script = Script::new(
        vec![
            ResponseTemplate::new(429)
                .insert_header("Retry-After", date.as_str())
                .set_body_json(json!({"error": "TooManyRequests"})),
        ],
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "Atza|new", "refresh_token": "Atzr|r", "expires_in": 3600}),
        ),
    );
    let server = serve(&script).await;
    let settings = settings(&[("APP__AMAZON__RETRY_CAP_MS", "10000")]);
    let app = amazon(&settings);
    let token_url = url::Url::parse(&format!("{}/auth/o2/token", server.uri())).unwrap();
    let grant = lwa::refresh(&app, &token_url, &SecretString::from("Atzr|r".to_owned()))
        .await
        .unwrap();
    assert_eq!(grant.expires_in, 3600);
    let [throttled, granted] = script.arrivals.all()[..] else {
        panic!("two token requests");
    };
    sooner_than(throttled, at);
    no_sooner_than(granted, at);
}

/// The roster read (inline retries) honours the date form as well.
#[tokio::test]
async fn a_roster_read_waits_until_the_http_date() {
    let (date, at) = http_date(Duration::from_secs(2));
    let script = Script::new(
        vec![throttled_until(&date)],
        ResponseTemplate::new(200).set_body_json(json!({"affiliates": []})),
    );
    let server = serve(&script).await;
    let app =
        ProgramApp::from_settings(&settings(&[("APP__PROGRAM__RETRY_CAP_MS", "10000")]).program)
            .unwrap();
    let client = app
        .client(
            Some(&format!("{}/v1", server.uri())),
            SecretString::from("gpat_a".to_owned()),
        )
        .unwrap();
    assert!(client.affiliates().await.unwrap().is_empty());
    let [throttled, read] = script.arrivals.all()[..] else {
        panic!("two roster requests");
    };
    sooner_than(throttled, at);
    no_sooner_than(read, at);
}
