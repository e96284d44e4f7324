//! Integration tests: the real application on a random port, a fresh migrated database per test
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), HTTP peers as doubles on real sockets.
mod amazon_client;
mod amazon_connect;
mod browser;
mod cli;
mod crash;
mod doubles;
mod helpers;
mod leases;
mod ledger_props;
mod lifecycle;
mod load_link;
mod merchant_headers;
mod migrations;
mod money_safety;
mod outside_text;
mod pages;
mod private_hosts;
mod retry_after;
mod roster;
mod sandbox_browser;
mod secrets_at_rest;
mod sync;
mod sync_cli;
mod sync_now;
mod webhooks;
mod world;
