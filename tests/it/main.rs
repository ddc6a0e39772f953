//! Integration tests of `handoff serve`: one test binary (so the crate is
//! linked once), a module per concern. `helpers` starts servers in process
//! (`spawn_app`) and the real binary (`start_binary`).

mod helpers;

mod auth;
mod binary;
mod browser;
mod config;
mod health;
mod health_report;
mod ingest;
mod limits;
mod reload;
mod web;
