//! Hostile input (issue 10): property-based fuzzing of the signature check, the webhook payloads,
//! the load link's query, Amazon's report pages and the program's answers. Parsers are fuzzed in
//! process (`parsers`); the webhook receiver and the load link over HTTP against the real app;
//! the program's answers through the real program client against a double that answers anything.
//!
//! Each group prints one line: `fuzz: <group>: N cases, 0 panics, … seed S`. `FUZZ_CASES` sets
//! the number of cases of every group (a long run), `FUZZ_SEED` replays a run; failures found are
//! also kept in `proptest-regressions/` and replayed first.
mod hostile;
mod parsers;

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    fmt::Debug,
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, Instant},
};

use attribution_bridge::{
    clients::program::{
        ProgramApp, ProgramError,
        orders::{NewOrder, OrderMeta, amount},
    },
    config::Settings,
};
use proptest::{
    prelude::*,
    sample::Index,
    test_runner::{Config, RngAlgorithm, TestCaseResult, TestError, TestRng, TestRunner},
};
use reqwest::header::HeaderValue;
use sea_orm::EntityTrait;
use secrecy::SecretString;
use serde_json::json;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any as any_request};

use crate::helpers::*;
use hostile::*;

/// What one group's cases came to.
#[derive(Default)]
pub struct Tally {
    cases: Cell<u64>,
    panics: Cell<u64>,
    unexpected_5xx: Cell<u64>,
    stored: Cell<u64>,
    /// How the cases ended, by outcome: shows which branches the inputs reached.
    outcomes: RefCell<BTreeMap<String, u64>>,
}

impl Tally {
    /// Counts one case's outcome (a status, a parse result).
    pub fn saw(&self, outcome: impl Into<String>) {
        *self
            .outcomes
            .borrow_mut()
            .entry(outcome.into())
            .or_default() += 1;
    }
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A parser called in process.
    Parser,
    /// Requests to the running app.
    Http,
}

/// `f`'s result, or a failed case (counted) if it panicked.
pub fn no_panic<T>(tally: &Tally, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        bump(&tally.panics);
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        TestCaseError::fail(format!("panicked: {msg}"))
    })
}

fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    let raw = raw.trim().replace(['_', ','], "");
    match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => raw.parse().ok(),
    }
}

/// Runs `default_cases` cases of `test` (or `FUZZ_CASES`), from `FUZZ_SEED` or a fresh seed, and
/// prints the group's line. A failure is shrunk to a minimal input and fails the test.
pub fn run<S: Strategy>(
    group: &str,
    kind: Kind,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value, &Tally) -> TestCaseResult,
) where
    S::Value: Debug,
{
    let cases =
        env_u64("FUZZ_CASES").map_or(default_cases, |n| n.clamp(1, u64::from(u32::MAX)) as u32);
    let seed = env_u64("FUZZ_SEED").unwrap_or_else(rand::random);
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    let config = Config {
        cases,
        source_file: Some(file!()),
        max_shrink_iters: 512,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let tally = Tally::default();
    let started = Instant::now();
    let result = runner.run(&strategy, |value| {
        bump(&tally.cases);
        test(value, &tally)
    });
    let mut line = format!(
        "fuzz: {group}: {} cases, {} panics",
        thousands(tally.cases.get()),
        thousands(tally.panics.get())
    );
    if kind == Kind::Http {
        line.push_str(&format!(
            ", {} unexpected 5xx, {} stored from unsigned input",
            tally.unexpected_5xx.get(),
            tally.stored.get()
        ));
    }
    let outcomes = tally.outcomes.borrow();
    if !outcomes.is_empty() {
        let list: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
        line.push_str(&format!(" [{}]", list.join(", ")));
    }
    line.push_str(&format!(
        " ({:.1}s, seed {seed}: FUZZ_SEED={seed} to replay)",
        started.elapsed().as_secs_f64()
    ));
    match result {
        Ok(()) => eprintln!("{line}"),
        Err(TestError::Abort(why)) => panic!("{line}\nfuzz: {group}: aborted: {why}"),
        Err(TestError::Fail(why, input)) => panic!(
            "{line}\nfuzz: {group}: FAILED (cases counted include shrinking): {why}\nminimal input: {input:#?}"
        ),
    }
}

/// A runtime of its own for a group of requests: proptest calls the test synchronously.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A client with no cookies (the fuzzer's requests must not ride the merchant's session) that
/// does not follow redirects.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Every row unsigned input could have written.
#[derive(PartialEq)]
struct Snapshot {
    stores: Vec<entity::stores::Model>,
    affiliates: Vec<entity::affiliates::Model>,
    credentials: Vec<entity::program_credentials::Model>,
    inbox: Vec<entity::webhook_inbox::Model>,
    sessions: Vec<entity::sessions::Model>,
    jobs: Vec<entity::jobs::Model>,
}

impl Snapshot {
    async fn of(app: &TestApp) -> Self {
        let db = &app.state.deps.db;
        Self {
            stores: entity::stores::Entity::find().all(db).await.unwrap(),
            affiliates: entity::affiliates::Entity::find().all(db).await.unwrap(),
            credentials: entity::program_credentials::Entity::find()
                .all(db)
                .await
                .unwrap(),
            inbox: entity::webhook_inbox::Entity::find().all(db).await.unwrap(),
            sessions: entity::sessions::Entity::find().all(db).await.unwrap(),
            jobs: entity::jobs::Entity::find().all(db).await.unwrap(),
        }
    }

    /// The tables that differ.
    fn changed(&self, other: &Self) -> Vec<&'static str> {
        [
            ("stores", self.stores == other.stores),
            ("affiliates", self.affiliates == other.affiliates),
            ("program_credentials", self.credentials == other.credentials),
            ("webhook_inbox", self.inbox == other.inbox),
            ("sessions", self.sessions == other.sessions),
            ("jobs", self.jobs == other.jobs),
        ]
        .into_iter()
        .filter_map(|(t, same)| (!same).then_some(t))
        .collect()
    }
}

/// Counts the answer's status: any 5xx fails the case. The one 5xx the service documents is 503
/// on a database failure (README, "Webhooks: what the service answers"), and the database is up
/// here: a 503 would be input taken for an outage, retried by the platform forever.
fn check_status(tally: &Tally, status: u16, what: &str) -> TestCaseResult {
    if status >= 500 {
        bump(&tally.unexpected_5xx);
        return Err(TestCaseError::fail(format!("{what} answered {status}")));
    }
    Ok(())
}

/// Fails the case (counted) if unsigned input changed any row.
fn check_unchanged(
    tally: &Tally,
    before: &Snapshot,
    after: &Snapshot,
    what: &str,
) -> TestCaseResult {
    let changed = before.changed(after);
    if !changed.is_empty() {
        bump(&tally.stored);
        return Err(TestCaseError::fail(format!("{what} changed {changed:?}")));
    }
    Ok(())
}

/// Header bytes as they may arrive: visible ASCII, obs-text (not UTF-8), or hostile text that is
/// a valid header value.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => "[ -~]{0,80}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(
            prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff],
            0..80
        ),
        1 => hostile_string()
            .prop_map(String::into_bytes)
            .prop_filter("a header value", |b| HeaderValue::from_bytes(b).is_ok()),
    ]
}

/// How a delivery's signature header is made.
#[derive(Debug, Clone)]
enum Forgery {
    /// Random bytes.
    Random(Vec<u8>),
    /// A valid signature of another body.
    OtherBody,
    /// Made with a secret the app does not know.
    WrongSecret,
    /// A valid signature, one base64 character changed.
    Corrupted(Index, char),
    /// A valid signature of a timestamp outside the tolerance, which is the one sent.
    Stale(i64),
    /// A valid signature of another `webhook-id` than the one sent.
    OtherId,
}

fn forgery() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        2 => header_bytes().prop_map(Forgery::Random),
        1 => Just(Forgery::OtherBody),
        1 => Just(Forgery::WrongSecret),
        1 => (any::<Index>(), "[A-Za-z0-9+/]").prop_map(|(i, c)| Forgery::Corrupted(i, c.chars().next().unwrap())),
        1 => prop_oneof![301i64..100_000, -100_000i64..-300].prop_map(Forgery::Stale),
        1 => Just(Forgery::OtherId),
    ]
}

/// An unsigned delivery: the three headers (each may be absent or mangled) and a body.
#[derive(Debug, Clone)]
struct Unsigned {
    id: Option<Vec<u8>>,
    timestamp: Option<Vec<u8>>,
    forgery: Option<Forgery>,
    body: Vec<u8>,
}

fn unsigned() -> impl Strategy<Value = Unsigned> {
    (
        proptest::option::weighted(
            0.9,
            prop_oneof![
                "msg_[A-Za-z0-9]{1,20}".prop_map(String::into_bytes),
                header_bytes()
            ],
        ),
        proptest::option::weighted(
            0.9,
            prop_oneof![
                Just(Vec::new()),
                header_bytes(),
                numberish().prop_map(String::into_bytes)
            ],
        ),
        proptest::option::weighted(0.9, forgery()),
        prop_oneof![
            30 => webhook_body("st_1"),
            // Over `webhook_body_limit_bytes` (256 KiB).
            1 => (262_145usize..300_000).prop_map(|n| vec![b'{'; n]),
        ],
    )
        .prop_map(|(id, timestamp, forgery, body)| Unsigned {
            id,
            timestamp,
            forgery,
            body,
        })
}

async fn post_webhook(
    client: &reqwest::Client,
    app: &TestApp,
    headers: [(&str, Option<&[u8]>); 3],
    body: Vec<u8>,
) -> Result<reqwest::Response, String> {
    let mut req = client
        .post(app.url("/webhooks/platform"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        if let Some(v) = value {
            req = req.header(name, HeaderValue::from_bytes(v).map_err(|e| e.to_string())?);
        }
    }
    req.body(body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))
}

#[test]
fn fuzz_unsigned_webhooks_over_http() {
    let rt = runtime();
    let app = rt.block_on(async {
        let app = app_with_store("st_1", "gpat_t", &[(42, "Alice")]).await;
        app.open_store("st_1").await;
        app
    });
    let client = bare_client();
    run(
        "unsigned webhooks (HTTP)",
        Kind::Http,
        256,
        unsigned(),
        |case, tally| {
            rt.block_on(async {
                let now = app.now().to_string();
                let id = case.id.clone();
                // A timestamp header that is no valid one, or now: either way the signature fails.
                let ts = case.timestamp.clone();
                let id_text =
                    String::from_utf8_lossy(id.as_deref().unwrap_or(b"msg_x")).into_owned();
                let ts_text = ts
                    .as_deref()
                    .map_or(now.clone(), |t| String::from_utf8_lossy(t).into_owned());
                let sign = |id: &str, ts: &str, body: &[u8]| app.sign(id, ts, body);
                let (ts, sig): (Option<Vec<u8>>, Option<Vec<u8>>) = match &case.forgery {
                    None => (ts, None),
                    Some(Forgery::Random(b)) => (ts, Some(b.clone())),
                    Some(Forgery::OtherBody) => {
                        let mut other = case.body.clone();
                        other.push(b' ');
                        (ts, Some(sign(&id_text, &ts_text, &other).into_bytes()))
                    }
                    Some(Forgery::WrongSecret) => {
                        let other = attribution_bridge::webhooks::verify::Verifier::new(
                            &[SecretString::from(random_secret())],
                            300,
                        )
                        .unwrap();
                        let sig = other.sign(&[id_text.as_bytes(), ts_text.as_bytes(), &case.body]);
                        (ts, Some(sig.into_bytes()))
                    }
                    Some(Forgery::Corrupted(i, c)) => {
                        let good = sign(&id_text, &ts_text, &case.body);
                        let mut chars: Vec<char> = good.chars().collect();
                        let at = 3 + i.index(chars.len() - 4);
                        if chars[at] == *c {
                            chars[at] = if *c == 'A' { 'B' } else { 'A' };
                        }
                        (ts, Some(chars.into_iter().collect::<String>().into_bytes()))
                    }
                    Some(Forgery::Stale(by)) => {
                        let stale = (app.now() + by).to_string();
                        let sig = sign(&id_text, &stale, &case.body);
                        (Some(stale.into_bytes()), Some(sig.into_bytes()))
                    }
                    Some(Forgery::OtherId) => {
                        let sig = sign(&format!("{id_text}x"), &ts_text, &case.body);
                        (
                            ts.or(Some(now.clone().into_bytes())),
                            Some(sig.into_bytes()),
                        )
                    }
                };
                let before = Snapshot::of(&app).await;
                let res = post_webhook(
                    &client,
                    &app,
                    [
                        ("webhook-id", id.as_deref()),
                        ("webhook-timestamp", ts.as_deref()),
                        ("webhook-signature", sig.as_deref()),
                    ],
                    case.body.clone(),
                )
                .await;
                let res = match res {
                    Ok(res) => res,
                    Err(e) => {
                        bump(&tally.panics);
                        return Err(TestCaseError::fail(e));
                    }
                };
                let status = res.status().as_u16();
                tally.saw(status.to_string());
                let what = format!(
                    "an unsigned webhook {:?}",
                    String::from_utf8_lossy(&case.body)
                );
                check_status(tally, status, &what)?;
                check_unchanged(tally, &before, &Snapshot::of(&app).await, &what)?;
                prop_assert!(
                    matches!(status, 401 | 413),
                    "an unsigned webhook answered {}: {}",
                    status,
                    res.text().await.unwrap_or_default()
                );
                Ok(())
            })
        },
    );
    rt.block_on(async move { drop(app) });
}

#[test]
fn fuzz_signed_hostile_payloads_over_http() {
    let rt = runtime();
    let app = rt.block_on(async {
        let app = app_with_store("st_1", "gpat_t", &[(42, "Alice")]).await;
        app.open_store("st_1").await;
        app
    });
    let client = bare_client();
    let body = prop_oneof![3 => webhook_body("st_1"), 1 => webhook_body("st_2")];
    run(
        "signed hostile payloads (HTTP)",
        Kind::Http,
        256,
        // Ids repeat now and then: a redelivery must be a duplicate, whatever it carries.
        ((0u32..200).prop_map(|n| format!("msg_fuzz_{n}")), body),
        |(id, body), tally| {
            rt.block_on(async {
                let ts = app.now().to_string();
                let sig = app.sign(&id, &ts, &body);
                let before = Snapshot::of(&app).await;
                let res = post_webhook(
                    &client,
                    &app,
                    [
                        ("webhook-id", Some(id.as_bytes())),
                        ("webhook-timestamp", Some(ts.as_bytes())),
                        ("webhook-signature", Some(sig.as_bytes())),
                    ],
                    body.clone(),
                )
                .await;
                let res = match res {
                    Ok(res) => res,
                    Err(e) => {
                        bump(&tally.panics);
                        return Err(TestCaseError::fail(e));
                    }
                };
                let status = res.status().as_u16();
                let what = format!("a signed webhook {:?}", String::from_utf8_lossy(&body));
                check_status(tally, status, &what)?;
                let text = res.text().await.unwrap_or_default();
                tally.saw(match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) if status == 200 => {
                        format!("200 {}", v["status"].as_str().unwrap_or("?"))
                    }
                    _ => status.to_string(),
                });
                let after = Snapshot::of(&app).await;
                match status {
                    // Malformed: nothing changed. A redelivery: nothing redone.
                    400 => prop_assert!(
                        before.changed(&after).is_empty(),
                        "{} was refused but changed {:?}",
                        what,
                        before.changed(&after)
                    ),
                    200 if text.contains("duplicate") => {
                        prop_assert!(
                            before.changed(&after).is_empty(),
                            "{} was a duplicate but changed {:?}",
                            what,
                            before.changed(&after)
                        );
                    }
                    // Processed or ignored: recorded in the inbox, in the same transaction.
                    200 => prop_assert_eq!(
                        after.inbox.len(),
                        before.inbox.len() + 1,
                        "{}: {}",
                        what,
                        text
                    ),
                    other => prop_assert!(false, "{} answered {}: {}", what, other, text),
                }
                Ok(())
            })
        },
    );
    rt.block_on(async move { drop(app) });
}

/// A load link's query, as the fuzzer makes it.
#[derive(Debug, Clone)]
enum LoadQuery {
    /// Any text after `?`: pairs of any keys and values, escapes good and bad, repeats.
    Raw(Vec<(String, String, bool)>),
    /// The three parameters, the signature made as `how` says.
    Structured {
        store: String,
        ts_offset: Option<i64>,
        ts_raw: String,
        how: LinkSig,
    },
}

#[derive(Debug, Clone)]
enum LinkSig {
    /// Signed by the app's secret: a real link (allowed to open a session when fresh).
    Valid,
    ForOtherStore,
    WrongSecret,
    Corrupted(Index),
    Random(String),
}

fn load_query() -> impl Strategy<Value = LoadQuery> {
    let key = prop_oneof![
        3 => proptest::sample::select(vec!["store_id", "timestamp", "signature"]).prop_map(str::to_owned),
        1 => hostile_string(),
    ];
    let value = prop_oneof![
        hostile_string(),
        "%[0-9A-Za-z]{0,2}[ -~]{0,10}",
        Just("%FF%FE".to_owned()),
        Just("v1,".to_owned()),
    ];
    let how = prop_oneof![
        2 => Just(LinkSig::Valid),
        1 => Just(LinkSig::ForOtherStore),
        1 => Just(LinkSig::WrongSecret),
        1 => any::<Index>().prop_map(LinkSig::Corrupted),
        2 => prop_oneof![hostile_string(), "v1,[A-Za-z0-9+/=]{0,50}"].prop_map(LinkSig::Random),
    ];
    prop_oneof![
        1 => proptest::collection::vec((key, value, any::<bool>()), 0..6).prop_map(LoadQuery::Raw),
        2 => (
            prop_oneof![
                3 => proptest::sample::select(vec!["st_1", "st_2", "st_gone"]).prop_map(str::to_owned),
                1 => hostile_string(),
            ],
            proptest::option::weighted(0.8, prop_oneof![-400i64..=400, any::<i64>()]),
            prop_oneof![numberish(), hostile_string()],
            how,
        )
            .prop_map(|(store, ts_offset, ts_raw, how)| LoadQuery::Structured { store, ts_offset, ts_raw, how }),
    ]
}

#[test]
fn fuzz_load_link_queries_over_http() {
    let rt = runtime();
    let app = rt.block_on(async {
        let app = app_with_store("st_1", "gpat_t", &[]).await;
        app.install("st_gone", "gpat_t").await;
        app.send(&store_event("app.uninstalled", "st_gone")).await;
        app
    });
    let client = bare_client();
    let cookie = proptest::option::weighted(
        0.2,
        prop_oneof!["ab_session=[ -~&&[^;]]{0,80}", "[ -~]{0,80}"],
    );
    run(
        "load link queries (HTTP)",
        Kind::Http,
        256,
        (load_query(), cookie),
        |(query, cookie), tally| {
            rt.block_on(async {
                let mut url = url::Url::parse(&app.url("/app/load")).unwrap();
                let signed_fresh = match &query {
                    LoadQuery::Raw(pairs) => {
                        let mut text = String::new();
                        for (i, (k, v, encode)) in pairs.iter().enumerate() {
                            if i > 0 {
                                text.push('&');
                            }
                            if *encode {
                                text.push_str(
                                    &url::form_urlencoded::Serializer::new(String::new())
                                        .append_pair(k, v)
                                        .finish(),
                                );
                            } else {
                                text.push_str(&format!("{k}={v}"));
                            }
                        }
                        url.set_query(Some(&text));
                        false
                    }
                    LoadQuery::Structured {
                        store,
                        ts_offset,
                        ts_raw,
                        how,
                    } => {
                        let ts = ts_offset
                            .map_or(ts_raw.clone(), |d| app.now().saturating_add(d).to_string());
                        let fresh = ts_offset.is_some_and(|d| d.abs() <= 300);
                        let valid = app.signer.sign(&[store.as_bytes(), ts.as_bytes()]);
                        let sig = match how {
                            LinkSig::Valid => valid.clone(),
                            LinkSig::ForOtherStore => app
                                .signer
                                .sign(&[format!("{store}x").as_bytes(), ts.as_bytes()]),
                            LinkSig::WrongSecret => {
                                attribution_bridge::webhooks::verify::Verifier::new(
                                    &[SecretString::from(random_secret())],
                                    300,
                                )
                                .unwrap()
                                .sign(&[store.as_bytes(), ts.as_bytes()])
                            }
                            LinkSig::Corrupted(i) => {
                                let mut chars: Vec<char> = valid.chars().collect();
                                let at = 3 + i.index(chars.len() - 4);
                                chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
                                chars.into_iter().collect()
                            }
                            LinkSig::Random(s) => s.clone(),
                        };
                        url.query_pairs_mut()
                            .append_pair("store_id", store)
                            .append_pair("timestamp", &ts)
                            .append_pair("signature", &sig);
                        matches!(how, LinkSig::Valid) && fresh
                    }
                };
                let before = Snapshot::of(&app).await;
                let mut req = client.get(url.clone());
                if let Some(c) = &cookie {
                    req = req.header("cookie", c.as_str());
                }
                let res = match req.send().await {
                    Ok(res) => res,
                    Err(e) => {
                        bump(&tally.panics);
                        return Err(TestCaseError::fail(format!("no answer: {e}")));
                    }
                };
                let status = res.status().as_u16();
                tally.saw(format!(
                    "{}{status}",
                    if signed_fresh { "signed " } else { "" }
                ));
                check_status(tally, status, &format!("the load link {url}"))?;
                let after = Snapshot::of(&app).await;
                if signed_fresh {
                    // A real link: it opens the store (303, one session) or finds no active store.
                    prop_assert!(
                        matches!(status, 303 | 404),
                        "a signed link answered {}",
                        status
                    );
                } else {
                    check_unchanged(
                        tally,
                        &before,
                        &after,
                        &format!("the unsigned load link {url}"),
                    )?;
                    let cookie_set = res
                        .headers()
                        .get_all("set-cookie")
                        .iter()
                        .any(|v| v.as_bytes().starts_with(b"ab_session="));
                    prop_assert!(!cookie_set, "an unsigned link set a session cookie");
                    prop_assert!(
                        matches!(status, 400 | 401 | 404),
                        "an unsigned link ({}) answered {}",
                        url,
                        status
                    );
                }
                Ok(())
            })
        },
    );
    rt.block_on(async move { drop(app) });
}

/// What the program's double answers to every call of a case.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<String>,
}

fn program_answer() -> impl Strategy<Value = Answer> {
    let templates = vec![
        json!({"affiliates": [{"id": 1, "name": "Alice", "ref_code": "alice", "status": "approved"},
                              {"id": "2", "name": null, "ref_code": "bob", "status": 1}]}),
        json!([{"id": 3, "name": "Carol"}]),
        json!({"orders": [{"id": 987, "number": "AMZ-1", "total": 191.96, "commission": "19.2", "status": "approved"}]}),
        json!({"order": {"id": 987, "total": 191.96, "commission": "19.2", "status": "approved"}}),
        json!({"id": "x1", "total": "10.00"}),
        json!({"code": "400", "message": "bad"}),
    ];
    let body = prop_oneof![
        6 => (proptest::sample::select(templates), mutations(4), wire())
            .prop_map(|(doc, changes, w)| encode(&apply(doc, &changes), &w)),
        1 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => deep_nesting(),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ];
    let status = prop_oneof![
        4 => Just(200u16),
        1 => Just(201u16),
        2 => proptest::sample::select(vec![204u16, 301, 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503]),
        1 => 200u16..600,
    ];
    let retry_after = proptest::option::weighted(
        0.3,
        prop_oneof![
            "[0-9]{1,25}",
            "-[0-9]{1,5}",
            "[ -~]{0,40}",
            Just("Wed, 21 Oct 2015 07:28:00 GMT".to_owned())
        ],
    );
    (status, body, retry_after).prop_map(|(status, body, retry_after)| Answer {
        status,
        body,
        retry_after,
    })
}

/// The class an answer of `status` must be refused with, if not a success.
fn expected_class(status: u16, err: &ProgramError) -> bool {
    match status {
        200..=299 => matches!(err, ProgramError::Decode(_)),
        401 | 403 => matches!(err, ProgramError::Unauthorized(s) if *s == status),
        429 => matches!(err, ProgramError::Throttled { .. }),
        500..=599 => matches!(err, ProgramError::Server { status: s } if *s == status),
        _ => matches!(err, ProgramError::Rejected { status: s, .. } if *s == status),
    }
}

#[test]
fn fuzz_program_answers() {
    let rt = runtime();
    let settings = Settings::from_sources(
        None,
        [
            ("APP__SANDBOX__ENABLED", "false"),
            (
                "APP__PLATFORM__WEBHOOK_SECRETS",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
            ("APP__PROGRAM__RETRY_BASE_MS", "1"),
            ("APP__PROGRAM__RETRY_CAP_MS", "10"),
            ("APP__PROGRAM__REQUEST_TIMEOUT_SECS", "10"),
            ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "127.0.0.1"),
            ("APP__PROGRAM__MAX_REQUESTS_PER_SEC", "1000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    let program = ProgramApp::from_settings(&settings.program).unwrap();
    let server = rt.block_on(MockServer::start());
    let api = format!("{}/v1", server.uri());
    let order = NewOrder {
        number: "AMZ-1".into(),
        affiliate_id: 1,
        total: amount(19196, 2),
        subtotal: amount(19196, 2),
        commission: amount(1920, 2),
        currency: "USD".into(),
        date: "2026-11-01".into(),
        status: "approved".into(),
        source: "amazon_attribution",
        meta: OrderMeta {
            clicks: 1,
            purchases: 1,
            units: 1,
        },
    };
    let tokens = Cell::new(0u64);
    run(
        "program answers (HTTP double)",
        Kind::Parser,
        256,
        program_answer(),
        |answer, tally| {
            no_panic(tally, || {
                rt.block_on(async {
                    server.reset().await;
                    let mut template = ResponseTemplate::new(answer.status)
                        .set_body_raw(answer.body.clone(), "application/json");
                    if let Some(after) = &answer.retry_after {
                        template = template.insert_header("retry-after", after.as_str());
                    }
                    Mock::given(any_request())
                        .respond_with(template)
                        .mount(&server)
                        .await;
                    // A token per call: a 429's pause must not hold up the next call.
                    let client = || {
                        tokens.set(tokens.get() + 1);
                        program
                            .client_once(
                                Some(&api),
                                SecretString::from(format!("gpat_{}", tokens.get())),
                            )
                            .unwrap()
                    };
                    let (roster, found, created) = (
                        client().affiliates().await,
                        client().find_order("AMZ-1", 2).await,
                        client().create_order(&order, 2).await,
                    );
                    let outcomes: [(&str, Result<(), &ProgramError>); 3] = [
                        ("roster", roster.as_ref().map(|_| ())),
                        ("find", found.as_ref().map(|_| ())),
                        ("create", created.as_ref().map(|_| ())),
                    ];
                    for (call, outcome) in outcomes {
                        tally.saw(match outcome {
                            Ok(()) => format!("{call} ok"),
                            Err(e) => format!(
                                "{call} {}",
                                format!("{e:?}")
                                    .split(['(', ' ', '{'])
                                    .next()
                                    .unwrap_or("?")
                            ),
                        });
                        match outcome {
                            Ok(()) => prop_assert!(
                                (200..300).contains(&answer.status),
                                "{} read a {} as a success",
                                call,
                                answer.status
                            ),
                            Err(e) => {
                                let _ = no_panic(tally, || e.retry())?;
                                prop_assert!(
                                    expected_class(answer.status, e),
                                    "{}: a {} was classified as {:?}",
                                    call,
                                    answer.status,
                                    e
                                );
                            }
                        }
                    }
                    if let Ok(roster) = &roster {
                        // Each id once; entries without one are kept, so that the roster's
                        // reader retires no one on that read.
                        let ids: Vec<_> = roster.iter().filter_map(|a| a.id.as_ref()).collect();
                        let distinct: std::collections::HashSet<_> = ids.iter().collect();
                        prop_assert_eq!(ids.len(), distinct.len(), "an id listed twice");
                    }
                    Ok(())
                })
            })?
        },
    );
}

/// Found by `fuzz_signed_hostile_payloads_over_http` on PostgreSQL: a signed delivery whose text
/// held a NUL (here the event type, stored in the inbox) could never be stored there, and was
/// answered 503, so the platform would retry it forever. It is a malformed payload: 400.
#[tokio::test]
async fn a_signed_delivery_holding_a_nul_is_malformed_not_an_outage() {
    let app = app_with_store("st_1", "gpat_t", &[(42, "Alice")]).await;
    let before = Snapshot::of(&app).await;
    for (id, body) in [
        ("msg_nul_1", &br#"{"data":{"store":{"id":"st_1"}},"type":"\u0000"}"#[..]),
        ("msg_nul_2", br#"{"type":"affiliate.updated","data":{"store_id":"st_1","affiliate":{"id":42,"name":"Al\u0000ice"}}}"#),
    ] {
        let res = app.post_signed(id, body.to_vec()).await;
        assert_eq!(res.status(), 400, "{}", res.text().await.unwrap());
    }
    assert!(before.changed(&Snapshot::of(&app).await).is_empty());
}
