//! `flywheel up` through the real binary: a deployment served and
//! monitored; traffic that drifts from the training data (sent with
//! `flywheel replay`) fires the drift trigger after two windows in a row,
//! and the run it starts records why; SIGTERM stops it; started again with
//! no file named, `up` runs the deployment recorded in the home and does
//! not fire again for the windows already used.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `x` and `city` rows: as trained on, or with `x` moved far away.
fn rows(n: usize, shifted: bool) -> String {
    let mut s = String::from("x,city,label\n");
    for i in 0..n {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0 + if shifted { 9.0 } else { 0.0 };
        let city = if shifted { "oslo" } else { ["lyon", "oslo", "kyiv", "lima"][i % 4] };
        let label = if (x > 0.1) != (i % 11 == 0) { "yes" } else { "no" };
        s.push_str(&format!("{x:.4},{city},{label}\n"));
    }
    s
}

const DEPLOYMENT: &str = r#"
[deployment]
pipeline = "clf.toml"
[monitoring]
window = 20
[[trigger]]
on = "drift"
windows = 2
cooldown = "10m"
"#;

/// A running `flywheel up`, its stdout lines arriving on a channel.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn start(env: &Env, args: &[&str]) -> (Up, String) {
        let mut all = vec!["up", "--addr", "127.0.0.1:0", "--tick-ms", "200"];
        all.extend(args);
        let mut child = env.cmd(&all).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut up = Up { child, lines, seen: Vec::new() };
        let line = up.wait_for("serving on http://", Duration::from_secs(20));
        let addr = line.rsplit("http://").next().unwrap().to_string();
        (up, addr)
    }

    /// The first line containing `text`, within `limit`.
    fn wait_for(&mut self, text: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {text:?} within {limit:?}; printed: {:#?}", self.seen);
    }

    fn stop(mut self) -> (i32, Vec<String>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        self.seen.extend(self.lines.try_iter());
        (code, self.seen.clone())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replay(env: &Env, addr: &str, file: &str) {
    let url = format!("http://{addr}");
    let r = env.run(&["replay", file, "--to", &url, "--labels", "label"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn drifting_traffic_fires_the_drift_trigger_once_and_its_run_says_why() {
    let env = Env::new();
    env.write("train.csv", &rows(200, false));
    env.write("normal.csv", &rows(40, false));
    env.write("shifted.csv", &rows(60, true));
    env.write("clf.toml", &clf_pipeline("train.csv"));
    env.write("deploy.toml", DEPLOYMENT);
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);

    let (mut up, addr) = Up::start(&env, &["deploy.toml"]);
    replay(&env, &addr, "normal.csv");
    up.wait_for("window 2 of clf@1", Duration::from_secs(20));
    replay(&env, &addr, "shifted.csv");
    let fired = up.wait_for("trigger fired (drift:", Duration::from_secs(20));
    assert!(fired.contains("drifted from the training data in windows"), "{fired}");
    up.wait_for("succeeded", Duration::from_secs(60));
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    let windows = printed.iter().filter(|l| l.contains("window ")).count();
    assert_eq!(windows, 5, "100 rows in windows of 20: {printed:#?}");

    let runs = env.runs();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let triggered = runs.iter().find(|r| r["trigger"] != "manual").unwrap();
    assert!(triggered["trigger"].as_str().unwrap().starts_with("drift: "), "{triggered}");
    assert_eq!(triggered["status"], "succeeded");

    // Again, with the deployment recorded in the home: more drifted traffic,
    // but the windows that fired are used and the cooldown runs.
    let (mut up, addr) = Up::start(&env, &[]);
    replay(&env, &addr, "shifted.csv");
    up.wait_for("window 8 of clf@1", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(600));
    let (code, printed) = up.stop();
    assert_eq!(code, 0);
    assert!(!printed.iter().any(|l| l.contains("trigger fired")), "fired again: {printed:#?}");
    assert_eq!(env.runs().as_array().unwrap().len(), 2);
}
