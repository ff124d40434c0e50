//! Typed errors of the library. The binary maps them to exit codes:
//! [`Error::exit_code`] is 2 for bad input and 1 for a failure during a run.

use std::path::PathBuf;

/// Where a scenario value came from: a file position or a `--set` override.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A file, with the 1-based line and column where the parser knows them.
    File { path: PathBuf, line: Option<usize>, column: Option<usize> },
    /// A command-line `--set key=value`.
    Override(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { path, line: Some(l), column: Some(c) } => {
                write!(f, "{}:{l}:{c}", path.display())
            }
            Origin::File { path, line: Some(l), column: None } => write!(f, "{}:{l}", path.display()),
            Origin::File { path, .. } => write!(f, "{}", path.display()),
            Origin::Override(s) => write!(f, "--set {s}"),
        }
    }
}

/// A scenario that cannot be used, with everything a user needs to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub origin: Origin,
    /// Dotted path of the field, e.g. `network.rb_count`.
    pub field: String,
    /// The offending value as written (may be empty for syntax errors).
    pub value: String,
    /// What is allowed: a range, a type or the choices.
    pub allowed: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`", self.field)?;
            if !self.value.is_empty() {
                write!(f, " = {}", self.value)?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.allowed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Config(Vec<ConfigError>),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A bad input that is not a scenario (a problem file, a CLI argument).
    #[error("{0}")]
    Input(String),
    /// A numeric checkpoint caught NaN, infinity or an impossible state.
    #[error("numeric checkpoint `{checkpoint}` failed: {detail}")]
    Numeric { checkpoint: &'static str, detail: String },
    /// An iterative solver stopped at its bound without converging (the
    /// bound is a scenario setting the message names).
    #[error("round {round}, cell {cell}: the allocator did not converge: {detail}")]
    NotConverged { round: u32, cell: u32, detail: String },
    #[error("trace writer: {0}")]
    Trace(String),
    /// Something failed while running that the user's input did not cause:
    /// a checkpoint that cannot be written, a thread pool that cannot be
    /// built, a backend that fails mid-run.
    #[error("{what}: {detail}")]
    Failure { what: String, detail: String },
}

impl Error {
    /// 2 for bad input or a setting the user can change, 1 for a failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            // Non-convergence names the settings that bound the solver.
            Error::Config(_) | Error::Input(_) | Error::NotConverged { .. } => 2,
            // A path the user can fix: missing, a folder, unreadable, not text.
            Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::InvalidData
                ) =>
            {
                2
            }
            _ => 1,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    /// A run-time failure (exit 1): `what` failed because of `detail`.
    pub fn failure(what: impl Into<String>, detail: impl ToString) -> Error {
        Error::Failure { what: what.into(), detail: detail.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
