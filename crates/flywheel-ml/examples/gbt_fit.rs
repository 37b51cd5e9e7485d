//! Fits boosted trees on generated data and prints the time: a target for
//! `perf` without file reading in the way.
//!
//!     cargo run --release -p flywheel-ml --example gbt_fit -- [ROWS] [FEATURES]

use flywheel_ml::Stop;
use flywheel_ml::transform::Matrix;
use flywheel_ml::tree::gbt::{EarlyStopping, Loss, Params, fit};

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(800_000);
    let cols: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let mut state = 7u64;
    let mut normal = || {
        // Box–Muller on xorshift uniforms.
        let mut u = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    };
    let mut data = Vec::with_capacity(rows * cols);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let start = data.len();
        for _ in 0..cols {
            data.push((normal() * 1e5).round() / 1e5);
        }
        let x = &data[start..];
        let z = x[0] - 0.5 * x[1] + 0.8 * x[2] * x[3] + (2.0 * x[4]).sin() + normal();
        y.push(if z > 0.0 { 1.0 } else { 0.0 });
    }
    let x = Matrix { rows, cols, data };
    let w = vec![1.0; rows];
    let p = Params { early_stopping: EarlyStopping::On, ..Params::default() };
    let t = std::time::Instant::now();
    let (_, report) = fit(&x, &y, Loss::Binary, &w, &p, Stop::NEVER).expect("fit");
    println!("{rows} rows × {cols}: {} iterations in {:.2} s", report.iterations, t.elapsed().as_secs_f64());
}
