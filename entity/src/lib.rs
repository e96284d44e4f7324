//! sea-orm entities, one module per table. Plain data: behaviour lives in the app's domain modules.
pub mod affiliates;
pub mod amazon_connections;
pub mod landing_pages;
pub mod links;
pub mod oauth_states;
pub mod program_credentials;
pub mod sessions;
pub mod stores;
pub mod webhook_inbox;
