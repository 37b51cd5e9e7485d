use super::*;
use flywheel_deploy::{Trigger, TriggerKind, WhenBusy};
use proptest::prelude::*;
use std::time::Duration;

const MIN: i64 = 60_000_000;

fn trigger(kind: TriggerKind, cooldown_min: u64) -> Trigger {
    Trigger { kind, cooldown: Duration::from_secs(cooldown_min * 60), when_busy: WhenBusy::Skip }
}

fn window(id: i64, drift: bool) -> WindowView {
    WindowView { id, first_us: id * MIN, drift: drift.then_some((5, 8)), out_of_bound: None }
}

#[test]
fn windows_that_began_before_the_trigger_never_fire_it() {
    let t = trigger(TriggerKind::Drift { windows: 2 }, 0);
    let w: Vec<WindowView> = (1..=4).map(|i| window(i, true)).collect();
    // Windows 1–3 began before minute 3½: only window 4 is its own.
    let late = TriggerState { since_us: 3 * MIN + MIN / 2, ..TriggerState::default() };
    assert_eq!(decide(&t, &late, &w, 10 * MIN), None);
    let mut w = w;
    w.push(window(5, true));
    assert_eq!(
        decide(&t, &late, &w, 10 * MIN).map(|f| f.reason),
        Some("drift: 5 of 8 columns drifted from the training data in windows 4–5".into())
    );
}

#[test]
fn drift_fires_after_n_drifted_windows_in_a_row_and_names_them() {
    let t = trigger(TriggerKind::Drift { windows: 3 }, 10);
    let w: Vec<WindowView> =
        [false, true, true, false, true, true].iter().zip(1..).map(|(d, i)| window(i, *d)).collect();
    assert_eq!(decide(&t, &TriggerState::default(), &w, 0), None, "two in a row are not three");
    let mut w = w;
    w.push(window(7, true));
    let f = decide(&t, &TriggerState::default(), &w, 0).unwrap();
    assert_eq!(f.reason, "drift: 5 of 8 columns drifted from the training data in windows 5–7");
    assert_eq!(f.window, Some(7));
}

#[test]
fn windows_used_by_a_firing_never_count_again_and_the_cooldown_is_waited_out() {
    let t = trigger(TriggerKind::Drift { windows: 2 }, 10);
    let w: Vec<WindowView> = (1..=4).map(|i| window(i, true)).collect();
    let fired = TriggerState { fired_us: Some(0), used_window: 4, ..TriggerState::default() };
    assert_eq!(decide(&t, &fired, &w, 5 * MIN), None, "in its cooldown");
    assert_eq!(decide(&t, &fired, &w, 11 * MIN), None, "the same windows again");
    let mut w = w;
    w.extend([window(5, true), window(6, true)]);
    assert_eq!(decide(&t, &fired, &w, 5 * MIN), None, "new windows, but still cooling down");
    assert_eq!(decide(&t, &fired, &w, 11 * MIN).and_then(|f| f.window), Some(6));
}

#[test]
fn performance_fires_on_its_metric_out_of_bound() {
    let t = trigger(TriggerKind::Performance { windows: 1 }, 0);
    let out =
        WindowView { id: 9, first_us: 0, drift: None, out_of_bound: Some(("rmse".into(), 150.25, "<= 120".into())) };
    let f = decide(&t, &TriggerState::default(), &[window(8, true), out], 0).unwrap();
    assert_eq!(f.reason, "performance: rmse 150.2500 is not <= 120 in window 9");
    assert_eq!(decide(&t, &TriggerState::default(), &[window(8, true)], 0), None, "drift is not performance");
}

#[test]
fn a_schedule_fires_once_for_the_ticks_it_missed() {
    let s = flywheel_deploy::cron::Schedule::parse("0 3 * * *").unwrap();
    let t = trigger(TriggerKind::Schedule(Box::new(s)), 0);
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros();
    let looked = TriggerState { looked_us: Some(at("2026-11-30T02:00:00Z")), ..TriggerState::default() };
    assert_eq!(decide(&t, &looked, &[], at("2026-11-30T02:59:00Z")), None);
    let f = decide(&t, &looked, &[], at("2026-11-30T03:00:00Z")).unwrap();
    assert_eq!(f.reason, "schedule: `0 3 * * *` at 2026-11-30 03:00 UTC");
    // Down for three days: one firing, for the first tick missed; the loop
    // then looks from now on, so the other two are not replayed.
    assert!(decide(&t, &looked, &[], at("2026-12-03T12:00:00Z")).is_some());
    let now = TriggerState { looked_us: Some(at("2026-12-03T12:00:00Z")), ..looked };
    assert_eq!(decide(&t, &now, &[], at("2026-12-03T12:00:01Z")), None);
}

proptest! {
    /// Whatever the windows and the state, a firing uses only windows newer
    /// than those already used, and never during the cooldown.
    #[test]
    fn a_firing_uses_fresh_windows_outside_the_cooldown(
        drifted in proptest::collection::vec(any::<bool>(), 0..30),
        n in 1u32..5,
        used in 0i64..30,
        fired in proptest::option::of(0i64..100),
        now in 0i64..200,
    ) {
        let t = trigger(TriggerKind::Drift { windows: n }, 1);
        let w: Vec<WindowView> = drifted.iter().zip(1..).map(|(d, i)| window(i, *d)).collect();
        let state = TriggerState { fired_us: fired.map(|f| f * MIN / 10), used_window: used, ..TriggerState::default() };
        let fresh: Vec<bool> = drifted.iter().skip(used.max(0) as usize).copied().collect();
        let has_run = fresh.windows(n as usize).any(|r| r.iter().all(|d| *d));
        let cooled = fired.is_none_or(|f| now - f >= 10);
        match decide(&t, &state, &w, now * MIN / 10) {
            Some(f) => {
                prop_assert!(cooled && has_run);
                prop_assert_eq!(f.window, Some(drifted.len() as i64), "a firing uses every window seen");
            }
            None => prop_assert!(!(cooled && has_run), "a run of {} drifted windows was not fired", n),
        }
    }
}

#[test]
fn on_demand_fires_once_for_every_request_waiting_after_its_cooldown() {
    let t = trigger(TriggerKind::OnDemand, 10);
    let none: Vec<(String, String)> = Vec::new();
    assert_eq!(on_demand(&t, &TriggerState::default(), &none, 0), None);
    let asked = vec![("first".to_string(), "ana".to_string()), ("new labels".to_string(), "http".to_string())];
    let f = on_demand(&t, &TriggerState::default(), &asked, 0).unwrap();
    assert_eq!(f.reason, "on_demand: new labels, asked by http (and 1 earlier request(s))");
    let cooling = TriggerState { fired_us: Some(0), ..TriggerState::default() };
    assert_eq!(on_demand(&t, &cooling, &asked, 5 * MIN), None, "waits out its cooldown");
    assert!(on_demand(&t, &cooling, &asked, 10 * MIN).is_some());
}

#[test]
fn new_data_fires_for_settled_untaken_files_after_its_cooldown() {
    let t = trigger(TriggerKind::NewData { path: "incoming".into(), settle: Duration::from_secs(2) }, 10);
    let file =
        |name: &str, seen_s: i64, taken: bool| FileView { name: name.into(), seen_us: seen_s * 1_000_000, taken };
    let files = vec![file("a.csv", 0, true), file("b.csv", 10, false), file("c.csv", 11, false)];
    let none = TriggerState::default();
    // At 11.5 s nothing has stayed 2 s; at 12 s b has; at 13 s both.
    assert_eq!(new_data(&t, &none, &files, Duration::from_secs(2), 11_500_000), None);
    let (f, names) = new_data(&t, &none, &files, Duration::from_secs(2), 12_000_000).unwrap();
    assert_eq!((f.reason.as_str(), names), ("new_data: 1 new file(s): b.csv", vec!["b.csv".to_string()]));
    let (_, names) = new_data(&t, &none, &files, Duration::from_secs(2), 13_000_000).unwrap();
    assert_eq!(names, ["b.csv", "c.csv"]);
    let cooling = TriggerState { fired_us: Some(12_000_000), ..TriggerState::default() };
    assert_eq!(new_data(&t, &cooling, &files, Duration::from_secs(2), 13_000_000), None);
}

/// A `new_data` firing's files, as one `path`: read back as spans, exactly
/// those files, whatever their names hold (a comma, braces, a star).
#[test]
fn a_new_span_names_exactly_the_new_files() {
    let dir = std::env::temp_dir().join(format!("flywheel-new-span-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["2012-01.csv", "2012-02.csv", "a,b {1}*.csv", "old.csv"] {
        std::fs::write(dir.join(name), "x\n1\n").unwrap();
    }
    let full = |n: &str| dir.join(n).display().to_string();
    let new = [full("2012-02.csv"), full("a,b {1}*.csv"), full("2012-01.csv")];
    let span = new_span(&new).unwrap();
    let read: Vec<String> = flywheel_data::spans::spans(std::path::Path::new(&span))
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut want = new.to_vec();
    want.sort();
    assert_eq!(read, want, "{span}");
    assert_eq!(new_span(&new[..1]).unwrap(), full("2012-02.csv"), "one file is its own path");
    let one = new_span(&[full("a,b {1}*.csv")]).unwrap();
    let read = flywheel_data::spans::spans(std::path::Path::new(&one)).unwrap();
    assert_eq!(read, [dir.join("a,b {1}*.csv")], "a name that reads as a glob, escaped: {one}");
    assert_eq!(new_span(&[]), None);
    let elsewhere = [full("old.csv"), std::env::temp_dir().join("x.csv").display().to_string()];
    assert_eq!(new_span(&elsewhere), None, "files of two folders are no one span");
    std::fs::remove_dir_all(&dir).unwrap();
}
