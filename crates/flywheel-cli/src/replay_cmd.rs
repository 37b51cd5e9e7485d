//! `flywheel replay DATA --to URL`: a dataset sent to a running server as
//! live traffic (`flywheel_client::replay`), with a progress bar on a
//! terminal and a summary at the end.

use crate::Failure;
use crate::cli::ReplayArgs;
use flywheel_client::replay::{Columns, Replay, ReplayConfig, Summary};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;

pub fn run(args: &ReplayArgs) -> Result<u8, Failure> {
    let config = ReplayConfig {
        data: args.data.clone(),
        to: args.to.clone(),
        model: args.model.clone(),
        columns: Columns { labels: args.labels.clone(), time: args.time_column.clone(), limit: args.limit },
        rate: args.rate,
        batch: args.batch,
        concurrency: args.concurrency,
        token: args.token.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::fail(3, format!("cannot start the runtime: {e}")))?;
    let summary = runtime.block_on(async {
        let replay = Replay::prepare(config).await?;
        announce(&replay, args);
        let bar = bar(replay.rows(), args.json);
        let shown = bar.clone();
        let summary = replay.run(Arc::new(move |done| shown.set_position(done as u64))).await;
        bar.finish_and_clear();
        summary
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&summary)).unwrap_or_default());
    } else {
        print_summary(&summary);
    }
    let incomplete = summary.failed > 0 || summary.unsent > 0 || summary.feedback.refused.is_some();
    Ok(u8::from(incomplete))
}

fn announce(replay: &Replay, args: &ReplayArgs) {
    if args.json {
        return;
    }
    let order = match (&args.time_column, replay.plan.span) {
        (Some(c), Some((a, b))) => format!(" in the order of `{c}` ({} to {})", time(a), time(b)),
        _ => String::new(),
    };
    let pace = args.rate.map_or("as fast as it answers".to_string(), |r| format!("at {r} rows/s"));
    eprintln!(
        "replaying {} row(s) of {} to model `{}` at {}{order}, {pace}",
        replay.rows(),
        args.data.display(),
        replay.served.name,
        args.to
    );
    if replay.plan.untimed > 0 {
        eprintln!("{} row(s) have no `{}` and go last", replay.plan.untimed, args.time_column.as_deref().unwrap_or(""));
    }
}

/// A time column's value as a date when it looks like seconds since 1970
/// (a number column's values are shown as they are).
fn time(v: f64) -> String {
    if (1.0e8..1.0e10).contains(&v) { flywheel_stats::time::format_seconds(v) } else { format!("{v}") }
}

fn bar(rows: usize, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(rows as u64);
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn print_summary(s: &Summary) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    println!(
        "sent {} row(s) in {} request(s) to `{}` in {:.1} s: {:.0} rows/s, p50 {:.2} ms, p99 {:.2} ms",
        s.rows,
        s.requests,
        s.model,
        secs,
        s.rows as f64 / secs,
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3
    );
    if s.feedback.labels > 0 || s.feedback.unknown > 0 || s.feedback.refused.is_some() {
        println!(
            "feedback: {} label(s) taken, {} for requests the server did not log",
            s.feedback.labels, s.feedback.unknown
        );
    }
    if let Some(why) = &s.feedback.refused {
        println!("feedback stopped: {why}");
    }
    if s.unusable_labels > 0 {
        println!("{} label(s) left out: not numbers, and the model predicts numbers", s.unusable_labels);
    }
    if s.unsent > 0 {
        println!("{} of {} row(s) never sent (the replay gave up, or could not connect again)", s.unsent, s.planned);
    }
    if s.failed > 0 {
        println!("{} request(s) failed; the first:", s.failed);
        for e in &s.errors {
            println!("  {e}");
        }
    }
}

fn as_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "model": s.model,
        "planned": s.planned,
        "rows": s.rows,
        "unsent": s.unsent,
        "unusable_labels": s.unusable_labels,
        "requests": s.requests,
        "failed": s.failed,
        "errors": s.errors,
        "seconds": s.elapsed.as_secs_f64(),
        "p50_ms": s.p50.as_secs_f64() * 1e3,
        "p99_ms": s.p99.as_secs_f64() * 1e3,
        "feedback": {
            "labels": s.feedback.labels,
            "unknown": s.feedback.unknown,
            "refused": s.feedback.refused,
        },
    })
}
