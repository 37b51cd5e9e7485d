//! `flywheel serve`: flags to a `ServeConfig`, the models loaded, the
//! address and what is served printed, then `flywheel_serve::run` until
//! SIGTERM or Ctrl-C.

use crate::Failure;
use crate::cli::ServeArgs;
use flywheel_serve::{Limits, LogOptions, Sampling, Serve, ServeConfig};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub fn run(home: &Path, args: &ServeArgs) -> Result<u8, Failure> {
    crate::return_freed_memory();
    let log = if args.no_log {
        None
    } else {
        Some(LogOptions { sampling: Sampling::parse(&args.log_sample)?, ..LogOptions::default() })
    };
    let config = ServeConfig {
        home: home.to_path_buf(),
        addr: args.addr.clone(),
        models: args.models.clone(),
        poll: Duration::from_millis(args.poll_ms),
        limits: Limits {
            timeout: Duration::from_millis(args.timeout_ms),
            max_in_flight: args.max_in_flight as usize,
            ..Limits::default()
        },
        // Trimmed: a token pasted with a space or newline would otherwise match no header.
        token: std::env::var("FLYWHEEL_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
        log,
    };
    let token = config.token.clone();
    crate::runtime()?.block_on(async {
        let serve = Serve {
            memory_hook: Some(crate::give_back_freed_memory),
            ..Serve::load(&config).await.map_err(Failure::from)?
        };
        let splits: Vec<String> = serve.table.routes().iter().map(|r| r.split.to_string()).collect();
        let served = serve.table.all();
        flywheel_serve::run(serve, |addr| {
            if let Some(warning) = flywheel_serve::exposure_warning(addr, token.as_deref()) {
                eprintln!("warning: {warning}");
            }
            // Written, not printed: a reader that went away must not stop the server.
            let mut out = std::io::stdout().lock();
            for s in &served {
                let _ = writeln!(out, "{}  ({})", s.label(), s.reference);
            }
            for split in splits.iter().filter(|s| s.contains(' ')) {
                let _ = writeln!(out, "split: {split}");
            }
            // Last, so that whoever reads the output knows it is complete.
            let _ = writeln!(out, "serving on http://{addr} (OIP v2 at /v2, MLflow scoring at /invocations)");
            let _ = out.flush();
        })
        .await
        .map_err(Failure::from)
    })?;
    eprintln!("stopped");
    Ok(0)
}
