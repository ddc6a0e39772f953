//! Integration tests of `handoff serve`: one test binary (so the crate is
//! linked once), a module per concern. `helpers` starts servers in process
//! (`spawn_app`) and the real binary (`start_binary`).

mod fake_crm;
mod helpers;

mod auth;
mod binary;
mod browser;
mod config;
mod crash;
mod crm_hubspot;
mod crm_mapping;
mod crm_pipedrive;
mod delivery;
mod embed_example;
mod fake_sinks;
mod health;
mod health_report;
mod hydration;
mod ingest;
mod limits;
mod metrics;
mod reload;
mod reload_load;
mod web;
