//! sea-orm entities, one module per table. Plain data: behaviour lives in the app's domain modules.
pub mod affiliates;
pub mod amazon_connections;
pub mod daily_figures;
pub mod figure_changes;
pub mod job_attempts;
pub mod jobs;
pub mod landing_pages;
pub mod links;
pub mod oauth_states;
pub mod order_versions;
pub mod orders;
pub mod program_credentials;
pub mod sessions;
pub mod stores;
pub mod sync_runs;
pub mod unmatched_figures;
pub mod webhook_inbox;
