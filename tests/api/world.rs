//! One world for the flows that need Amazon and the program: store st_1 installed against doubles
//! of both, opened by its merchant and, when asked, connected to Amazon with a report to read.
use std::{collections::HashMap, net::IpAddr};

use attribution_bridge::{
    clients::resolve::StaticLookup,
    flows::{
        scheduler,
        sync::{self, SyncOutcome},
    },
    store::links::CurrentLink,
};
use chrono::NaiveDate;
use serde_json::Value;

use crate::{doubles::*, helpers::*};

/// The application with its store st_1 and the doubles it talks to.
pub struct World {
    pub app: TestApp,
    pub amazon: AmazonDouble,
    pub report: Report,
    pub program: ProgramDouble,
    pub orders: Orders,
}

/// What to build: `affiliates` in the program, Amazon's report and the application's settings.
pub struct WorldBuilder {
    affiliates: usize,
    page_size: usize,
    rows: Vec<Value>,
    settings: Vec<(String, String)>,
    /// The program's API named by scheme and host name, and the address the app resolves it to.
    program_at: Option<(String, String, IpAddr)>,
}

/// A world whose program has `affiliates` affiliates and whose Amazon report is empty. Decreases
/// are never held here (`sync.hold_decrease_share` = 1) unless a test sets the share itself.
pub fn store_with(affiliates: usize) -> WorldBuilder {
    WorldBuilder {
        affiliates,
        page_size: 0,
        rows: vec![],
        settings: vec![("APP__SYNC__HOLD_DECREASE_SHARE".into(), "1".into())],
        program_at: None,
    }
}

impl WorldBuilder {
    /// Amazon's report answers `rows` rows a page (0: all of them in one).
    pub fn report_page_size(mut self, rows: usize) -> Self {
        self.page_size = rows;
        self
    }

    /// Amazon's report holds these rows.
    pub fn report(mut self, rows: Vec<Value>) -> Self {
        self.rows = rows;
        self
    }

    /// Amazon's report holds one sale a day (10 clicks, 1 purchase) of each (affiliate, sales text)
    /// on `day` (YYYYMMDD).
    pub fn sales(self, day: &str, sales: &[(i64, &str)]) -> Self {
        let rows = sales
            .iter()
            .map(|(a, amount)| report_row(day, *a, 10, 1, amount))
            .collect();
        self.report(rows)
    }

    /// Amazon's report holds one sale of `amount` on `day` for each of affiliates 1 to `n`.
    pub fn same_sales(self, day: &str, n: i64, amount: &str) -> Self {
        let sales: Vec<(i64, &str)> = (1..=n).map(|a| (a, amount)).collect();
        self.sales(day, &sales)
    }

    /// One more application setting, an `APP__…` pair (a later one wins).
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The install names the program `{scheme}://{host}:{port}/v1` (the double's port), and the
    /// app's name lookup answers `ip` for `host`. The double itself listens on 127.0.0.1.
    pub fn program_at(mut self, scheme: &str, host: &str, ip: IpAddr) -> Self {
        self.program_at = Some((scheme.to_owned(), host.to_owned(), ip));
        self
    }

    /// The store installed and opened from its load link; Amazon not connected.
    pub async fn opened(self) -> World {
        let (amazon, report) = AmazonDouble::with_report(self.page_size).await;
        let (program, orders) = ProgramDouble::with_orders("gpat_prog", self.affiliates).await;
        *report.rows.lock().unwrap() = self.rows;
        let mut env = amazon.env();
        env.extend(self.settings);
        let (lookup, api_url) = match &self.program_at {
            Some((scheme, host, ip)) => (
                StaticLookup::default().with(host, *ip),
                format!("{scheme}://{host}:{}/v1", program.server.address().port()),
            ),
            None => (StaticLookup::default(), program.api_url()),
        };
        let app = spawn_app_resolving(move |e| e.extend(env), lookup).await;
        app.send(&install_event_at("st_1", "gpat_prog", &api_url))
            .await;
        assert_eq!(app.open_store("st_1").await.status(), 303);
        World {
            app,
            amazon,
            report,
            program,
            orders,
        }
    }

    /// As `opened`, with Amazon connected: every affiliate has a link.
    pub async fn connected(self) -> World {
        let w = self.opened().await;
        let flash = w.connect_amazon(&[]).await;
        assert!(flash.contains("connected"), "{flash}");
        w
    }

    /// As `connected`, with a sync of the trailing 60 days queued.
    pub async fn queued(self) -> World {
        let w = self.connected().await;
        w.queue_sync(None).await;
        w
    }

    /// As `queued`, with the sync run: its pushes are queued.
    pub async fn synced(self) -> World {
        let w = self.queued().await;
        w.app.run_one_job().await;
        w
    }
}

impl World {
    /// Clicks "Connect Amazon" on the setup page; returns the consent URL's query.
    pub async fn start_connect(&self) -> HashMap<String, String> {
        let page = self.app.page("/app/stores/st_1").await;
        let csrf = csrf_of(&page).unwrap_or_default();
        let res = self
            .app
            .get(&format!("/app/amazon/connect?region=NA&csrf={csrf}"))
            .await;
        assert_eq!(res.status(), 303);
        consent_query(&res)
    }

    /// Amazon's redirect back in the merchant's browser, then the setup page; returns its flash.
    pub async fn callback(&self, query: &[(&str, &str)]) -> String {
        self.callback_in(&self.app.client, query).await
    }

    /// Amazon's redirect back in the given browser, then the setup page; returns its flash.
    pub async fn callback_in(&self, client: &reqwest::Client, query: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&self.app.url("/oauth/amazon/callback")).unwrap();
        url.query_pairs_mut().extend_pairs(query);
        let res = client.get(url).send().await.unwrap();
        assert_eq!(
            res.status(),
            303,
            "the callback never fails with an error page"
        );
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let page = client
            .get(self.app.url(&location))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        flash_of(&page).unwrap_or_default()
    }

    /// Connects Amazon as the merchant does (connect, allow, back), with `extra` in Amazon's
    /// redirect; returns the setup page's flash.
    pub async fn connect_amazon(&self, extra: &[(&str, &str)]) -> String {
        let consent = self.start_connect().await;
        let code = self.amazon.allow(&consent["code_challenge"]);
        let mut query = vec![
            ("code", code.as_str()),
            ("state", consent["state"].as_str()),
        ];
        query.extend_from_slice(extra);
        self.callback(&query).await
    }

    /// The store's current links.
    pub async fn links(&self) -> Vec<CurrentLink> {
        attribution_bridge::store::links::current(&self.app.state.deps.db, &store_id("st_1"))
            .await
            .unwrap()
    }

    /// Queues a sync of `days` (None: the trailing 60 days), as the tests trigger it.
    pub async fn queue_sync(&self, days: Option<(NaiveDate, NaiveDate)>) {
        scheduler::enqueue_now(&self.app.state.deps, &store_id("st_1"), days, "test")
            .await
            .unwrap();
    }

    /// Runs a sync of `from` to `to` at once, outside the queue, as a worker holding no lease.
    pub async fn run_sync(&self, from: NaiveDate, to: NaiveDate) -> SyncOutcome {
        sync::run(
            &self.app.state.deps,
            &store_id("st_1"),
            (from, to),
            "test",
            None,
        )
        .await
        .unwrap()
    }

    /// The program's order for affiliate `aff` on `day` (YYYYMMDD), as it shows it now.
    pub fn order(&self, aff: i64, day: &str) -> Value {
        self.orders
            .current(&format!("AMZ-ab_st_1-a{aff}-{day}"))
            .expect("the program has the order")
    }

    /// The store's setup page says `text` (`why` names the promise, for the failure message).
    pub async fn assert_setup_page_says(&self, text: &str, why: &str) {
        let page = self.app.page("/app/stores/st_1").await;
        assert!(page.contains(text), "{why}: {text:?} is not on the page");
    }

    /// Amazon's report holds these rows from now on.
    pub fn set_rows(&self, rows: Vec<Value>) {
        *self.report.rows.lock().unwrap() = rows;
    }

    /// The store's dead letters sent again (what **send them again** does); how many.
    pub async fn retry_dead_letters(&self) -> u64 {
        let db = &self.app.state.deps.db;
        attribution_bridge::flows::push::retry_dead_letters(
            db,
            Some(&store_id("st_1")),
            self.app.clock_now(),
        )
        .await
        .unwrap()
    }

    /// "Sync now": the trailing 60 days, then every job that is due.
    pub async fn sync_now(&self) {
        self.queue_sync(None).await;
        self.app.run_due_jobs().await;
    }
}

/// The query of the consent URL a "Connect Amazon" redirect points to (Amazon's /ap/oa).
pub fn consent_query(res: &reqwest::Response) -> HashMap<String, String> {
    let consent = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(consent.path().ends_with("/ap/oa"), "{consent}");
    consent.query_pairs().into_owned().collect()
}

/// Three affiliates pushed at 10.00 each on 2026-11-18.
pub async fn three_pushed(share: &str) -> World {
    let w = store_with(3)
        .setting("APP__SYNC__HOLD_DECREASE_SHARE", share)
        .same_sales("20261118", 3, "100.00")
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 3);
    w
}
