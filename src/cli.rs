//! The command line: `serve` (default), `migrate`, `stores list`.
use std::{
    io::{ErrorKind, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{CommandFactory, Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{
    Application,
    config::Settings,
    db,
    domain::{ids::StoreId, text::Escaped},
    flows::{links, push, scheduler, status, sync},
    store::{self, jobs, stores},
    telemetry,
};

#[derive(Debug, Parser)]
#[command(
    name = "attribution-bridge",
    version,
    about = "Amazon Attribution for affiliate programs"
)]
pub struct Cli {
    /// A TOML file overriding the built-in defaults (app.toml); APP__SECTION__KEY variables override both.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP and run background work (the default).
    Serve,
    /// Apply (default), revert or list database migrations.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Inspect stores.
    Stores {
        #[command(subcommand)]
        action: StoresAction,
    },
    /// Sync a store now: report, commissions and pushes, run to completion; prints a summary.
    ///
    /// Runs every job of the store that is due, waits (up to --wait) for scheduled retries and
    /// for jobs held by another worker (a live one finishes them; a dead one's lease runs out
    /// and they are run here), then prints the store's status as JSON. A sync of the same days
    /// that is already waiting or running is followed instead of queuing a second one.
    #[command(after_help = "Exit status:\n  \
        0  every job of the store is done\n  \
        1  an error (database, unknown store, …)\n  \
        2  bad configuration or arguments (--from after --to, only one of them, or days outside\n     \
           the 60 days a sync reads): nothing queued\n  \
        3  a job failed for good: a dead letter (see `dead-letters`) or a sync that could not run\n  \
        4  work still waits past --wait: each waiting job is named on stderr with the time it runs next\n\
        3 wins over 4 when both apply.")]
    Sync {
        #[arg(long)]
        store: String,
        /// First marketplace day (YYYY-MM-DD), with --to and not after it, at most 60 days ago
        /// (older days are final); default: 60 days ago.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// Last marketplace day (YYYY-MM-DD), with --from, at most yesterday; default: yesterday.
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        /// Wait at most this many seconds for scheduled retries and for jobs held by other
        /// workers; work still waiting then ends the command with exit status 4.
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Every order of a store: figures, commission, pushed state, remote id, versions.
    Ledger {
        #[arg(long)]
        store: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Jobs that failed for good (a push the program refused, …); `--retry` queues them again.
    DeadLetters {
        #[arg(long)]
        retry: bool,
        /// Only this store's.
        #[arg(long)]
        store: Option<String>,
    },
    /// Write a store's data as CSV to stdout.
    Export {
        /// The store's id (as in `stores list`).
        #[arg(long)]
        store: String,
        /// Every affiliate's Amazon link (the one export there is, so far: required).
        #[arg(long, required = true)]
        links: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the last N migrations (1 without -n); --all reverts every one, which drops every
    /// table and its data.
    Down {
        #[arg(short = 'n', long, default_value_t = 1, conflicts_with = "all")]
        steps: u32,
        #[arg(long)]
        all: bool,
    },
    /// Show which migrations are applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum StoresAction {
    /// List every store with its state.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = check(&cli) {
        // Usage errors end as clap's own do: the message and the usage on stderr, status 2.
        e.exit();
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", Escaped(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    match dispatch(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever read stdout stopped reading (`| head -1`): nothing went wrong.
        Err(e) if e.is::<StdoutClosed>() => ExitCode::SUCCESS,
        // A range the sync would not read: a bad argument, as clap's are.
        Err(e) if e.is::<OutsideTheWindow>() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        // `sync` said what is left; its status tells scripts which case it is.
        Err(e) if e.is::<Unfinished>() => e
            .downcast_ref::<Unfinished>()
            .map_or(ExitCode::FAILURE, |u| ExitCode::from(u.code())),
        Err(e) => {
            eprintln!("error: {}", Escaped(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// What clap cannot check alone: a `sync` range that ends before it starts.
fn check(cli: &Cli) -> Result<(), clap::Error> {
    if let Some(Command::Sync {
        from: Some(from),
        to: Some(to),
        ..
    }) = &cli.command
        && from > to
    {
        return Err(Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "--from {from} is later than --to {to}: give the first day with --from and the \
                 last with --to; nothing was queued"
            ),
        ));
    }
    Ok(())
}

/// The reader of stdout went away (`attribution-bridge ledger … | head -1`): the command ends
/// quietly with status 0 instead of failing on "Broken pipe".
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
struct StdoutClosed;

/// Writes to stdout (locked, flushed). A closed stdout is [`StdoutClosed`], never a panic.
fn out(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        written => Ok(written?),
    }
}

/// `sync`'s status speaks for the store's work, whether or not anyone still reads its stdout.
fn unless_closed(written: anyhow::Result<()>) -> anyhow::Result<()> {
    match written {
        Err(e) if e.is::<StdoutClosed>() => Ok(()),
        written => written,
    }
}

/// A `sync` range outside the days a sync reads (DESIGN §5: ages 1–60, the final days never
/// change): refused before anything is queued (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}; nothing was queued")]
struct OutsideTheWindow(String);

/// `sync` ended with work of the store not done: what is left was said on stderr.
#[derive(Debug, thiserror::Error)]
enum Unfinished {
    /// A job failed for good (exit status 3).
    #[error("a job of the store failed for good")]
    Failed,
    /// Work still waits past `--wait` (exit status 4).
    #[error("work of the store still waits")]
    Waiting,
}

impl Unfinished {
    fn code(&self) -> u8 {
        match self {
            Self::Failed => 3,
            Self::Waiting => 4,
        }
    }
}

/// `sync`: queues a sync of the store (or follows the one already waiting), runs its jobs here
/// until none is left or the next one is further than `wait`, prints the status, and says what
/// is not done.
async fn sync_store(
    settings: Settings,
    store: &StoreId,
    range: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    wait: u64,
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let app = crate::startup::prepare(
        settings,
        std::sync::Arc::new(crate::domain::clock::SystemClock),
    )
    .await?;
    let db = &app.deps.db;
    known_store(db, store).await?;
    if let Some((from, to)) = range {
        let today = sync::store_today(db, store, chrono::Utc::now()).await?;
        let (oldest, newest) = sync::daily_range(today);
        if to > newest {
            return Err(OutsideTheWindow(format!(
                "--to {to} is not before today ({today} on the store's marketplace): a sync \
                 reads days up to yesterday, as Amazon completes a day only after it"
            ))
            .into());
        }
        if from < oldest {
            return Err(OutsideTheWindow(format!(
                "--from {from} is more than 60 days ago (the oldest day a sync reads is \
                 {oldest}): older days are final and never change"
            ))
            .into());
        }
    }
    let asked = scheduler::enqueue_now(&app.deps, store, range, "cli").await?;
    if let (false, Some(job)) = (asked.queued, &asked.job) {
        eprintln!(
            "a {} is already waiting or running (job #{}); following it",
            status::describe(job),
            job.id
        );
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    let poll = app.worker.config.poll_interval;
    let mut announced = None;
    let left = loop {
        app.worker.drain().await?;
        let left = status::work_left(db, store).await?;
        let Some(first) = left.waiting.first() else {
            break left;
        };
        // Due now, a retry later, or a claim that another worker holds until its lease ends
        // (renewed while that worker lives; run here once a dead worker's lease ran out).
        let until = (first.until - app.deps.clock.now())
            .to_std()
            .unwrap_or_default();
        if Instant::now() + until > deadline {
            break left;
        }
        if until > poll && announced != Some((first.job_id, first.until)) {
            announced = Some((first.job_id, first.until));
            eprintln!(
                "waiting {}s for the {} (job #{}){}",
                until.as_secs(),
                first.what,
                first.job_id,
                if first.running {
                    ", held by another worker"
                } else {
                    ", a scheduled retry"
                }
            );
        }
        // Looked at again every poll: another worker may finish its job before its lease ends.
        tokio::time::sleep(until.clamp(Duration::from_millis(10), poll)).await;
    };
    unless_closed(out(format_args!(
        "{}\n",
        serde_json::to_string_pretty(&status::store_status(db, store).await?)?
    )))?;
    let held = status::held_changes(db, store).await?.len();
    if held > 0 {
        eprintln!(
            "held: {held} decrease(s) of the store's orders wait for the merchant's Apply or \
             Discard on the store's Overview page"
        );
    }
    for w in &left.waiting {
        let how = if w.running {
            "held by a worker whose lease runs until"
        } else {
            "next try at"
        };
        let error = w
            .last_error
            .as_deref()
            .map(|e| format!(" (last error: {})", Escaped(e)))
            .unwrap_or_default();
        eprintln!(
            "waiting: {} (job #{}, attempt {}), {how} {}{error}",
            w.what,
            w.job_id,
            w.attempts,
            w.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    let unlisted = left.waiting_total.saturating_sub(left.waiting.len() as u64);
    if unlisted > 0 {
        eprintln!("waiting: {unlisted} more job(s) not listed");
    }
    for f in &left.failed {
        eprintln!(
            "failed for good: {} (job #{}, after {} attempt(s)): {}",
            f.what,
            f.job_id,
            f.attempts,
            Escaped(f.error.as_deref().unwrap_or("no error recorded"))
        );
    }
    if !left.failed.is_empty() {
        eprintln!("fix the cause, then `attribution-bridge dead-letters --store {store} --retry`");
    }
    // A sync that did not run at all (Amazon disconnected, store uninstalled) ends cancelled.
    let cancelled = match &asked.job {
        Some(job) => jobs::find(db, store, job.id)
            .await?
            .filter(|j| j.status == crate::store::JobStatus::Cancelled),
        None => None,
    };
    if let Some(job) = &cancelled {
        eprintln!(
            "failed for good: the {} did not run: {}",
            status::describe(job),
            Escaped(job.last_error.as_deref().unwrap_or("cancelled"))
        );
    }
    if !left.failed.is_empty() || cancelled.is_some() {
        return Err(Unfinished::Failed.into());
    }
    if !left.waiting.is_empty() {
        return Err(Unfinished::Waiting.into());
    }
    Ok(())
}

/// Prints one line of text output with the control characters of outside text (store names, an
/// upstream's error) escaped, so it can neither forge a line nor drive the terminal (DESIGN §7).
/// JSON output needs none: serde escapes it.
fn say(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    out(format_args!("{}\n", Escaped(&line.to_string())))
}

/// A store id the operator typed that names no store is an error (exit 1), whatever the command:
/// an empty ledger or "no dead letters" would read as a store with nothing wrong.
async fn known_store(db: &sea_orm::DatabaseConnection, store: &StoreId) -> anyhow::Result<()> {
    stores::find(db, store)
        .await?
        .map(|_| ())
        .ok_or_else(|| anyhow::anyhow!("no store {store}"))
}

/// What `serve` tells whoever started it: the address to open, and the sandbox's when it is on.
fn open_line(app: &Application) -> String {
    let url = app.browser_url();
    match app.state().sandbox {
        Some(_) => format!("Open {url} in a browser (sandbox: {url}sandbox)"),
        None => format!("Open {url} in a browser"),
    }
}

/// The sandbox sends its webhooks, load links and redirects to `server.public_url`: with another
/// port there (`APP__SERVER__PORT` changed alone, say) they reach some other server.
fn warn_if_elsewhere(app: &Application) {
    let public = &app.state().deps.settings.server.public_url;
    if app.state().sandbox.is_some() && public.port_or_known_default() != Some(app.port()) {
        tracing::warn!(
            public_url = %public,
            port = app.port(),
            "the sandbox reaches this server at server.public_url, whose port is not the one \
             listened on; set APP__SERVER__PUBLIC_URL to this server's address"
        );
    }
}

async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "serving");
            warn_if_elsewhere(&app);
            // Once listening, so the address (port 0 too) is the one really bound.
            unless_closed(out(format_args!("{}\n", open_line(&app))))?;
            app.run_until_stopped().await
        }
        Command::Migrate { action } => {
            let db = db::connect(&settings.database).await?;
            match action.unwrap_or(MigrateAction::Up) {
                MigrateAction::Up => Migrator::up(&db, None).await?,
                MigrateAction::Down { steps, all } => {
                    Migrator::down(&db, (!all).then_some(steps)).await?
                }
                MigrateAction::Status => {}
            }
            // What the database holds now, whatever was asked: a command says what it did.
            for m in Migrator::get_migration_with_status(&db).await? {
                say(format_args!("{:<8} {}", m.status().to_string(), m.name()))?;
            }
            Ok(())
        }
        Command::Sync {
            store,
            from,
            to,
            wait,
        } => {
            let store = StoreId::parse(&store)?;
            sync_store(settings, &store, from.zip(to), wait).await
        }
        Command::Ledger { store, json } => {
            let store = StoreId::parse(&store)?;
            let db = db::connect_and_migrate(&settings.database).await?;
            known_store(&db, &store).await?;
            let entries = status::ledger(&db, &store).await?;
            if json {
                out(format_args!(
                    "{}\n",
                    serde_json::to_string_pretty(&entries)?
                ))?;
            } else {
                for e in entries {
                    say(format_args!(
                        "{} {} a{:<6} total {:>10} commission {:>9} {:<8} v{} pushed v{} {}",
                        e.day,
                        e.currency,
                        e.affiliate_id,
                        e.total,
                        e.commission,
                        e.status,
                        e.version,
                        e.pushed_version,
                        e.push_state
                    ))?;
                }
            }
            Ok(())
        }
        Command::DeadLetters { retry, store } => {
            let store = store.as_deref().map(StoreId::parse).transpose()?;
            let db = db::connect_and_migrate(&settings.database).await?;
            if let Some(store) = &store {
                known_store(&db, store).await?;
            }
            if retry {
                let n = push::retry_dead_letters(&db, store.as_ref(), chrono::Utc::now()).await?;

                out(format_args!("{n} dead letter(s) queued again\n"))?;
                return Ok(());
            }
            let dead = jobs::dead_letters(&db, store.as_ref(), None).await?;
            if dead.is_empty() {
                out(format_args!("no dead letters\n"))?;
            } else {
                for j in dead {
                    say(format_args!(
                        "#{} {} {} attempts={} {} — {}",
                        j.id,
                        j.store_id,
                        j.kind,
                        j.attempts,
                        j.payload,
                        j.last_error.unwrap_or_default()
                    ))?;
                }
            }
            Ok(())
        }
        Command::Export { store, .. } => {
            let store = StoreId::parse(&store)?;
            let db = db::connect_and_migrate(&settings.database).await?;
            known_store(&db, &store).await?;
            out(format_args!(
                "{}",
                links::to_csv(&store::links::current(&db, &store).await?)
            ))?;
            Ok(())
        }
        Command::Stores {
            action: StoresAction::List { json },
        } => {
            let db = db::connect_and_migrate(&settings.database).await?;
            let list = stores::list(&db).await?;
            if json {
                out(format_args!("{}\n", serde_json::to_string_pretty(&list)?))?;
            } else if list.is_empty() {
                out(format_args!("no stores yet\n"))?;
            } else {
                for s in list {
                    say(format_args!(
                        "{:<20} {:<12} {:<4} affiliates={:<5} program={} {}",
                        s.id,
                        s.status,
                        s.currency,
                        s.affiliates,
                        if s.program_connected {
                            "connected"
                        } else {
                            "-"
                        },
                        s.name
                    ))?;
                }
            }
            Ok(())
        }
    }
}
