//! `infra_validate`: the candidate model checked against the real serving
//! stack before it is pushed. The prediction server (`flywheel-serve`)
//! starts in this process on a free loopback port with the model; every
//! eval row goes through HTTP (`/invocations` and the OIP endpoint, in
//! batches) and must come back equal to the in-process prediction of the
//! same row (what `evaluate` computes); a short load test measures
//! requests/s, latency, errors and the memory the served model costs,
//! against declared targets. The verdict is an infra blessing `push`
//! checks. The server is stopped (graceful shutdown, port released) on
//! every path out: success, failure and cancellation.

mod compare;
mod load;

use crate::ml_error;
use compare::{Mismatches, compare};
use flywheel_client::{Conn, infer_body, invocations_body, read_infer, read_invocations};
use flywheel_core::{
    ArtifactType, CancelToken, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec,
    TypedComponent,
};
use flywheel_data::model_file::{load as load_model, model_frame};
use flywheel_data::table::{read_table, write_json};
use flywheel_ml::{Frame, Prediction};
use flywheel_serve::{AppState, ModelTable, Served};
use hyper::StatusCode;
use hyper::body::Bytes;
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct InfraValidate;

/// The name the candidate is served under.
const SERVED_NAME: &str = "candidate";
/// Rows per request when the eval rows are checked.
const BATCH_ROWS: usize = 500;
/// Distinct one-row requests the load test cycles through.
const LOAD_ROWS: usize = 1000;
/// How long the server may take to finish its requests once told to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "infra_validate",
    version: "1",
    description: "Starts the prediction server in-process on a free loopback port with the candidate model, checks that every eval row served over HTTP (/invocations and OIP v2) is predicted exactly as in-process, runs a short load test against declared targets, and writes an infra blessing that `push` checks.",
    params: &[
        ParamSpec {
            name: "concurrency",
            ty: ParamType::Int,
            required: false,
            doc: "load-test connections, each sending one-row requests back to back (default 4)",
        },
        ParamSpec {
            name: "duration_ms",
            ty: ParamType::Int,
            required: false,
            doc: "how long the load test runs, in milliseconds (default 1000)",
        },
        ParamSpec {
            name: "min_rps",
            ty: ParamType::Float,
            required: false,
            doc: "the fewest requests per second the load test must reach",
        },
        ParamSpec {
            name: "max_p99_ms",
            ty: ParamType::Float,
            required: false,
            doc: "the highest 99th-percentile latency allowed, in milliseconds",
        },
        ParamSpec {
            name: "max_memory_mb",
            ty: ParamType::Float,
            required: false,
            doc: "the most resident memory the served model may cost, in MiB: the process's VmRSS growth while loading the model plus from server start to its peak during the load test (Linux only; elsewhere this check fails as not measured)",
        },
        ParamSpec {
            name: "max_errors",
            ty: ParamType::Int,
            required: false,
            doc: "the most failed load-test requests allowed (default 0)",
        },
    ],
    inputs: &[
        PortSpec { name: "model", ty: ArtifactType::Model, doc: "the candidate model", optional: false },
        PortSpec {
            name: "data",
            ty: ArtifactType::Dataset,
            doc: "evaluation data: every row is sent to the server",
            optional: false,
        },
    ],
    outputs: &[PortSpec {
        name: "infra_blessing",
        ty: ArtifactType::InfraBlessing,
        doc: "whether the model passed, with every check and the figures",
        optional: false,
    }],
    dynamic_ports: false,
};

fn default_concurrency() -> u64 {
    4
}

fn default_duration_ms() -> u64 {
    1000
}

/// `infra_validate`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_concurrency")]
    pub concurrency: u64,
    #[serde(default = "default_duration_ms")]
    pub duration_ms: u64,
    pub min_rps: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub max_memory_mb: Option<f64>,
    #[serde(default)]
    pub max_errors: u64,
}

/// Ranges a run would refuse, before anything runs.
fn check_params(params: &Params) -> Vec<ParamProblem> {
    let mut out = Vec::new();
    if !(1..=256).contains(&params.concurrency) {
        out.push(ParamProblem::value(&["concurrency"], "`concurrency` must be between 1 and 256 connections"));
    }
    if !(100..=600_000).contains(&params.duration_ms) {
        out.push(ParamProblem::value(
            &["duration_ms"],
            "`duration_ms` must be between 100 (0.1 s) and 600000 (10 minutes)",
        ));
    }
    for (name, v) in
        [("min_rps", params.min_rps), ("max_p99_ms", params.max_p99_ms), ("max_memory_mb", params.max_memory_mb)]
    {
        if v.is_some_and(|v| !v.is_finite() || v <= 0.0) {
            out.push(ParamProblem::value(&[name], format!("`{name}` must be a number above 0")));
        }
    }
    out
}

/// The requests both checks send, built from the eval rows before the
/// server starts.
struct Work {
    /// (first row, `/invocations` body, OIP body) per batch.
    batches: Vec<(usize, Bytes, Bytes)>,
    load: load::Requests,
    concurrency: usize,
    duration: Duration,
}

impl Work {
    fn new(frame: &Frame, params: &Params) -> Self {
        let rows = frame.rows();
        let batches = (0..rows)
            .step_by(BATCH_ROWS)
            .map(|s| {
                let r = s..(s + BATCH_ROWS).min(rows);
                (s, invocations_body(frame, r.clone()), infer_body(frame, r))
            })
            .collect();
        let infer = format!("/v2/models/{SERVED_NAME}/infer");
        let load = (0..rows.min(LOAD_ROWS))
            .flat_map(|r| {
                [
                    ("/invocations".to_string(), invocations_body(frame, r..r + 1)),
                    (infer.clone(), infer_body(frame, r..r + 1)),
                ]
            })
            .collect();
        Work {
            batches,
            load: Arc::new(load),
            concurrency: params.concurrency as usize,
            duration: Duration::from_millis(params.duration_ms),
        }
    }
}

/// What was measured on the server.
struct Measured {
    addr: SocketAddr,
    rows: usize,
    mismatches: Mismatches,
    load: load::Figures,
}

impl TypedComponent for InfraValidate {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_params(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        if let Some(p) = check_params(&params).into_iter().next() {
            return Err(ExecError::failed(p.message));
        }
        let input = ctx.input("model")?;
        let table = read_table(&ctx.input("data")?.path, &Default::default())?;
        let before_load = load::current_rss();
        let model = load_model(&input.path)?;
        let loaded = load::current_rss().zip(before_load).map(|(after, before)| after.saturating_sub(before));
        let frame = model_frame(&model, &table)?;
        drop(table);
        if frame.rows() == 0 {
            return Err(ExecError::failed("the evaluation data has no rows to send to the server"));
        }
        let expected = model.predict_parallel(&frame, flywheel_ml::par::cores()).map_err(ml_error)?;
        let work = Work::new(&frame, &params);
        drop(frame);
        let classes = model.classes.clone();
        let served = Served::new(SERVED_NAME.into(), 0, format!("the model of step `{}`", ctx.step), model);
        // The eval data, its frame and the request bodies are not the
        // model's cost: memory grows from here on by serving it.
        let before_server = load::current_rss();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ExecError::io("cannot start the server's runtime", e))?;
        ctx.cancel.check()?;
        let measured = runtime.block_on(on_server(served, &work, &expected, &classes, &ctx.cancel, ctx));
        // The server has stopped; a prediction still running on a blocking
        // thread (cancelled mid-batch) is not waited for beyond this.
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
        let measured = measured?;
        let serving = measured.load.peak_rss.zip(before_server).map(|(peak, before)| peak.saturating_sub(before));
        let figures = figures(&measured, loaded.zip(serving).map(|(l, s)| l + s));
        let checks = checks(&params, &measured, &figures);
        write_blessing(ctx, &input.digest, &measured, figures, checks)
    }
}

/// Serves `served` on a free loopback port, checks the answers and runs
/// the load test; the server is stopped whatever happens, and the port
/// released, before this returns.
async fn on_server(
    served: Served,
    work: &Work,
    expected: &Prediction,
    classes: &[String],
    cancel: &CancelToken,
    ctx: &ExecContext,
) -> Result<Measured, ExecError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| ExecError::io("cannot listen on a loopback port", e))?;
    let addr = listener.local_addr().map_err(|e| ExecError::io("cannot read the server's address", e))?;
    let state = Arc::new(AppState::new(Arc::new(ModelTable::new([served]))));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(flywheel_serve::serve_on(listener, state, async {
        let _ = stopped.await;
    }));
    ctx.log(format!("serving the candidate on http://{addr}"));
    let result = tokio::select! {
        r = exercise(addr, work, expected, classes, ctx) => r,
        () = cancelled(cancel) => Err(ExecError::Cancelled),
    };
    let _ = stop.send(());
    let stopped = match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("the server task ended abnormally: {e}")),
        Err(_) => {
            server.abort();
            Err(format!("the server did not stop within {} s; it was ended", SHUTDOWN_GRACE.as_secs()))
        }
    };
    ctx.log(format!("server on {addr} stopped"));
    let measured = result?;
    stopped.map_err(ExecError::Failed)?;
    Ok(measured)
}

/// Resolves once `cancel` is set (checked every 20 ms).
async fn cancelled(cancel: &CancelToken) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Both checks against the server at `addr`.
async fn exercise(
    addr: SocketAddr,
    work: &Work,
    expected: &Prediction,
    classes: &[String],
    ctx: &ExecContext,
) -> Result<Measured, ExecError> {
    let mut conn = Conn::open(addr).await.map_err(|e| ExecError::Failed(e.to_string()))?;
    let mut mismatches = Mismatches::default();
    let infer = format!("/v2/models/{SERVED_NAME}/infer");
    let mut rows = 0;
    for (start, invocations, oip) in &work.batches {
        for (path, body) in [("/invocations", invocations), (infer.as_str(), oip)] {
            let (status, answer) = conn.post(path, body.clone()).await.map_err(|e| ExecError::Failed(e.to_string()))?;
            if status != StatusCode::OK {
                return Err(ExecError::failed(format!(
                    "the server refused eval rows {start} to {} on {path} ({status}): {}",
                    expected_rows(expected).min(start + BATCH_ROWS) - 1,
                    String::from_utf8_lossy(&answer)
                )));
            }
            let read = if path == "/invocations" { read_invocations(&answer) } else { read_infer(&answer) };
            let answer = read.map_err(|e| ExecError::Failed(e.to_string()))?;
            let n = expected_rows(expected) - start;
            if answer.values.len() != n.min(BATCH_ROWS) {
                return Err(ExecError::failed(format!(
                    "{path} answered {} predictions for {} rows",
                    answer.values.len(),
                    n.min(BATCH_ROWS)
                )));
            }
            compare(expected, classes, &answer, *start, path, &mut mismatches).map_err(ExecError::Failed)?;
        }
        rows = expected_rows(expected).min(start + BATCH_ROWS);
    }
    drop(conn);
    ctx.log(format!("{rows} eval rows served twice, {} answers differ", mismatches.count));
    let load = load::run(addr, work.load.clone(), work.concurrency, work.duration).await;
    Ok(Measured { addr, rows, mismatches, load })
}

fn expected_rows(p: &Prediction) -> usize {
    match p {
        Prediction::Values(v) => v.len(),
        Prediction::Classes { labels, .. } => labels.len(),
    }
}

/// The figures as the blessing records them; `memory` is the model's
/// cost in bytes, when measured.
fn figures(m: &Measured, memory: Option<u64>) -> Json {
    let l = &m.load;
    let memory_mb = memory.map_or(Json::Null, |b| json!(b as f64 / (1024.0 * 1024.0)));
    json!({
        "rows_checked": m.rows,
        "mismatches": m.mismatches.count,
        "requests": l.requests,
        "errors": l.errors,
        "seconds": l.seconds,
        "rps": l.rps,
        "p50_ms": l.p50_ms,
        "p99_ms": l.p99_ms,
        "max_ms": l.max_ms,
        "memory_mb": memory_mb,
        "memory_measured": if memory_mb.is_null() {
            "not measured: /proc/self/status is not readable here (not Linux)"
        } else {
            "growth of the process's resident memory (VmRSS, /proc/self/status) while the model is loaded, plus from just before the server starts to the peak sampled every 10 ms during the load test; the eval data, its frame and the request bodies are left out, anything else the process does meanwhile is in"
        },
    })
}

/// One check: its figure against its threshold.
fn check(name: &str, figure: &Json, rule: &str, threshold: f64, passed: bool) -> Json {
    json!({ "check": name, "figure": figure, "rule": rule, "threshold": threshold, "passed": passed })
}

/// Every check: the answers always; errors always (`max_errors`); the
/// declared targets. A memory target where memory is not measured fails.
fn checks(params: &Params, m: &Measured, f: &Json) -> Vec<Json> {
    let count = m.mismatches.count;
    let mut out = vec![
        check("answers", &json!(count), "mismatches <= 0", 0.0, count == 0),
        check(
            "max_errors",
            &json!(m.load.errors),
            "errors <=",
            params.max_errors as f64,
            m.load.errors <= params.max_errors,
        ),
    ];
    if let Some(t) = params.min_rps {
        out.push(check("min_rps", &f["rps"], "rps >=", t, m.load.rps >= t));
    }
    if let Some(t) = params.max_p99_ms {
        out.push(check("max_p99_ms", &f["p99_ms"], "p99_ms <=", t, m.load.requests > 0 && m.load.p99_ms <= t));
    }
    if let Some(t) = params.max_memory_mb {
        let passed = f["memory_mb"].as_f64().is_some_and(|v| v <= t);
        out.push(check("max_memory_mb", &f["memory_mb"], "memory_mb <=", t, passed));
    }
    out
}

/// Every check of an infra blessing that did not pass, with its figure and
/// threshold: what the step fails with, and what `push` refuses with.
pub(crate) fn failed_checks(checks: &[Json]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| {
            format!(
                "{} (figure {}, {} {})",
                c["check"].as_str().unwrap_or_default(),
                c["figure"],
                c["rule"].as_str().unwrap_or_default(),
                c["threshold"]
            )
        })
        .collect()
}

/// Writes the infra blessing, its properties and the summary; fails the
/// step naming every failed check and its figure.
fn write_blessing(
    ctx: &ExecContext,
    digest: &str,
    m: &Measured,
    figures: Json,
    checks: Vec<Json>,
) -> Result<(), ExecError> {
    let failed = failed_checks(&checks);
    let record = json!({
        "blessed": failed.is_empty(),
        "model_digest": digest,
        "server": format!("http://{}", m.addr),
        "checks": checks,
        "figures": figures,
        "mismatches": m.mismatches.first,
        "first_error": m.load.first_error,
    });
    write_json(&ctx.output_path("infra_blessing"), &record)?;
    ctx.set_properties("infra_blessing", json!({ "blessed": record["blessed"], "model_digest": digest }));
    summarize(ctx, &record, failed.len());
    if let Some(e) = &m.load.first_error {
        ctx.log(format!("first load-test error: {e}"));
    }
    for x in &m.mismatches.first {
        ctx.log(format!("mismatch: {x}"));
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(ExecError::failed(format!(
        "infra validation failed ({} of {} checks): {}{}",
        failed.len(),
        record["checks"].as_array().map_or(0, Vec::len),
        failed.join("; "),
        first_mismatches(&m.mismatches.first)
    )))
}

/// The step's summary: the headline figures, rounded to what a person
/// reads (the artifact has them exact, with how memory is measured), and
/// the same in the log.
fn summarize(ctx: &ExecContext, record: &Json, failed: usize) {
    let f = &record["figures"];
    let round = |v: &Json, places: i32| {
        v.as_f64().map_or(Json::Null, |x| json!((x * 10f64.powi(places)).round() / 10f64.powi(places)))
    };
    ctx.add_summary(
        "infra_blessing",
        json!({
            "blessed": record["blessed"], "failed": failed, "rows_checked": f["rows_checked"],
            "mismatches": f["mismatches"], "rps": round(&f["rps"], 0), "p50_ms": round(&f["p50_ms"], 2),
            "p99_ms": round(&f["p99_ms"], 2), "errors": f["errors"], "memory_mb": round(&f["memory_mb"], 1),
        }),
    );
    let number = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
    ctx.log(format!(
        "{} requests in {:.2} s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, memory {} MiB",
        f["requests"],
        number("seconds"),
        number("rps"),
        number("p50_ms"),
        number("p99_ms"),
        f["errors"],
        f["memory_mb"].as_f64().map_or("not measured".into(), |v| format!("{v:.1}"))
    ));
}

/// "; first mismatches: row R on ENDPOINT: expected X, got Y, …" or nothing.
fn first_mismatches(first: &[Json]) -> String {
    let shown: Vec<String> = first
        .iter()
        .take(3)
        .map(|x| {
            format!(
                "row {} on {}: expected {}, got {}",
                x["row"],
                x["endpoint"].as_str().unwrap_or_default(),
                x["expected"],
                x["got"]
            )
        })
        .collect();
    if shown.is_empty() { String::new() } else { format!("; first mismatches: {}", shown.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Component;
    use std::path::{Path, PathBuf};

    /// A CSV of `rows` rows with a number, a text column (some missing)
    /// and a class, and a model trained on it by `train` (`model`: its
    /// algorithm, `target`: `y` for regression, `class` for classes).
    fn trained(dir: &Path, model: &str, target: &str) -> (PathBuf, PathBuf) {
        let data = dir.join("data.csv");
        let mut csv = String::from("x,colour,y,class\n");
        for i in 0..120 {
            let colour = ["red", "green", "", "blue"][i % 4];
            let x = i as f64 / 7.0;
            csv.push_str(&format!(
                "{x},{colour},{},{}\n",
                3.0 * x + (i % 5) as f64,
                if i % 3 == 0 { "yes" } else { "no" }
            ));
        }
        std::fs::write(&data, csv).unwrap();
        let drop = if target == "y" { "class" } else { "y" };
        let ctx = ExecContext::builder()
            .params(json!({ "target": target, "model": model, "drop": [drop] }))
            .input_file("data", ArtifactType::Dataset, &data)
            .output("model", ArtifactType::Model)
            .output_dir(dir)
            .build();
        crate::train::Train.execute(&ctx).unwrap();
        (ctx.output_path("model"), data)
    }

    fn step(model: &Path, data: &Path, params: Json) -> ExecContext {
        ExecContext::builder()
            .params(params)
            .input_file("model", ArtifactType::Model, model)
            .input_file("data", ArtifactType::Dataset, data)
            .output("infra_blessing", ArtifactType::InfraBlessing)
            .build()
    }

    fn port_of(blessing: &Json) -> u16 {
        let server = blessing["server"].as_str().unwrap();
        server.rsplit(':').next().unwrap().parse().unwrap()
    }

    #[test]
    fn a_model_that_serves_correctly_passes_with_its_figures_and_the_port_is_free_afterwards() {
        for (algorithm, target) in [("linear", "y"), ("gbt", "class")] {
            let dir = tempfile::tempdir().unwrap();
            let (model, data) = trained(dir.path(), algorithm, target);
            let params = json!({ "concurrency": 2, "duration_ms": 200, "max_p99_ms": 60000, "max_memory_mb": 4096 });
            let ctx = step(&model, &data, params);
            InfraValidate.execute(&ctx).unwrap();
            let b = flywheel_data::table::read_json(&ctx.output_path("infra_blessing")).unwrap();
            assert_eq!(b["blessed"], true, "{b:#}");
            assert_eq!(b["model_digest"], json!(flywheel_core::digest_bytes(&std::fs::read(&model).unwrap())));
            let f = &b["figures"];
            assert_eq!((f["rows_checked"].clone(), f["mismatches"].clone()), (json!(120), json!(0)));
            assert!(f["requests"].as_u64().unwrap() > 0 && f["rps"].as_f64().unwrap() > 0.0, "{f}");
            assert!(f["p50_ms"].as_f64().unwrap() <= f["p99_ms"].as_f64().unwrap(), "{f}");
            let names: Vec<&str> =
                b["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
            assert_eq!(names, ["answers", "max_errors", "max_p99_ms", "max_memory_mb"]);
            if cfg!(target_os = "linux") {
                assert!(f["memory_mb"].is_number(), "{f}");
            }
            // The server is gone: its port can be listened on again.
            std::net::TcpListener::bind(("127.0.0.1", port_of(&b))).unwrap();
        }
    }

    #[test]
    fn an_impossible_target_fails_the_step_naming_it_and_its_figure() {
        let dir = tempfile::tempdir().unwrap();
        let (model, data) = trained(dir.path(), "linear", "y");
        let ctx = step(&model, &data, json!({ "concurrency": 1, "duration_ms": 100, "min_rps": 1e9 }));
        let e = InfraValidate.execute(&ctx).unwrap_err().to_string();
        assert!(e.starts_with("infra validation failed (1 of 3 checks): min_rps (figure "), "{e}");
        assert!(e.contains("rps >= 1000000000.0"), "{e}");
        let b = flywheel_data::table::read_json(&ctx.output_path("infra_blessing")).unwrap();
        assert_eq!(b["blessed"], false);
        assert_eq!(b["checks"][2]["check"], "min_rps");
        assert_eq!(b["checks"][2]["passed"], false);
        assert_eq!(b["checks"][2]["figure"], b["figures"]["rps"]);
        std::net::TcpListener::bind(("127.0.0.1", port_of(&b))).unwrap();
    }

    #[test]
    fn a_cancelled_step_stops_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let (model, data) = trained(dir.path(), "linear", "y");
        let cancel = CancelToken::new();
        let log = flywheel_core::LogBuffer::default();
        let ctx = ExecContext::builder()
            .log(log.clone())
            .params(json!({ "duration_ms": 600000 }))
            .input_file("model", ArtifactType::Model, &model)
            .input_file("data", ArtifactType::Dataset, &data)
            .output("infra_blessing", ArtifactType::InfraBlessing)
            .cancel(cancel.clone())
            .build();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        });
        assert!(matches!(InfraValidate.execute(&ctx), Err(ExecError::Cancelled)));
        canceller.join().unwrap();
        let log = log.text();
        let addr = log.lines().find_map(|l| l.strip_prefix("serving the candidate on http://")).unwrap();
        assert!(log.contains(&format!("server on {addr} stopped")), "{log}");
        std::net::TcpListener::bind(addr).unwrap();
    }

    #[test]
    fn check_refuses_out_of_range_parameters() {
        let problems = |v: Json| {
            Component::check_params(&InfraValidate, v.as_object().unwrap())
                .into_iter()
                .map(|p| p.path.join("."))
                .collect::<Vec<_>>()
        };
        assert!(problems(json!({ "min_rps": 50, "max_p99_ms": 250.5 })).is_empty());
        assert_eq!(
            problems(json!({ "concurrency": 0, "duration_ms": 5, "min_rps": -1, "max_memory_mb": 0 })),
            ["concurrency", "duration_ms", "min_rps", "max_memory_mb"]
        );
    }
}
