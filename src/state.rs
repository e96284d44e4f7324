//! What every handler shares: the use cases' dependencies, the webhook verifier, the job worker,
//! the sandbox and the metrics. Only `web`, `webhooks`, `cli` and `startup` unpack it.
use std::sync::Arc;

use crate::{
    flows::Deps,
    jobs::worker::Worker,
    metrics::Metrics,
    sandbox::Sandbox,
    webhooks::{intake::Intake, verify::Verifier},
};

#[derive(Clone)]
pub struct AppState {
    pub deps: Deps,
    pub verifier: Arc<Verifier>,
    /// The webhooks' group-committing writer.
    pub intake: Intake,
    /// Runs queued jobs (syncs and pushes) through the handlers the flows registered.
    pub worker: Worker,
    /// The built-in fake Amazon and program, when `[sandbox] enabled`.
    pub sandbox: Option<Sandbox>,
    pub metrics: Arc<Metrics>,
}
