//! The one startup seam: `Application::build` is what `main` runs and what every test spawns.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use actix_session::{SessionMiddleware, config::PersistentSession};
use actix_web::{
    App, HttpServer,
    cookie::{Key, SameSite, time::Duration as CookieDuration},
    dev::Server,
    middleware::{Logger, from_fn},
    web,
};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{
    clients::{
        amazon::{AmazonApp, Fallback},
        program::ProgramApp,
        resolve::{SharedLookup, SystemLookup},
    },
    config::Settings,
    crypto::{self, TokenCipher},
    db,
    domain::clock::{SharedClock, SystemClock},
    flows::{Deps, handlers, roster, scheduler},
    jobs::{
        retry::Schedule,
        worker::{Worker, WorkerConfig},
    },
    metrics::{Metrics, requests},
    sandbox,
    state::AppState,
    store::stores,
    web::{routes, session::DbSessionStore},
    webhooks::{intake::Intake, verify::Verifier},
};

pub struct Application {
    address: SocketAddr,
    server: Server,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As `build`, with the clock tests control.
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        Self::build_with(settings, clock, Arc::new(SystemLookup)).await
    }

    /// As `build`, with the clock and the name lookup of program calls tests control.
    pub async fn build_with(
        mut settings: Settings,
        clock: SharedClock,
        lookup: SharedLookup,
    ) -> anyhow::Result<Self> {
        let address = (settings.server.host.clone(), settings.server.port);
        let listener = TcpListener::bind((address.0.as_str(), address.1))
            .with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
        let address = listener.local_addr()?;
        let port = address.port();
        // `public_url` with port 0 means "wherever we listen" (tests, throwaway runs).
        if settings.server.public_url.port() == Some(0) {
            let _ = settings.server.public_url.set_port(Some(port));
        }
        let state = prepare_with(settings, clock, lookup).await?;
        let server = serve(listener, state.clone())?;
        Ok(Self {
            address,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address a browser on this machine opens: the bound one, with a wildcard host
    /// (`0.0.0.0`, `::`) told as loopback, which it also answers on.
    pub fn browser_url(&self) -> String {
        let ip = match self.address.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}/", SocketAddr::new(ip, self.address.port()))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or SIGINT (Ctrl-C), with the background workers beside it when
    /// `[workers] enabled`. Either signal cuts off the workers' running jobs (each keeps its
    /// claim and is taken up again after its lease; a sync's run reads "abandoned"), then stops
    /// the server gracefully: in-flight requests finish within `server.shutdown_timeout_secs`.
    /// A second signal exits at once.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let settings = self.state.deps.settings.clone();
        let workers = settings.workers.enabled.then(|| {
            // Several job loops: pushes wait on the program's answers, not on each other.
            let mut loops: Vec<_> = (0..settings.jobs.concurrency)
                .map(|_| tokio::spawn(self.state.worker.clone().run(stop.clone())))
                .collect();
            loops.push(tokio::spawn(scheduler::run(
                self.state.deps.clone(),
                stop.clone(),
            )));
            (
                tokio::spawn(sweep_loop(self.state.deps.clone(), stop.clone())),
                loops,
            )
        });
        let handle = self.server.handle();
        let mut served = Box::pin(self.server);
        let ended = tokio::select! {
            ended = &mut served => Some(ended),
            signal = stop_signal() => {
                tracing::info!(signal, "stopping gracefully; a second signal exits at once");
                tokio::spawn(async {
                    let signal = stop_signal().await;
                    tracing::warn!(signal, "second signal: exiting now");
                    // The shell's code for death by that signal: 128 + its number.
                    std::process::exit(if signal == "SIGTERM" { 143 } else { 130 });
                });
                None
            }
        };
        stop.cancel();
        if let Some((sweep, loops)) = workers {
            sweep.await.context("background sweep panicked")?;
            // An interrupted job keeps its lease and is taken up again after it expires.
            for job_loop in loops {
                job_loop.await.context("job worker panicked")?;
            }
        }
        // A token refresh a cut-off job started finishes and is saved (bounded, as the server's
        // grace period is): Amazon may have rotated the refresh token.
        let unstoppable = &self.state.deps.unstoppable;
        unstoppable.close();
        let grace = Duration::from_secs(settings.server.shutdown_timeout_secs);
        if tokio::time::timeout(grace, unstoppable.wait())
            .await
            .is_err()
        {
            tracing::warn!("a token refresh did not finish within the shutdown grace period");
        }
        let served = match ended {
            Some(ended) => ended,
            // The server handles the stop while it is polled: both at once.
            None => tokio::join!(handle.stop(true), served).1,
        };
        served.context("HTTP server failed")
    }
}

/// Database, migrations, keys and verifier: everything but the socket.
pub async fn prepare(settings: Settings, clock: SharedClock) -> anyhow::Result<AppState> {
    prepare_with(settings, clock, Arc::new(SystemLookup)).await
}

/// As `prepare`, with the name lookup program calls resolve hosts with (through the guard that
/// refuses private addresses, DESIGN §7).
pub async fn prepare_with(
    settings: Settings,
    clock: SharedClock,
    lookup: SharedLookup,
) -> anyhow::Result<AppState> {
    let db = db::connect_and_migrate(&settings.database)
        .await
        .context("database unavailable or migration failed")?;
    let key = crypto::load_key(&settings)?;
    let cipher = TokenCipher::new(key.bytes);
    // A new key is kept only if it fits: written by a refused start, it would be mistaken for
    // the one to back up.
    crate::flows::lifecycle::check_key(&db, &cipher).await?;
    key.keep()?;
    let mut secrets = settings.platform.webhook_secrets.clone();
    let sandbox = if settings.sandbox.enabled {
        let dir = settings
            .security
            .key_file
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."));
        // The sandbox plays the platform with a secret of its own, never the real platform's:
        // what it signs is accepted beside the configured secrets, and only while it is on.
        let path = dir.join("sandbox-webhook-secret");
        let own = sandbox::webhook_secret(&path).context("sandbox webhook secret")?;
        secrets.push(own.clone());
        tracing::info!(path = %path.display(), "sandbox: its platform webhooks are signed with the secret in this file");
        Some(sandbox::Sandbox::new(sandbox::SandboxConfig {
            public_url: settings.server.public_url.clone(),
            seed: settings.sandbox.seed,
            webhook_secret: own,
            state_file: settings
                .sandbox
                .persist
                .then(|| dir.join("sandbox-state.json")),
            clock: clock.clone(),
        })?)
    } else {
        None
    };
    let verifier = Verifier::new(&secrets, settings.platform.webhook_tolerance_secs)?;
    // With the sandbox on and no Login with Amazon client configured, the sandbox plays Amazon.
    let fallback = sandbox.as_ref().map(|s| Fallback {
        client_id: sandbox::CLIENT_ID.to_owned(),
        client_secret: sandbox::CLIENT_SECRET.into(),
        authorize: s.authorize_url(),
        token: s.token_url(),
        api: s.api_url(),
    });
    let redirect_uri = settings.server.public_url.join("/oauth/amazon/callback")?;
    let metrics = Arc::new(Metrics::default());
    let amazon = AmazonApp::from_settings(&settings.amazon, redirect_uri, fallback)?
        .observed_by(metrics.upstream_observer());
    // The sandbox's own host is allowed while it is on (`Settings::program_hosts`).
    let program = ProgramApp::guarded(&settings.program, settings.program_hosts(), lookup)?
        .observed_by(metrics.upstream_observer());
    let jobs = &settings.jobs;
    let config = WorkerConfig {
        schedule: Schedule {
            delays: jobs
                .retry_schedule_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            overload_floor: Duration::from_secs(jobs.overload_floor_secs),
        },
        lease: Duration::from_secs(jobs.lease_secs),
        heartbeat: Duration::from_secs(jobs.heartbeat_secs),
        poll_interval: Duration::from_millis(jobs.poll_interval_ms),
    };
    let deps = Deps {
        db,
        clock,
        cipher: Arc::new(cipher),
        amazon: Arc::new(amazon),
        program: Arc::new(program),
        token_locks: Arc::default(),
        settings: Arc::new(settings),
        metrics: metrics.clone(),
        unstoppable: tokio_util::task::TaskTracker::new(),
    };
    let worker = Worker {
        db: deps.db.clone(),
        clock: deps.clock.clone(),
        config,
        registry: Arc::new(handlers::registry(&deps)),
        metrics: metrics.clone(),
    };
    Ok(AppState {
        intake: Intake::start(deps.clone()),
        deps,
        verifier: Arc::new(verifier),
        worker,
        sandbox,
        metrics,
    })
}

fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let settings = state.deps.settings.clone();
    let cookie_key = Key::from(&state.deps.cipher.derive("session-cookie"));
    let secure = settings.server.public_url.scheme() == "https";
    let ttl = CookieDuration::minutes(settings.security.session_ttl_minutes);
    let body_limit = settings.server.body_limit_bytes;
    let webhook_limit = settings.platform.webhook_body_limit_bytes;
    let frame_ancestors = settings.platform.frame_ancestors();
    let data = web::Data::new(state.clone());
    let counted = web::Data::from(state.metrics.clone());
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(
            DbSessionStore::new(data.deps.db.clone(), data.deps.clock.clone()),
            cookie_key.clone(),
        )
        .cookie_name("ab_session".to_owned())
        .cookie_http_only(true)
        .cookie_secure(secure)
        .cookie_same_site(SameSite::Lax)
        .session_lifecycle(PersistentSession::default().session_ttl(ttl))
        .build();
        App::new()
            .wrap(sessions)
            // Paths only: query strings carry signatures and OAuth codes.
            .wrap(
                Logger::new("%{route}xi %s %Dms").custom_request_replace("route", |req| {
                    format!("{} {}", req.method(), req.path())
                }),
            )
            // Outermost: a request's latency includes the session store and the logger.
            .wrap(from_fn(requests::observe))
            .app_data(data.clone())
            .app_data(counted.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::FormConfig::default().limit(body_limit))
            .app_data(web::JsonConfig::default().limit(body_limit))
            .configure(|cfg| {
                if let Some(sandbox) = data.sandbox.clone() {
                    sandbox::configure(cfg, sandbox);
                }
                routes(cfg, webhook_limit, &frame_ancestors);
            })
    })
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    // `run_until_stopped` listens: actix alone stops at once, in-flight requests dropped, on SIGINT.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// SIGTERM or SIGINT, whichever comes first: its name.
async fn stop_signal() -> &'static str {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    }
}

/// Background upkeep: retention (stores uninstalled longer than `retention_days`, expired
/// sessions) and a periodic roster read that catches affiliate changes webhooks missed.
async fn sweep_loop(deps: Deps, stop: CancellationToken) {
    let interval = deps.settings.workers.sweep_interval();
    let roster_every = deps.settings.workers.roster_interval();
    let mut last_roster: Option<tokio::time::Instant> = None;
    loop {
        let now = deps.clock.now();
        match stores::purge_expired(&deps.db, now, deps.settings.platform.retention_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "retention sweep"),
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
        if last_roster.is_none_or(|t| t.elapsed() >= roster_every) {
            last_roster = Some(tokio::time::Instant::now());
            // Cut off by a stop like a job: each store's roster is applied in one transaction.
            tokio::select! {
                () = stop.cancelled() => return,
                () = roster::sync_connected(&deps) => {}
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval.max(Duration::from_secs(60))) => {}
        }
    }
}
