//! `flywheel serve`: flags to a `ServeConfig`, the models loaded, the
//! address and what is served printed, then `flywheel_serve::run` until
//! SIGTERM or Ctrl-C.

use crate::Failure;
use crate::cli::ServeArgs;
use flywheel_serve::{LogOptions, Sampling, Serve, ServeConfig};
use std::io::Write;
use std::path::Path;

pub fn run(home: &Path, args: &ServeArgs) -> Result<u8, Failure> {
    let log = if args.no_log {
        None
    } else {
        Some(LogOptions { sampling: Sampling::parse(&args.log_sample)?, ..LogOptions::default() })
    };
    let config = ServeConfig { home: home.to_path_buf(), addr: args.addr.clone(), models: args.models.clone(), log };
    crate::runtime()?.block_on(async {
        let serve = Serve::load(&config).await.map_err(Failure::from)?;
        let served = serve.table.all();
        flywheel_serve::run(serve, |addr| {
            // Written, not printed: a reader that went away must not stop the server.
            let mut out = std::io::stdout().lock();
            for s in &served {
                let _ = writeln!(out, "{}  ({})", s.label(), s.reference);
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
