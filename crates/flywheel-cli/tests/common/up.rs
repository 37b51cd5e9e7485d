//! A `flywheel up` process for the tests, its printed lines read as they
//! come, and `flywheel replay` of a file to it.
#![allow(dead_code)]

use crate::common::Env;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `flywheel up`, its stdout lines arriving on a channel.
pub struct Up {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Up {
    pub fn start(env: &Env, args: &[&str]) -> (Up, String) {
        Up::start_with(env, args, None)
    }

    pub fn start_with(env: &Env, args: &[&str], token: Option<&str>) -> (Up, String) {
        let mut all = vec!["up", "--addr", "127.0.0.1:0", "--tick-ms", "200"];
        all.extend(args);
        let mut cmd = env.cmd(&all);
        if let Some(t) = token {
            cmd.env("FLYWHEEL_TOKEN", t);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
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
    pub fn wait_for(&mut self, text: &str, limit: Duration) -> String {
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

    pub fn stop(mut self) -> (i32, Vec<String>) {
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

/// `file` sent to `up`, with its `label` column as feedback.
pub fn replay(env: &Env, addr: &str, file: &str) {
    replay_labels(env, addr, file, "label");
}

pub fn replay_labels(env: &Env, addr: &str, file: &str, labels: &str) {
    let url = format!("http://{addr}");
    let r = env.run(&["replay", file, "--to", &url, "--labels", labels]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
