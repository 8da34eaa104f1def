//! [`CliError`]: everything nicctl reports as a failure, each naming the thing and the reason.
use crate::config::{ApplyError, ConfigErrors, PlanError};
use crate::control::ControlError;
use crate::flow::FlowError;
use host_driver::DriverError;

/// Everything `nicctl` reports as a failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{file}: {} error{}:\n{}", .errors.0.len(), if .errors.0.len() == 1 { "" } else { "s" }, indent(&.errors.to_string()))]
    Config { file: String, errors: ConfigErrors },
    #[error("{file}: {error}")]
    Apply {
        file: String,
        error: Box<ApplyError>,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// A command or argument that cannot be carried out as given; the text says why.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Store(#[from] crate::cluster::StoreError),
    /// An answer that does not decode (from a control socket or the device).
    #[error("{0}")]
    Protocol(String),
    /// The VF token file (its message names it).
    #[error("VF token: {0}")]
    VfToken(std::io::Error),
    /// `nicctl up` could not bring its deployment up or serve it.
    #[error("{file}: {reason}")]
    Up { file: String, reason: String },
    /// A file nicctl writes (its path first).
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// nicctl's result.
pub type Result<T> = std::result::Result<T, CliError>;
