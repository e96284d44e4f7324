//! The command line: `serve` (default), `migrate`, `stores list`.
use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{Application, config::Settings, db, ids::StoreId, links, stores, telemetry};

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
        Command::Export { store, links: true } => {
            let store = StoreId::parse(&store)?;
            let db = db::connect_and_migrate(&settings.database).await?;
            stores::find(&db, &store)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no store {store}"))?;
            print!("{}", links::to_csv(&links::list(&db, &store).await?));
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
