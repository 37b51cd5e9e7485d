//! Every command and flag, in one place.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "flywheel", version, about = "Continuous training and delivery of ML models, in one binary", long_about = None)]
pub struct Cli {
    /// Folder holding the metadata store, artifacts and logs.
    #[arg(long, global = true, env = "FLYWHEEL_HOME", default_value = ".flywheel")]
    pub home: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the bike-sharing example end to end (its data is inside the
    /// binary): train on 2011 and push, serve, replay 2012 as live traffic,
    /// and watch a triggered run's model go out as a canary and take over.
    Quickstart(QuickstartArgs),
    /// Check a pipeline file, or a deployment file and the pipeline it
    /// names, without running anything: every problem at once.
    Check {
        pipeline: PathBuf,
        /// Print the compiled pipeline, or the errors, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a pipeline.
    Run(RunArgs),
    /// Finish an unfinished run: re-run only the steps that did not succeed.
    Resume {
        run: i64,
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Runs recorded in the metadata store.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Everything upstream and downstream of an artifact (`12`) or a model version (`name@3`, or `name` for the latest).
    Lineage {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Statistics of a dataset (CSV, CSV.gz or Parquet), in one streaming pass.
    Stats(StatsArgs),
    /// Data schemas: `flywheel schema infer DATA -o schema.toml`.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Check data against a schema; exits 1 when an error anomaly is found.
    Validate(ValidateArgs),
    /// Compare two datasets column by column: drift (previous vs current) or
    /// skew (training vs serving), with Evidently's default methods.
    Drift(DriftArgs),
    /// Signals runs recorded for triggers (e.g. drift: "retraining recommended"), newest first.
    Signals {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Batch prediction: a model (file or registered) on a data file; the
    /// output has the input columns plus the predictions.
    Predict(PredictArgs),
    /// Serve registered models over HTTP: the Open Inference Protocol v2
    /// (`/v2/...`, as KServe and Triton define it) and MLflow's scoring
    /// format (`/invocations`), until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Export a model's logged predictions (from `flywheel serve`) joined
    /// with the feedback labels sent for them (`label`, empty when none).
    Logs(LogsArgs),
    /// Run deployments unattended until SIGTERM: their models served, the
    /// traffic monitored in windows, their pipelines run when a trigger
    /// fires (at most one run per deployment at a time).
    Up(UpArgs),
    /// What the home deploys, serves, monitors and runs: the `up` serving
    /// it, each deployment's aliases, canary, newest window and run.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Ask for a run of a deployment now: its `on_demand` trigger starts it
    /// at `flywheel up`'s next tick (or when `up` next runs).
    Trigger {
        /// The deployment, by name, as `flywheel up` recorded it.
        deployment: String,
        /// Why, as the run will record it.
        #[arg(long, default_value = "asked for by hand")]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Monitoring of served models: windows of the prediction log scored
    /// for drift from the training data and the window before, and for the
    /// metric from feedback labels.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// Send a dataset's rows to a running server as live traffic, in time
    /// order, and post their labels as feedback. Exits 1 when a request failed.
    Replay(ReplayArgs),
    /// Registered model versions; `inspect` and `export` model files.
    Models {
        #[command(subcommand)]
        command: Option<ModelsCommand>,
        #[arg(long)]
        json: bool,
    },
    /// Check the home: database integrity, artifacts against their digests,
    /// stale runs and executions, unrecorded blobs, leftover temporary files.
    /// Exit 0 when healthy, 1 when problems remain, 3 when it cannot be opened.
    Doctor {
        /// Fix what is safe: remove corrupt blobs (their producers run again),
        /// close stale runs and executions, remove leftovers and unrecorded blobs.
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
    /// The built-in components and their parameters.
    Components {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// What a model file holds: task, signature, transform, estimator, metadata.
    Inspect {
        /// A Flywheel model file (as `models export` writes)
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Point an alias (e.g. `production`) at a version; the move is audited.
    Alias {
        /// `name@version`
        model: String,
        /// The alias: letters, digits, `-`, `_`, `.`
        alias: String,
        /// Why, for the audit log
        #[arg(long)]
        reason: Option<String>,
        /// Move only if the alias still points at this version (`none`: at
        /// nothing yet); otherwise nothing moves and the exit code is 4
        #[arg(long, value_name = "VERSION|none", value_parser = parse_expected)]
        expect: Option<Expected>,
    },
    /// Every version of a model: metrics, blessing, approval, aliases,
    /// signature, tags and the run that made it.
    Show {
        /// The registered model's name
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// What happened to one model, oldest first: registrations, alias
    /// moves, approvals, tags, descriptions.
    History {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a version for production (who, when and why are recorded).
    Approve {
        /// `name@version` or `name@alias`
        model: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a version (who, when and why are recorded).
    Reject {
        /// `name@version` or `name@alias`
        model: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Set tags (`KEY=VALUE`) on a version, or remove them with `--remove KEY`.
    Tag {
        /// `name@version` or `name@alias`
        model: String,
        /// `KEY=VALUE` pairs
        tags: Vec<String>,
        /// Tag keys to remove
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
    },
    /// Set a version's description.
    Describe {
        /// `name@version` or `name@alias`
        model: String,
        text: String,
    },
    /// The registry's audit log (alias moves, approvals, tags), newest first.
    Audit {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Register an ONNX file made elsewhere (scikit-learn via skl2onnx,
    /// PyTorch, …) as a new version of NAME, to evaluate, compare and serve.
    Import {
        /// The registered model's name
        name: String,
        /// The `.onnx` file
        file: std::path::PathBuf,
        /// JSON: {"inputs": ["col1", …], "target": "label"}; read from the
        /// file's metadata_props[`flywheel.signature`] when left out
        #[arg(long)]
        signature: Option<std::path::PathBuf>,
    },
    /// Copy a registered model version out of the store, stamped with its
    /// name, version and training run.
    Export {
        /// `name` (latest version), `name@version` or `name@alias`
        model: String,
        /// Where to write the model file
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// The most recent runs.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run: its parameters, steps, artifacts and logs.
    Show {
        run: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Deployment files; none: those recorded in the home by an earlier `up`.
    pub deployments: Vec<PathBuf>,
    /// Where to serve (default: the first deployment's `[serving] addr`, or 127.0.0.1:8080).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// How often new windows are scored and triggers decided, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub tick_ms: u64,
}

#[derive(Subcommand, Debug)]
pub enum MonitorCommand {
    /// Score and record the windows logged since the last, with a
    /// deployment file's monitoring settings (`flywheel up` does this on
    /// its own as predictions are logged).
    Update {
        /// The deployment file.
        deployment: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The latest windows recorded, their scores and alerts.
    Status {
        /// One model (default: every model monitored).
        model: Option<String>,
        /// Windows shown (merged windows, with --merge).
        #[arg(long, default_value_t = 10)]
        limit: i64,
        /// Merge every N consecutive windows of one version into one, from
        /// the sketches the windows keep (no rows read again): drift from
        /// training and from the merged window before, and the metric over
        /// all their labeled rows.
        #[arg(long, value_name = "N", requires = "model", value_parser = clap::value_parser!(u32).range(1..))]
        merge: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// A model's windows over time as a self-contained HTML page: its metric
    /// against the bound, drift, the metric per slice, and the runs and
    /// alias moves between them.
    Report {
        /// The model.
        model: String,
        /// Where to write the page.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// The newest windows shown.
        #[arg(long, default_value_t = 500)]
        limit: i64,
    },
}

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Steps run at the same time (default: number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run every step even when a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Only the first run (on all the data, as `flywheel run` would): no
    /// serving, replay or retraining.
    #[arg(long)]
    pub no_loop: bool,
    /// Replay only the first N rows of each of the two stretches of 2012
    /// traffic (a shorter demo; the tests use it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub traffic_rows: Option<u64>,
    /// How long to wait for each act of the loop, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub act_timeout: u64,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub pipeline: PathBuf,
    /// Override a pipeline parameter: `--set NAME=VALUE` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Run every step even when a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Steps run at the same time (default: number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    pub fn overrides(&self) -> Result<Vec<(String, String)>, crate::Failure> {
        self.set
            .iter()
            .map(|s| match s.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(crate::fail(2, format!("--set {s}: write it as NAME=VALUE"))),
            })
            .collect()
    }

    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| flywheel_orchestrator::RunOptions::default().jobs).max(1)
    }
}

#[derive(Args, Debug)]
pub struct DriftArgs {
    /// The reference data (CSV, CSV.gz or Parquet), e.g. the training data.
    pub reference: PathBuf,
    /// The current data, e.g. recent serving data.
    pub current: PathBuf,
    /// Method for one column: `--method COLUMN=METHOD` (wasserstein, jensenshannon, psi, ks, chisquare, z, linf).
    #[arg(long = "method", value_name = "COLUMN=METHOD")]
    pub methods: Vec<String>,
    /// Threshold for one column: `--threshold COLUMN=VALUE`.
    #[arg(long = "threshold", value_name = "COLUMN=VALUE")]
    pub thresholds: Vec<String>,
    /// Method for every column not given `--method`.
    #[arg(long, value_name = "METHOD")]
    pub stattest: Option<String>,
    /// Threshold for every column not given `--threshold`.
    #[arg(long, value_name = "VALUE")]
    pub stattest_threshold: Option<f64>,
    /// Only these columns (comma-separated); `NAME=TYPE` entries declare a
    /// column's type instead (int, float, string, bool, timestamp).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// The CSV delimiter: `,` `;` `tab` `|` (default: detected).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Values read as missing (comma-separated; default: empty, NA, N/A, NaN, nan, null, NULL, None).
    #[arg(long, value_delimiter = ',')]
    pub missing_values: Option<Vec<String>>,
    /// The dataset drifts when at least this share of columns drift (default 0.5).
    #[arg(long, value_name = "SHARE")]
    pub drift_share: Option<f64>,
    /// Exit with code 1 when the dataset drifts.
    #[arg(long)]
    pub fail_on_drift: bool,
    /// Also write a self-contained HTML report (histograms, scores, thresholds).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A model file, or a registered model: `name`, `name@version`, `name@alias`.
    pub model: String,
    /// The data (CSV, CSV.gz or Parquet) with the model's input columns.
    pub data: PathBuf,
    /// Where to write the predictions: Parquet, or CSV for a `.csv` name.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Worker threads (default: number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Column types default to the model's signature.
    #[command(flatten)]
    pub read: DataArgs,
    /// Print the summary (rows, seconds, rows per second) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Models to serve: `NAME` (its `production` alias), `NAME@ALIAS` or
    /// `NAME@VERSION`. None: every model that has a `production` alias.
    /// Name a model more than once to split its traffic by weight, and add
    /// a shadow that gets a copy of every request:
    /// `bikes@production:90 bikes@canary:10 bikes@challenger:shadow`.
    /// The server follows the aliases: when one moves, the version it points
    /// at is loaded, warmed and swapped in without dropping a request.
    pub models: Vec<String>,
    /// Address to listen on (`HOST:PORT`; port 0 picks a free one). Loopback
    /// unless told otherwise.
    #[arg(long, default_value = flywheel_serve::DEFAULT_ADDR)]
    pub addr: String,
    /// How often to look in the registry for aliases that moved, in milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub poll_ms: u64,
    /// How long a request body may take to arrive (then 408), and a
    /// prediction of over 256 rows to run (then 503), in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// Prediction requests answered at once; more are refused with 503 and
    /// `Retry-After` instead of queueing. Endpoints that change the server
    /// (a split, feedback) ask for `Authorization: Bearer $FLYWHEEL_TOKEN`
    /// when FLYWHEEL_TOKEN is set.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_in_flight: u64,
    /// Log this fraction of requests (0 to 1; default 1, every request):
    /// `RATE` for every model, `MODEL=RATE` for one; repeatable.
    #[arg(long = "log-sample", value_name = "[MODEL=]RATE")]
    pub log_sample: Vec<String>,
    /// Log no predictions (and take no feedback).
    #[arg(long, conflicts_with = "log_sample")]
    pub no_log: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The model whose logged predictions to export.
    pub model: String,
    /// Requests at or after this time (ISO 8601: `2026-11-30`,
    /// `2026-11-30T08:00`, `…Z`, `…+02:00`; no zone means UTC).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Requests before this time (a date alone: up to the end of that day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Write to FILE (Parquet for `.parquet`, CSV otherwise) instead of CSV on stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The data file (CSV, Parquet, JSON); it must have every input of the model.
    pub data: PathBuf,
    /// The server: http://HOST:PORT (what `flywheel serve` printed).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The model to send to (default: the server's only model).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Rows per second (default: as fast as the server answers).
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Post this column's values as feedback labels for the rows sent.
    #[arg(long, value_name = "COLUMN")]
    pub labels: Option<String>,
    /// Send the rows in the order of this column (a date, time or number);
    /// rows without one go last. Default: the file's order.
    #[arg(long, value_name = "COLUMN")]
    pub time_column: Option<String>,
    /// Send only the first N rows (in time order).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Rows per request.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,
    /// Requests in flight at once, one connection each. With 1, rows reach
    /// the server in time order; with N, only within N of each other.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
    /// Bearer token for feedback, when the server has one.
    #[arg(long, env = "FLYWHEEL_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The data file.
    pub data: PathBuf,
    /// How many most frequent values to list per column.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Worker threads (default: number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub read: DataArgs,
    /// Also write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print the statistics as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// Infer a schema (TOML) from data, to curate and commit.
    Infer {
        data: PathBuf,
        /// Write the schema here (atomically) instead of to stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// A text column with at most this many distinct values gets a category domain.
        #[arg(long, default_value_t = 50)]
        max_categories: usize,
        #[command(flatten)]
        read: DataArgs,
    },
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    pub data: PathBuf,
    /// The schema file (TOML).
    #[arg(long)]
    pub schema: PathBuf,
    /// The environment the data comes from (e.g. SERVING), as declared in the schema.
    #[arg(long)]
    pub environment: Option<String>,
    #[command(flatten)]
    pub read: DataArgs,
    /// Print the anomalies as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a data file is read: the flags every command that reads data takes.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Column types: `--columns NAME=TYPE,...` (int, float, string, bool, timestamp); others are inferred.
    #[arg(long = "columns", value_delimiter = ',', value_name = "NAME=TYPE")]
    pub columns: Vec<String>,
    /// The CSV delimiter: `,` `;` `tab` `|` (default: detected).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Values read as missing (comma-separated; default: empty, NA, N/A, NaN, nan, null, NULL, None).
    #[arg(long, value_delimiter = ',')]
    pub missing_values: Option<Vec<String>>,
}

impl DataArgs {
    pub fn options(&self) -> Result<flywheel_data::table::ReadOptions, crate::Failure> {
        read_options(&self.columns, self.delimiter.as_deref(), self.missing_values.clone())
    }
}

/// `NAME=TYPE` pairs, a delimiter and missing-value markers as read options.
pub fn read_options(
    columns: &[String],
    delimiter: Option<&str>,
    missing_values: Option<Vec<String>>,
) -> Result<flywheel_data::table::ReadOptions, crate::Failure> {
    use flywheel_data::delimited::{declared_kind, parse_delimiter};
    let mut types = std::collections::BTreeMap::new();
    for c in columns {
        let Some((name, ty)) = c.split_once('=').filter(|(n, t)| !n.is_empty() && !t.is_empty()) else {
            return Err(crate::fail(
                2,
                format!("--columns {c}: write it as NAME=TYPE (int, float, string, bool, timestamp)"),
            ));
        };
        if declared_kind(ty).is_none() {
            return Err(crate::fail(
                2,
                format!("--columns {c}: unknown type `{ty}`; use int, float, string, bool or timestamp"),
            ));
        }
        types.insert(name.to_string(), ty.to_string());
    }
    let delimiter =
        delimiter.map(parse_delimiter).transpose().map_err(|e| crate::fail(2, format!("--delimiter: {e}")))?;
    Ok(flywheel_data::table::ReadOptions { columns: types, missing_values, delimiter, ..Default::default() })
}

/// Where an alias must still point for `models alias --expect` to move it.
#[derive(Debug, Clone, Copy)]
pub struct Expected(pub Option<i64>);

/// `--expect 3` or `--expect none`.
fn parse_expected(s: &str) -> Result<Expected, String> {
    if s == "none" {
        return Ok(Expected(None));
    }
    s.parse::<i64>()
        .map(|v| Expected(Some(v)))
        .map_err(|_| format!("`{s}`: give the version the alias must point at, or `none`"))
}
