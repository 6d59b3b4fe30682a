//! switchyard's HTTP API, storage and runtime (the `switchyard` binary is a thin CLI over it).

pub mod analytics;
pub mod app;
pub mod boot;
pub mod campaign_runtime;
pub mod contacts;
pub mod directory;
pub mod grants;
pub mod http;
pub mod ids;
pub mod inbound_plan;
pub mod interval_carry;
pub mod journal;
pub mod live_state;
pub mod model;
pub mod openapi;
pub mod recording_objects;
pub mod routes;
pub mod runtime;
pub mod spec;
pub mod spec_campaign;
pub mod spec_recording;
pub mod store;
pub mod wallboard;
pub mod webhooks;
