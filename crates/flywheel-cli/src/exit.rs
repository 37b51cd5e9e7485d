//! Exit codes, in one table: every error a library crate returns maps to
//! one code by an exhaustive match (no wildcard arm), so a new error variant
//! cannot reach the user without a decision about its code.
//!
//! 0 success; 1 a run or check found a problem (failed step, failed
//! validation); 2 bad input (usage, invalid pipeline, unknown run, artifact
//! or model, a file that is not a model); 3 the home folder or a store
//! cannot be used; 4 publishing was refused (not blessed, or the alias
//! moved since it was checked: a run's `push`, `models alias --expect`);
//! 130 cancelled.

use flywheel_orchestrator::OrchestratorError;

/// An error with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    /// The message already says where and that it is an error (pipeline diagnostics).
    pub(crate) located: bool,
}

pub(crate) fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into(), located: false }
}

impl Failure {
    pub(crate) fn from_pipeline(e: &flywheel_pipeline::PipelineError) -> Self {
        let located = matches!(e, flywheel_pipeline::PipelineError::Invalid(_));
        Failure { code: 2, message: e.to_string(), located }
    }
}

impl From<OrchestratorError> for Failure {
    fn from(e: OrchestratorError) -> Self {
        use OrchestratorError as E;
        let code = match &e {
            E::Pipeline(p) => return Failure::from_pipeline(p),
            E::NotResumable { .. } => 2,
            E::Metadata(m) => metadata_code(m),
            E::Registry(r) => registry_code(r),
            E::Artifacts(_) | E::Io(_) => 3,
        };
        fail(code, e.to_string())
    }
}

fn metadata_code(e: &flywheel_metadata::MetadataError) -> u8 {
    use flywheel_metadata::MetadataError as E;
    match e {
        E::NoRun(_) | E::NoArtifact(_) | E::NoModelVersion(_) => 2,
        E::AliasMoved { .. } => 4,
        E::Open { .. }
        | E::Lost { .. }
        | E::NotSqlite { .. }
        | E::Damaged { .. }
        | E::TooNew { .. }
        | E::Sql(_)
        | E::Json(_) => 3,
    }
}

fn registry_code(e: &flywheel_registry::RegistryError) -> u8 {
    use flywheel_registry::RegistryError as E;
    match e {
        E::Metadata(m) => metadata_code(m),
        E::Reference(_) | E::NoAlias { .. } | E::Read { .. } | E::BadModel(_) | E::NoLog(_) => 2,
        E::Artifacts(_) | E::Home { .. } | E::Stored { .. } | E::Write { .. } | E::Io(_) | E::Log(_) => 3,
    }
}

impl From<flywheel_registry::RegistryError> for Failure {
    fn from(e: flywheel_registry::RegistryError) -> Self {
        fail(registry_code(&e), e.to_string())
    }
}

impl From<flywheel_metadata::MetadataError> for Failure {
    fn from(e: flywheel_metadata::MetadataError) -> Self {
        OrchestratorError::from(e).into()
    }
}

impl From<flywheel_pipeline::PipelineError> for Failure {
    fn from(e: flywheel_pipeline::PipelineError) -> Self {
        Failure::from_pipeline(&e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        fail(3, format!("{e:#}"))
    }
}

/// Monitoring that cannot go on: a window that cannot be scored as
/// declared is bad input; a store that cannot be read, 3.
impl From<flywheel_monitor::MonitorError> for Failure {
    fn from(e: flywheel_monitor::MonitorError) -> Self {
        use flywheel_monitor::MonitorError as E;
        let code = match &e {
            E::Window(_) => 2,
            E::Data(_) | E::Store(_) => 3,
        };
        fail(code, e.to_string())
    }
}

/// `up` that cannot start or stopped: what it serves (`ServeError`'s
/// codes), a store (3), or nothing to run (2).
impl From<flywheel_daemon::DaemonError> for Failure {
    fn from(e: flywheel_daemon::DaemonError) -> Self {
        use flywheel_daemon::DaemonError as E;
        match e {
            E::Serve(s) => s.into(),
            E::Metadata(m) => m.into(),
            E::Registry(r) => r.into(),
            E::Monitor(m) => m.into(),
            E::Run(r) => r.into(),
            E::Nothing(_) => fail(2, e.to_string()),
            E::FirstRun(_) => fail(1, e.to_string()),
            E::Busy(_) => fail(3, e.to_string()),
        }
    }
}

/// A deployment file that cannot be read or is invalid: bad input.
impl From<flywheel_deploy::DeployError> for Failure {
    fn from(e: flywheel_deploy::DeployError) -> Self {
        use flywheel_deploy::DeployError as E;
        let located = match &e {
            E::Read { .. } => false,
            E::Invalid(_) => true,
        };
        Failure { code: 2, message: e.to_string(), located }
    }
}

/// A replay that could not start or go on: 2 for what the user gave (the
/// data, a flag, an address), 1 for a server that cannot be reached or
/// refused what the replay needs.
impl From<flywheel_client::ClientError> for Failure {
    fn from(e: flywheel_client::ClientError) -> Self {
        use flywheel_client::ClientError as E;
        let code = match &e {
            E::Url { .. } | E::Input(_) => 2,
            E::Data(_) => 2,
            // The server refusing what the user named (a model it does not serve).
            E::Refused { status, .. } if (400..500).contains(status) => 2,
            E::Connect { .. } | E::Request { .. } | E::Answer { .. } | E::Refused { .. } => 1,
        };
        fail(code, e.to_string())
    }
}

/// A server that could not start: 2 for what the user named (a model, an
/// address), 3 for a store or a port that cannot be used.
impl From<flywheel_serve::ServeError> for Failure {
    fn from(e: flywheel_serve::ServeError) -> Self {
        use flywheel_serve::ServeError as E;
        let code = match &e {
            E::Registry(r) => registry_code(r),
            E::Load { .. } | E::NoModels(_) | E::Address { .. } | E::LogSample(_) => 2,
            E::Bind { .. } | E::Internal(_) => 3,
            // Request refusals: never returned at start.
            E::NotFound(_) | E::BadRequest(_) | E::Unsupported(_) | E::TooLarge { .. } => 2,
            E::Unavailable(_) | E::Overloaded(_) | E::TimedOut(_) => 3,
            E::BodyTimedOut(_) => 2,
            E::Unauthorized(_) => 2,
        };
        fail(code, e.to_string())
    }
}
