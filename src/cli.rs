//! The command line: `serve` (default), `migrate`, `stores list`.
use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{
    Application,
    config::Settings,
    db,
    domain::ids::StoreId,
    flows::{links, push, scheduler, status},
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
    Sync {
        #[arg(long)]
        store: String,
        /// First marketplace day (YYYY-MM-DD); default: 60 days ago.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// Last marketplace day (YYYY-MM-DD); default: yesterday.
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        /// Give up waiting for scheduled retries after this many seconds.
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
        /// Every affiliate's Amazon link.
        #[arg(long)]
        links: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the last N migrations (all of them without -n).
    Down {
        #[arg(short = 'n', long)]
        steps: Option<u32>,
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
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    match dispatch(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "serving");
            app.run_until_stopped().await
        }
        Command::Migrate { action } => {
            let db = db::connect(&settings.database).await?;
            match action.unwrap_or(MigrateAction::Up) {
                MigrateAction::Up => Migrator::up(&db, None).await?,
                MigrateAction::Down { steps } => Migrator::down(&db, steps).await?,
                MigrateAction::Status => Migrator::status(&db).await?,
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
            let app = crate::startup::prepare(
                settings,
                std::sync::Arc::new(crate::domain::clock::SystemClock),
            )
            .await?;
            stores::find(&app.deps.db, &store)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no store {store}"))?;
            scheduler::enqueue_now(&app.deps, &store, from.zip(to), "cli").await?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
            loop {
                app.worker.drain().await?;
                let status = status::store_status(&app.deps.db, &store).await?;
                let next = status
                    .next_job_at
                    .map(|at| (at - app.deps.clock.now()).to_std().unwrap_or_default());
                match next {
                    Some(wait) if std::time::Instant::now() + wait < deadline => {
                        eprintln!("waiting {}s for a scheduled retry…", wait.as_secs());
                        tokio::time::sleep(wait).await;
                    }
                    _ => {
                        println!("{}", serde_json::to_string_pretty(&status)?);
                        return Ok(());
                    }
                }
            }
        }
        Command::Ledger { store, json } => {
            let store = StoreId::parse(&store)?;
            let db = db::connect_and_migrate(&settings.database).await?;
            let entries = status::ledger(&db, &store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in entries {
                    println!(
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
                    );
                }
            }
            Ok(())
        }
        Command::DeadLetters { retry, store } => {
            let store = store.as_deref().map(StoreId::parse).transpose()?;
            let db = db::connect_and_migrate(&settings.database).await?;
            if retry {
                let n = push::retry_dead_letters(&db, store.as_ref(), chrono::Utc::now()).await?;

                println!("{n} dead letter(s) queued again");
                return Ok(());
            }
            let dead = jobs::dead_letters(&db, store.as_ref()).await?;
            if dead.is_empty() {
                println!("no dead letters");
            } else {
                for j in dead {
                    println!(
                        "#{} {} {} attempts={} {} — {}",
                        j.id,
                        j.store_id,
                        j.kind,
                        j.attempts,
                        j.payload,
                        j.last_error.unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Command::Export { store, links: true } => {
            let store = StoreId::parse(&store)?;
            let db = db::connect_and_migrate(&settings.database).await?;
            stores::find(&db, &store)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no store {store}"))?;
            print!(
                "{}",
                links::to_csv(&store::links::current(&db, &store).await?)
            );
            Ok(())
        }
        Command::Export { links: false, .. } => {
            anyhow::bail!("say what to export: --links")
        }
        Command::Stores {
            action: StoresAction::List { json },
        } => {
            let db = db::connect_and_migrate(&settings.database).await?;
            let list = stores::list(&db).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no stores yet");
            } else {
                for s in list {
                    println!(
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
                    );
                }
            }
            Ok(())
        }
    }
}
