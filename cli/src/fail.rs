//! The CLI's error: a message for a person and an exit code for a script.

use merchant_ai::{Error, ErrorKind};

/// Runtime or provider error.
pub const RUNTIME: u8 = 1;
/// Usage or config error.
pub const USAGE: u8 = 2;
/// Input data error.
pub const DATA: u8 = 3;

/// A failure with its exit code.
#[derive(Debug)]
pub struct CliError {
    /// 1, 2 or 3 (see the crate docs).
    pub code: u8,
    /// What went wrong, naming the file, line or key.
    pub message: String,
}

/// The CLI's result.
pub type CliResult<T> = std::result::Result<T, CliError>;

impl CliError {
    /// A runtime error (exit 1).
    pub fn runtime(m: impl std::fmt::Display) -> Self {
        CliError {
            code: RUNTIME,
            message: m.to_string(),
        }
    }
    /// A usage or config error (exit 2).
    pub fn usage(m: impl std::fmt::Display) -> Self {
        CliError {
            code: USAGE,
            message: m.to_string(),
        }
    }
    /// An input data error (exit 3).
    pub fn data(m: impl std::fmt::Display) -> Self {
        CliError {
            code: DATA,
            message: m.to_string(),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::ConfigInvalid | ErrorKind::InvalidRequest => USAGE,
            _ => RUNTIME,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}
