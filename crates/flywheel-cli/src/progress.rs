//! Progress while a run goes on: live bars on a terminal, plain lines otherwise.

use flywheel_metadata::ExecStatus;
use flywheel_orchestrator::humanize;
use flywheel_orchestrator::{Event, Observer, StepOutcome};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn finished_text(o: &StepOutcome) -> String {
    let d = humanize(Duration::from_millis(o.duration_ms.max(0) as u64));
    match o.status {
        ExecStatus::Succeeded if o.resumed => "succeeded earlier (kept)".into(),
        ExecStatus::Succeeded if o.cache_hit => format!("cached ({d})"),
        ExecStatus::Succeeded => format!("succeeded in {d}"),
        ExecStatus::Skipped => format!("skipped: {}", o.error.clone().unwrap_or_default()),
        ExecStatus::Refused => format!("refused after {d}: {}", o.error.clone().unwrap_or_default()),
        s => format!("{s} after {d}: {}", o.error.clone().unwrap_or_default().lines().next().unwrap_or("")),
    }
}

/// Plain log lines on stderr (not a terminal, or CI).
pub struct Lines {
    start: Instant,
}

impl Lines {
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }
}

impl Observer for Lines {
    fn event(&self, e: &Event) {
        let t = self.start.elapsed().as_secs_f64();
        match e {
            Event::RunStarted { run_id, pipeline, steps, resumed } => {
                eprintln!("[{t:7.3}s] run {run_id} of `{pipeline}`: {} steps", steps.len());
                if !resumed.is_empty() {
                    eprintln!("[{t:7.3}s] resuming: keeping {}", resumed.join(", "));
                }
            }
            Event::StepStarted { step, attempt } if *attempt > 1 => eprintln!("[{t:7.3}s] {step}: attempt {attempt}"),
            Event::StepStarted { .. } => {}
            Event::StepRetrying { step, attempt, error, delay } => {
                eprintln!("[{t:7.3}s] {step}: attempt {attempt} failed: {error}; retrying in {}", humanize(*delay))
            }
            Event::StepFinished(o) => eprintln!("[{t:7.3}s] {}: {}", o.step, finished_text(o)),
            Event::Cancelling => eprintln!("[{t:7.3}s] cancelling: stopping running steps…"),
        }
    }
}

/// Live spinners, one per step (indicatif), on a terminal.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self { multi: MultiProgress::new(), bars: Mutex::new(HashMap::new()) }
    }

    fn bar(&self, step: &str) -> Option<ProgressBar> {
        self.bars.lock().ok().and_then(|b| b.get(step).cloned())
    }
}

impl Observer for Bars {
    fn event(&self, e: &Event) {
        match e {
            Event::RunStarted { run_id, pipeline, steps, .. } => {
                let _ = self.multi.println(format!("run {run_id} of `{pipeline}`"));
                let style = ProgressStyle::with_template("  {spinner:.cyan} {prefix:<14} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let width = steps.iter().map(|s| s.len()).max().unwrap_or(0);
                if let Ok(mut bars) = self.bars.lock() {
                    for s in steps {
                        let pb = self.multi.add(ProgressBar::new_spinner());
                        pb.set_style(style.clone());
                        pb.set_prefix(format!("{s:<width$}"));
                        pb.set_message("waiting");
                        bars.insert(s.clone(), pb);
                    }
                }
            }
            Event::StepStarted { step, attempt } => {
                if let Some(pb) = self.bar(step) {
                    pb.enable_steady_tick(Duration::from_millis(100));
                    pb.set_message(if *attempt > 1 {
                        format!("running (attempt {attempt})")
                    } else {
                        "running".into()
                    });
                }
            }
            Event::StepRetrying { step, attempt, error, delay } => {
                if let Some(pb) = self.bar(step) {
                    pb.set_message(format!("attempt {attempt} failed ({error}); retrying in {}", humanize(*delay)));
                }
            }
            Event::StepFinished(o) => {
                if let Some(pb) = self.bar(&o.step) {
                    let mark = match o.status {
                        ExecStatus::Succeeded => "✔",
                        ExecStatus::Skipped => "·",
                        ExecStatus::Refused => "⊘",
                        _ => "✘",
                    };
                    pb.set_style(
                        ProgressStyle::with_template("  {prefix:<14} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.finish_with_message(format!("{mark} {}", finished_text(o)));
                }
            }
            Event::Cancelling => {
                let _ = self.multi.println("cancelling: stopping running steps…");
            }
        }
    }
}
