//! berth's domain model: the rules of ECS resources, independent of how
//! requests arrive (HTTP) or where state lives (SQL).
//!
//! The data shapes themselves are the generated wire types (`berth_wire::ecs`):
//! they *are* the ECS resource model, and duplicating ~600 shapes by hand
//! would only add drift. This crate adds what the shapes cannot say:
//! validation, defaults, ARNs, naming rules, pagination tokens, errors, the
//! task lifecycle, and the clock the control plane decides by.

pub mod account_settings;
pub mod arn;
pub mod clock;
pub mod error;
pub mod event_pattern;
pub mod fargate;
pub mod names;
pub mod pagination;
pub mod query;
pub mod service;
pub mod tags;
pub mod task;
pub mod task_definition;

pub use error::EcsError;
