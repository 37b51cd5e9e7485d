//! A request to end a long fit early (Ctrl-C, SIGTERM, a step's timeout).
//! Trainers look at it between units of work (a tree, a split, an
//! optimizer iteration, a block of rows); looking never changes what a fit
//! computes, so a fit that is not stopped gives the same model bit for bit.

use crate::MlError;

/// Whether to stop, asked between units of work. Copy it freely.
#[derive(Clone, Copy)]
pub struct Stop<'a>(Option<&'a (dyn Fn() -> bool + Sync)>);

impl Stop<'static> {
    /// A fit that always runs to its end.
    pub const NEVER: Stop<'static> = Stop(None);
}

impl<'a> Stop<'a> {
    /// Stops once `requested` returns true (e.g. a cancel token's flag).
    pub fn when(requested: &'a (dyn Fn() -> bool + Sync)) -> Self {
        Stop(Some(requested))
    }

    pub fn requested(&self) -> bool {
        self.0.is_some_and(|f| f())
    }

    /// `Err(MlError::Cancelled)` once a stop was requested.
    pub fn check(&self) -> Result<(), MlError> {
        if self.requested() { Err(MlError::Cancelled) } else { Ok(()) }
    }
}

impl std::fmt::Debug for Stop<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Stop::when(..)" } else { "Stop::NEVER" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear;
    use crate::optimize::Settings;
    use crate::transform::Matrix;
    use crate::tree::{forest, gbt};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// `rows` × 4 features and a target mixing them nonlinearly.
    fn data(rows: usize) -> (Matrix, Vec<f64>) {
        let mut state = 17u64;
        let mut u = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x = Vec::with_capacity(rows * 4);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            let r = [u(), u(), u(), u()];
            y.push(r[0] * r[1] + (6.0 * r[2]).sin() + 0.3 * u());
            x.extend(r);
        }
        (Matrix { rows, cols: 4, data: x }, y)
    }

    /// Whether `fit` ends with `Cancelled` when the stop is asked at its
    /// `looks`-th look (so it looked that often and gave up at once).
    fn stops_at_look<T>(looks: usize, fit: impl FnOnce(Stop) -> Result<T, MlError>) -> bool {
        let seen = AtomicUsize::new(0);
        let asked = || seen.fetch_add(1, Ordering::SeqCst) + 1 >= looks;
        matches!(fit(Stop::when(&asked)), Err(MlError::Cancelled))
    }

    /// How long `fit` runs on after a stop asked `after` into it.
    fn overrun<T>(after: Duration, fit: impl FnOnce(Stop) -> Result<T, MlError>) -> Duration {
        let asked_at: Mutex<Option<Instant>> = Mutex::new(None);
        let started = Instant::now();
        let asked = || {
            let mut at = asked_at.lock().unwrap();
            if at.is_none() && started.elapsed() >= after {
                *at = Some(Instant::now());
            }
            at.is_some()
        };
        let result = fit(Stop::when(&asked));
        assert!(matches!(result, Err(MlError::Cancelled)), "the fit ended before the stop was asked");
        let at = asked_at.lock().unwrap().expect("asked");
        at.elapsed()
    }

    #[test]
    fn every_trainer_gives_up_once_a_stop_is_asked() {
        let (x, y) = data(10_000);
        let w = vec![1.0; x.rows];
        let classes: Vec<usize> = y.iter().map(|v| usize::from(*v > 0.8)).collect();
        let gbt_p = gbt::Params { early_stopping: gbt::EarlyStopping::Off, ..Default::default() };
        assert!(stops_at_look(5, |s| gbt::fit(&x, &y, gbt::Loss::SquaredError, &w, &gbt_p, s)));
        assert!(stops_at_look(5, |s| forest::fit(&x, &y, false, &w, &forest::Params::tree(), s)));
        let fp = forest::Params { trees: 10, ..forest::Params::forest() };
        assert!(stops_at_look(5, |s| forest::fit_multiclass(&x, &classes, 2, &w, &fp, s)));
        let tight = Settings { max_iterations: 1000, gtol: 0.0, ftol: 0.0, memory: 10 };
        assert!(stops_at_look(3, |s| linear::logistic(&x, &classes, 2, 1e6, &w, tight, &[], s)));
        assert!(stops_at_look(3, |s| linear::lasso(&x, &y, 1e-6, 1000, 0.0, &[], s)));
        assert!(stops_at_look(3, |s| linear::least_squares(&x, &y, 0.0, None, &[], s)));
    }

    #[test]
    fn a_stopped_fit_returns_within_a_moment() {
        let (x, y) = data(20_000);
        let w = vec![1.0; x.rows];
        // Each would run for minutes.
        let p =
            gbt::Params { max_iterations: 1_000_000, early_stopping: gbt::EarlyStopping::Off, ..Default::default() };
        let boosting = overrun(Duration::from_millis(200), |s| gbt::fit(&x, &y, gbt::Loss::SquaredError, &w, &p, s));
        let fp = forest::Params { trees: 100_000, ..forest::Params::forest() };
        let forest = overrun(Duration::from_millis(200), |s| forest::fit(&x, &y, false, &w, &fp, s));
        for (what, took) in [("gbt", boosting), ("forest", forest)] {
            assert!(took < Duration::from_millis(500), "{what} ran {took:?} past the stop");
        }
    }

    #[test]
    fn looking_for_a_stop_changes_no_bit_of_the_model() {
        let (x, y) = data(3_000);
        let w = vec![1.0; x.rows];
        let never = || false;
        let looking = Stop::when(&never);
        let p = gbt::Params { max_iterations: 20, ..Default::default() };
        let a = gbt::fit(&x, &y, gbt::Loss::SquaredError, &w, &p, Stop::NEVER).unwrap().0;
        assert_eq!(a, gbt::fit(&x, &y, gbt::Loss::SquaredError, &w, &p, looking).unwrap().0);
        let fp = forest::Params { trees: 8, seed: 3, ..forest::Params::forest() };
        let a = forest::fit(&x, &y, false, &w, &fp, Stop::NEVER).unwrap();
        assert_eq!(a, forest::fit(&x, &y, false, &w, &fp, looking).unwrap());
        let classes: Vec<usize> = y.iter().map(|v| usize::from(*v > 0.8)).collect();
        let s = Settings::default();
        let a = linear::logistic(&x, &classes, 2, 1.0, &w, s, &[], Stop::NEVER).unwrap();
        let b = linear::logistic(&x, &classes, 2, 1.0, &w, s, &[], looking).unwrap();
        assert_eq!((a.coef, a.intercept), (b.coef, b.intercept));
    }
}
