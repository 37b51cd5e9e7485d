//! `Deployment`: a deployment file checked whole, every value typed and
//! with its defaults; what `flywheel up` runs and records.

use flywheel_pipeline::Pipeline;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    pub path: PathBuf,
    pub source: String,
    /// blake3 of the file's text.
    pub digest: String,
    pub pipeline: Pipeline,
    /// The pipeline's parameters as this deployment runs it (`params`).
    pub params: Vec<(String, String)>,
    /// The registered model the pipeline pushes, served and monitored.
    pub model: String,
    pub serving: Serving,
    pub monitoring: Monitoring,
    pub triggers: Vec<Trigger>,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub addr: Option<SocketAddr>,
    /// `(alias, weight)`, in the file's order.
    pub split: Vec<(String, u32)>,
    pub shadow: Option<String>,
    /// Share of requests logged.
    pub log_sample: f64,
}

/// A span of serving: a number of requests, or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    Requests(u64),
    Time(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitoring {
    pub window: Span,
    /// A window drifts when at least this share of its columns drift
    /// (Evidently's dataset drift).
    pub drift_share: f64,
    /// The columns watched; every input when `None`.
    pub columns: Option<Vec<String>>,
    /// The metric computed from feedback labels, and its bound.
    pub performance: Option<Bound>,
    /// Slices the metric is also computed on, each on its own.
    pub slices: Vec<flywheel_core::slice::SliceSpec>,
}

/// `metric OP value`, as `bless` thresholds are written (`rmse = "<= 120"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub metric: String,
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
}

impl Bound {
    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            Op::Ge => x >= self.value,
            Op::Gt => x > self.value,
            Op::Le => x <= self.value,
            Op::Lt => x < self.value,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// No second firing of this trigger within this time of the last.
    pub cooldown: Duration,
    pub when_busy: WhenBusy,
}

#[derive(Debug, Clone)]
pub enum TriggerKind {
    OnDemand,
    Schedule(Box<crate::cron::Schedule>),
    /// New or changed files matching `path` (a folder, or a glob), taken
    /// once unchanged for `settle`.
    NewData {
        path: PathBuf,
        settle: Duration,
    },
    /// The monitored drift over its threshold for `windows` windows in a row.
    Drift {
        windows: u32,
    },
    /// The monitored metric out of its bound for `windows` windows in a row.
    Performance {
        windows: u32,
    },
}

impl TriggerKind {
    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::OnDemand => "on_demand",
            TriggerKind::Schedule(_) => "schedule",
            TriggerKind::NewData { .. } => "new_data",
            TriggerKind::Drift { .. } => "drift",
            TriggerKind::Performance { .. } => "performance",
        }
    }
}

/// What a trigger does while a run of the pipeline is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// One run waits and starts after (several firings: still one).
    Queue,
    Skip,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub approval: Approval,
    /// Percent of traffic a canary gets.
    pub canary: u32,
    /// How long the canary must hold before it is promoted.
    pub hold: Span,
    /// Share of failed requests beyond which a canary is rolled back.
    pub max_error_rate: f64,
    /// How much worse than production the canary's metric may be (0.05: 5%).
    pub tolerance: f64,
    /// How long a canary may hold without a verdict (too little traffic to
    /// judge it) before it is rolled back: unattended, a canary must not
    /// block retraining for ever.
    pub max_hold: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Promoted by the canary's results.
    Auto,
    /// Held as canary until `flywheel models approve`.
    Manual,
}
