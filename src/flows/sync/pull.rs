//! Every page of a store's report (DESIGN §4.3), read on other threads while the next page is
//! fetched: the next page's cursor is guessed by skimming the page ([`page::cursor_hint`]), and
//! the page's full reading has the last word. A wrong guess throws away the pages fetched on it,
//! and a page that failed to come on a guess fails the sync only once the guess is confirmed.
use std::collections::{HashSet, VecDeque};

use chrono::NaiveDate;
use sea_orm::{DbErr, TransactionTrait};
use tokio::task::JoinHandle;

use crate::{
    clients::amazon::{
        page,
        report::{self, BadRow, PageRows},
    },
    domain::ids::StoreId,
    flows::{Deps, tokens},
    jobs::{JobError, Lease},
    store::{jobs, runs},
};

use super::report::{Held, Report, stage, stage_held};

/// Pages read at once while the next one is fetched: reading is what takes the time, and a
/// page's text is held until it is read.
const READ_AT_ONCE: usize = 2;

/// A page fetched, in the order of the report.
enum Fetched {
    /// Being read, with the cursor its skim guessed (and the pages after it were fetched on).
    Reading {
        guess: Option<String>,
        task: JoinHandle<Result<PageRows, BadRow>>,
    },
    /// It did not come: an error, if the cursor it was asked for is the report's.
    Failed(JobError),
}

/// Reads every page of the report into the report the ingest takes: held in memory while it is
/// within `sync.held_rows`, staged from the page that would pass it on (`report`; a key on two
/// pages turns incomplete either way). With each page fetched the job's lease is renewed; with
/// each page taken in the run's progress (the rows read so far) is recorded (in the page's
/// transaction when it is staged) and logged, and the page's rows are counted for `/metrics`.
///
/// Errors: a page that is not a report, a cursor that comes back, more than
/// [`report::MAX_PAGES`] pages (permanent); a lost lease (cancelled); Amazon's and the database's.
pub(super) async fn pull(
    deps: &Deps,
    store: &StoreId,
    run: &runs::Run,
    (profile, advertiser, campaign): (i64, &str, &str),
    (from, to): (NaiveDate, NaiveDate),
    exponent: u32,
    lease: Option<&Lease>,
) -> Result<Report, JobError> {
    let profile = profile.to_string();
    // The lease is renewed with each fetch, so that its failure, too, waits for the guess the
    // fetch was made on to be confirmed.
    let fetch = |cursor: Option<String>| {
        let body = report::request_body(advertiser, from, to, cursor.as_deref());
        let profile = profile.clone();
        async move {
            if let Some(lease) = lease {
                let until = super::lease_until(deps);
                if !jobs::renew(&deps.db, lease.job_id, lease.attempts, until).await? {
                    return Err(JobError::Cancelled(super::CLAIM_LOST.into()));
                }
            }
            let page = tokens::with_token(deps, store, |t, r| {
                let (body, profile) = (body.clone(), profile.clone());
                async move { deps.amazon.ads(r).report_page(&t, &profile, &body).await }
            })
            .await?;
            Ok(page)
        }
    };
    let mut report = Intake {
        store,
        campaign,
        run,
        report: Report::Held(Held::default()),
    };
    let mut fetched: VecDeque<Fetched> = VecDeque::new();
    let mut fetching = None;
    // A page that came while the loop was busy, to be taken in first.
    let mut came = None;
    // The cursor of the page to fetch next (`Some(None)`: the first page); `None` while the
    // pages read so far do not say.
    let mut next: Option<Option<String>> = Some(None);
    let mut seen = HashSet::new();
    let (mut pages, mut read) = (0, 0);
    loop {
        if let Some(page) = came.take() {
            handle_came(page, exponent, &mut fetched, &mut next)?;
            continue;
        }
        if fetching.is_none()
            && fetched.len() < READ_AT_ONCE
            && let Some(cursor) = next.take()
        {
            fetching = Some(Box::pin(fetch(cursor)));
        }
        let reading = match fetched.front_mut() {
            Some(Fetched::Reading { task, .. }) => Some(task),
            // Every page before it confirmed the cursor it was asked for: its error stands.
            Some(Fetched::Failed(_)) => match fetched.pop_front() {
                Some(Fetched::Failed(e)) => return Err(e),
                _ => unreachable!("the front was a failed page"),
            },
            None => None,
        };
        let event = match (reading, fetching.as_mut()) {
            (None, None) => {
                // Not reached: a page whose cursor was guessed right has the next one fetched
                // or about to be.
                return Err(JobError::permanent("the report's pages lost their place"));
            }
            (Some(task), None) => Event::Read(task.await),
            (None, Some(page)) => Event::Came(page.await),
            // A page read first: the run's progress never waits on a fetch.
            (Some(task), Some(page)) => tokio::select! {
                biased;
                done = task => Event::Read(done),
                page = page => Event::Came(page),
            },
        };
        let done = match event {
            Event::Came(page) => {
                fetching = None;
                handle_came(page, exponent, &mut fetched, &mut next)?;
                continue;
            }
            Event::Read(done) => done,
        };
        let Some(Fetched::Reading { guess, .. }) = fetched.pop_front() else {
            unreachable!("the front was being read");
        };
        // A page that is not a report must not read as "no sales" (that would reject orders).
        let page = done
            .map_err(|e| JobError::permanent(format!("reading a report page failed: {e}")))?
            .map_err(|e| JobError::permanent(e.to_string()))?;
        pages += 1;
        read += page.count;
        deps.metrics.report_rows_read(page.count);
        let (count, cursor) = (page.count, page.cursor);
        // The page being fetched keeps moving meanwhile: it may hold the database (a token
        // being refreshed), and this waits for it.
        let recorded = match fetching.as_mut() {
            Some(fetch) => {
                let progress = report.take(deps, page.rows, read);
                tokio::pin!(progress);
                tokio::select! {
                    biased;
                    done = &mut progress => done,
                    page = fetch => {
                        came = Some(page);
                        progress.await
                    }
                }
            }
            None => report.take(deps, page.rows, read).await,
        };
        if came.is_some() {
            fetching = None;
        }
        recorded?;
        tracing::info!(
            store_id = %store,
            page = pages,
            rows = count,
            rows_so_far = read,
            "report page read"
        );
        let Some(cursor) = cursor else {
            // The last page: whatever was fetched on a guess after it is not the report's.
            return Ok(report.report);
        };
        if !seen.insert(cursor.clone()) {
            return Err(JobError::permanent(format!(
                "the report's cursor came back to a page already read ({cursor})"
            )));
        }
        if pages == report::MAX_PAGES {
            tracing::warn!(store_id = %store, "report paging stopped at the page limit");
            return Err(JobError::permanent(format!(
                "the report had more than {} pages",
                report::MAX_PAGES
            )));
        }
        if guess.as_ref() != Some(&cursor) {
            // A wrong guess: the pages fetched on it, and the one coming, are thrown away.
            fetched.clear();
            fetching = None;
            came = None;
            next = Some(Some(cursor));
        }
    }
}

/// Where the pages go: held in memory until the report would hold more than `sync.held_rows`
/// rows, then staged, the rows held so far first.
struct Intake<'a> {
    store: &'a StoreId,
    campaign: &'a str,
    run: &'a runs::Run,
    report: Report,
}

impl Intake<'_> {
    /// Takes a page's rows in and records the rows read so far (`read`), in one transaction
    /// when the page is staged.
    async fn take(&mut self, deps: &Deps, rows: report::Rows, read: usize) -> Result<(), DbErr> {
        let at_most = deps.settings.sync.held_rows;
        if let Report::Held(held) = &mut self.report
            && held.len().saturating_add(rows.len()) <= at_most
        {
            held.add(self.campaign, rows);
            return runs::progress(&deps.db, self.run, read).await;
        }
        let run = (self.store, self.run.id);
        let txn = deps.db.begin().await?;
        if let Report::Held(held) = &self.report
            && !held.is_empty()
        {
            stage_held(&txn, run, held).await?;
        }
        stage(&txn, run, self.campaign, &rows).await?;
        runs::progress(&txn, self.run, read).await?;
        txn.commit().await?;
        // Only once committed: a page whose staging failed fails the sync, held rows and all.
        self.report = Report::Staged(self.run.id);
        Ok(())
    }
}

/// Takes in a page that came (or did not): it is read on a thread of its own, and the next one
/// is fetched on its guessed cursor.
fn handle_came(
    page: Result<String, JobError>,
    exponent: u32,
    fetched: &mut VecDeque<Fetched>,
    next: &mut Option<Option<String>>,
) -> Result<(), JobError> {
    match page {
        Ok(text) => {
            let guess = page::cursor_hint(&text);
            *next = guess.clone().map(Some);
            let task = tokio::task::spawn_blocking(move || report::read_page_rows(&text, exponent));
            fetched.push_back(Fetched::Reading { guess, task });
            Ok(())
        }
        // On a guess, this may not be the report's page: its error waits its turn.
        Err(e) if !fetched.is_empty() => {
            fetched.push_back(Fetched::Failed(e));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// What the pull waited for.
enum Event<R, P> {
    /// The oldest page's reading ended.
    Read(R),
    /// The page being fetched came (or did not).
    Came(P),
}
