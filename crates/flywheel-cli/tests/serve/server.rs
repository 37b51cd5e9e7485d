//! A real `flywheel serve` process for the serve tests: started on a free
//! port, its printed lines kept, ready when `/v2/health/ready` answers.
#![allow(dead_code)]

use crate::common::Env;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// A running `flywheel serve`, stopped (SIGKILL) if a test fails first.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub printed: Vec<String>,
}

impl Server {
    pub fn start(env: &Env, models: &[&str]) -> Server {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend(models);
        let mut child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let mut printed = Vec::new();
        let mut addr = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("serving on http://") {
                addr = rest.split(' ').next().map(str::to_string);
                break;
            }
            printed.push(line);
        }
        let Some(addr) = addr else {
            let out = child.wait_with_output().unwrap();
            panic!("serve did not start: {printed:?} {}", String::from_utf8_lossy(&out.stderr));
        };
        for _ in 0..100 {
            if super::http::call(&addr, "GET", "/v2/health/ready", &[], b"").is_ok_and(|r| r.status == 200) {
                return Server { child, addr, printed };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{addr} never became ready");
    }

    /// SIGTERM, then the exit status and stderr.
    pub fn stop(mut self) -> (i32, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
