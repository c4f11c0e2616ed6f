//! The control plane's operations: the generated service traits of
//! `berth-wire` implemented with the rules of `berth-core` over the
//! documents of `berth-store`. No HTTP here: the server decodes, checks
//! auth and calls in; tests can call in directly.

pub mod ec2;
pub mod ecs;
pub mod events;
mod locks;
pub mod logs;
mod records;
pub mod secrets;
pub mod sqs;
pub mod sts;

pub use ec2::Ec2;
pub use ecs::Ecs;
pub use events::Events;
pub use logs::Logs;
pub use secrets::{ParameterStore, SecretsManager, Vault};
pub use sqs::Sqs;
pub use sts::Sts;
