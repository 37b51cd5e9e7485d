//! The quickstart example travels inside the binary: the bike-sharing
//! pipeline, the deployment the quickstart runs, and the data
//! (gzip-compressed CSV), split by year when unpacked: 2011 to train on,
//! 2012 to replay as live traffic.
//!
//! [`closing`] is the loop after the first run: `flywheel up` in this
//! process (serve, monitor, trigger, deliver), 2012 replayed at it with its
//! labels, and each act told as it happens, until the retrained model has
//! gone out as a canary and been promoted (or rolled back, and why).

use crate::cli::QuickstartArgs;
use crate::exit::{Failure, fail};
use flywheel_client::replay::{Columns, Replay, ReplayConfig, Summary};
use flywheel_core::{ModelRef, Selector};
use flywheel_daemon::delivery::{CANARY, Delivered, PRODUCTION};
use flywheel_daemon::{Event, UpConfig};
use flywheel_metadata::Change;
use flywheel_registry::Home;
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const PIPELINE: &str = include_str!("../../../examples/bike-sharing/pipeline.toml");
const DEPLOYMENT: &str = include_str!("../../../examples/bike-sharing/quickstart.toml");
const DATA: &[u8] = include_bytes!("../../../examples/bike-sharing/data/bike_sharing_hourly.csv.gz");
const LICENSE: &str = include_str!("../../../examples/bike-sharing/LICENSE.md");
const MODEL: &str = "bike-sharing";

/// The example as written under `<home>/quickstart/bike-sharing/`.
pub struct Unpacked {
    pub pipeline: PathBuf,
    pub deployment: PathBuf,
    /// 2012 until September, then October to December.
    pub traffic: [PathBuf; 2],
    /// The first run's parameters: 2011 alone, and served rows only from
    /// now on (none yet).
    pub first_run: Vec<(String, String)>,
}

/// Writes the example (only files that differ, atomically). `started`
/// (`YYYY-MM-DD HH:MM:SS`, UTC) is from when served rows are learned from.
pub fn unpack(home: &Path, started: &str) -> std::io::Result<Unpacked> {
    let dir = home.join("quickstart").join("bike-sharing");
    std::fs::create_dir_all(dir.join("data"))?;
    write_if_changed(&dir.join("pipeline.toml"), PIPELINE.as_bytes())?;
    let since = format!("logs_since = \"{started}\"");
    write_if_changed(&dir.join("quickstart.toml"), DEPLOYMENT.replace("logs_since = \"\"", &since).as_bytes())?;
    write_if_changed(&dir.join("LICENSE.md"), LICENSE.as_bytes())?;
    write_if_changed(&dir.join("data").join("bike_sharing_hourly.csv.gz"), DATA)?;
    let [train, early, late] = by_year()?;
    let data = |name: &str| dir.join("data").join(name);
    write_if_changed(&data("bike_sharing_2011.csv"), &train)?;
    write_if_changed(&data("traffic_2012_jan_sep.csv"), &early)?;
    write_if_changed(&data("traffic_2012_oct_dec.csv"), &late)?;
    Ok(Unpacked {
        pipeline: dir.join("pipeline.toml"),
        deployment: dir.join("quickstart.toml"),
        traffic: [data("traffic_2012_jan_sep.csv"), data("traffic_2012_oct_dec.csv")],
        first_run: vec![
            ("data".into(), "data/bike_sharing_2011.csv".into()),
            ("logs_since".into(), started.to_string()),
        ],
    })
}

/// The data's rows by the year and month their first column (`datetime`)
/// starts with: 2011; 2012 to September; the rest. Each with the header.
fn by_year() -> std::io::Result<[Vec<u8>; 3]> {
    let mut parts: [Vec<u8>; 3] = Default::default();
    let mut lines = std::io::BufReader::new(flate2::read::GzDecoder::new(DATA)).lines();
    let header = lines.next().transpose()?.unwrap_or_default();
    for p in &mut parts {
        writeln!(p, "{header}")?;
    }
    for line in lines {
        let line = line?;
        let part = match (line.get(..4), line.get(5..7)) {
            (Some("2011"), _) => 0,
            (_, Some(month)) if month <= "09" => 1,
            _ => 2,
        };
        writeln!(parts[part], "{line}")?;
    }
    Ok(parts)
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Acts 2 to 4, after the first run (`first_run`) pushed, or found, the
/// model trained on 2011.
pub fn closing(
    home: &Home,
    home_dir: &Path,
    u: &Unpacked,
    first_run: &flywheel_orchestrator::RunOutcome,
    components: flywheel_core::ComponentRegistry,
    args: &QuickstartArgs,
) -> Result<u8, Failure> {
    let first = serde_json::to_value(first_run).unwrap_or_default();
    let mut story = Story { json: args.json, lines: Vec::new(), first_run: first };
    let (start, moved_back) = first_model(home, first_run.run_id)?;
    if moved_back {
        story.say(format!(
            "  production goes back to {MODEL}@{start}, the model trained on 2011 alone, for the story to start again"
        ));
    }
    let deployment = flywheel_deploy::compile_file(&u.deployment, &components)?;
    let config = UpConfig {
        home: home.root.clone(),
        deployments: vec![deployment],
        addr: Some("127.0.0.1:0".into()),
        tick: Duration::from_millis(250),
        token: None,
        memory_hook: None,
    };
    let rt = crate::runtime()?;
    let (events, heard) = std::sync::mpsc::channel::<Event>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let json = args.json;
    let tell = Arc::new(move |e: Event| {
        if !json {
            println!("  {}", crate::up_cmd::text(&e));
        }
        let _ = events.send(e);
    });
    let up = rt.spawn(flywheel_daemon::up(
        config,
        components,
        move |a| {
            let _ = addr_tx.send(a);
        },
        tell,
        async move {
            let _ = stopped.await;
        },
    ));
    let ended = match addr_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => story.acts(&rt, &heard, addr, u, start, args),
        Err(_) => Err(fail(1, "the server did not start in 30 s")),
    };
    let _ = stop.send(());
    let served = rt.block_on(up);
    let code = ended?;
    if let Ok(Err(e)) = served {
        return Err(fail(1, format!("`up` ended with: {e}")));
    }
    story.finish(home, home_dir, start, code)
}

/// What the quickstart tells: lines on stdout as they happen, or one JSON
/// document at the end.
struct Story {
    json: bool,
    lines: Vec<String>,
    /// The first run's outcome, for the JSON document.
    first_run: serde_json::Value,
}

impl Story {
    fn say(&mut self, line: String) {
        if !self.json {
            println!("{line}");
        }
        self.lines.push(line);
    }

    fn acts(
        &mut self,
        rt: &tokio::runtime::Runtime,
        heard: &Receiver<Event>,
        addr: std::net::SocketAddr,
        u: &Unpacked,
        start: i64,
        args: &QuickstartArgs,
    ) -> Result<u8, Failure> {
        let timeout = Duration::from_secs(args.act_timeout);
        self.say(format!(
            "\nact 2 of 4: serve {MODEL}@{start} on http://{addr}, monitor every 400 requests, retrain when it falls behind"
        ));
        self.say("\nact 3 of 4: replay January to September 2012 as live traffic, with labels".into());
        let first = replay(rt, &u.traffic[0], addr, args.traffic_rows)?;
        self.say(format!("  {}", summary(&first)));
        let Some(canary) = self.wait(heard, timeout, |e| match e {
            Event::Delivery { delivered: Delivered::Started { version }, .. } => Some(Ok(*version)),
            Event::RunFinished { status, error, .. } if status != "succeeded" => {
                Some(Err(format!("the triggered run {status}: {}", error.clone().unwrap_or_default())))
            }
            _ => None,
        })?
        else {
            return Ok(1);
        };
        self.say(format!("\nact 4 of 4: replay October to December 2012; {MODEL}@{canary} gets 20% of it as canary"));
        let second = replay(rt, &u.traffic[1], addr, args.traffic_rows)?;
        self.say(format!("  {}", summary(&second)));
        let verdict = self.wait(heard, timeout, |e| match e {
            Event::Delivery { delivered: Delivered::Promoted { .. }, .. } => Some(Ok(0)),
            Event::Delivery { delivered: Delivered::RolledBack { reason, .. }, .. } => {
                Some(Err(format!("the canary was rolled back: {reason}")))
            }
            _ => None,
        })?;
        Ok(verdict.unwrap_or(1))
    }

    /// Waits for the event `wanted` picks out (`Err`: the story ended
    /// otherwise), or says what did not happen in time.
    fn wait<T>(
        &mut self,
        heard: &Receiver<Event>,
        timeout: Duration,
        wanted: impl Fn(&Event) -> Option<Result<T, String>>,
    ) -> Result<Option<T>, Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match heard.recv_timeout(left) {
                Ok(e) => {
                    self.lines.push(crate::up_cmd::text(&e));
                    match wanted(&e) {
                        Some(Ok(v)) => return Ok(Some(v)),
                        Some(Err(why)) => {
                            self.say(format!("  the loop stopped here: {why}"));
                            return Ok(None);
                        }
                        None => {}
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.say(format!("  nothing more happened in {} s (`--act-timeout`)", timeout.as_secs()));
                    return Ok(None);
                }
                Err(RecvTimeoutError::Disconnected) => return Err(fail(1, "`up` stopped during the quickstart")),
            }
        }
    }

    fn finish(self, home: &Home, home_dir: &Path, start: i64, code: u8) -> Result<u8, Failure> {
        let now = home.metadata.aliased_version(MODEL, PRODUCTION)?.map(|v| v.version);
        if self.json {
            let doc = json!({ "status": if code == 0 { "promoted" } else { "incomplete" }, "first_run": self.first_run,
                "first_version": start, "production": now, "story": self.lines });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            return Ok(code);
        }
        let now = now.map_or("nothing".to_string(), |v| format!("{MODEL}@{v}"));
        if code == 0 {
            println!("\nthe loop closed: production is {now} (it was {MODEL}@{start}), with no one in between");
        } else {
            println!("\nthe loop did not close this time: production is {now}");
        }
        println!(
            "next: `flywheel runs list`, `flywheel models history {MODEL}`, `flywheel monitor status {MODEL}`; \
             `flywheel up` serves and watches it again (home: {})",
            home_dir.display()
        );
        Ok(code)
    }
}

/// The version the first run pushed (or found pushed before), put back in
/// production if a previous quickstart replaced it, with no canary left
/// out and the deployment's triggers and canaries forgotten: the story
/// starts from the model trained on 2011.
fn first_model(home: &Home, run: i64) -> Result<(i64, bool), Failure> {
    let trained = home
        .metadata
        .executions(run)?
        .into_iter()
        .find(|e| e.step == "train")
        .and_then(|e| e.outputs.into_iter().find(|o| o.name == "model"))
        .map(|o| o.artifact.digest)
        .ok_or_else(|| fail(1, format!("run {run} trained no model")))?;
    let mut version = None;
    for v in home.metadata.model_versions()?.into_iter().filter(|v| v.model_name == MODEL) {
        if home.metadata.artifact(v.artifact_id)?.digest == trained {
            version = Some(v.version);
        }
    }
    let version = version.ok_or_else(|| fail(1, format!("the model of run {run} was not registered")))?;
    let production = home.metadata.aliased_version(MODEL, PRODUCTION)?.map(|v| v.version);
    let reason = Some("quickstart: the story starts again from the model trained on 2011");
    let moved_back = production.is_some_and(|p| p != version);
    if production != Some(version) {
        let to = ModelRef { name: MODEL.into(), selector: Selector::Version(version) };
        home.move_alias(&to, PRODUCTION, Some(production), Change { caller: "flywheel quickstart", reason })?;
    }
    if let Some(c) = home.metadata.aliased_version(MODEL, CANARY)? {
        home.metadata.remove_alias_if(MODEL, CANARY, c.version, Change { caller: "flywheel quickstart", reason })?;
    }
    home.metadata.forget_deployment_state(MODEL)?;
    Ok((version, moved_back))
}

fn replay(
    rt: &tokio::runtime::Runtime,
    data: &Path,
    addr: std::net::SocketAddr,
    limit: Option<u64>,
) -> Result<Summary, Failure> {
    let config = ReplayConfig {
        data: data.to_path_buf(),
        to: format!("http://{addr}"),
        model: Some(MODEL.into()),
        columns: Columns {
            labels: Some("cnt".into()),
            time: Some("datetime".into()),
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        },
        // Fast enough to finish in seconds, slow enough to watch the
        // windows, the trigger and the canary as they happen.
        rate: Some(1500.0),
        batch: 1,
        concurrency: 1,
        token: None,
    };
    let summary = rt.block_on(async move { Replay::prepare(config).await?.run(Arc::new(|_| {})).await })?;
    Ok(summary)
}

fn summary(s: &Summary) -> String {
    let rate = s.rows as f64 / s.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{} rows sent in {:.1} s ({rate:.0}/s, p99 {:.1} ms), {} labels taken, {} failed",
        s.rows,
        s.elapsed.as_secs_f64(),
        s.p99.as_secs_f64() * 1e3,
        s.feedback.labels,
        s.failed
    )
}
