//! A `command` step's program runs in a process group of its own, so that
//! whatever it starts ends with it: on a timeout or a cancel the group gets
//! SIGTERM, then SIGKILL after [`GRACE`]; when the program exits, what it
//! left running in its group is ended the same way.
//!
//! Flywheel itself may die without a word (SIGKILL), and the kernel's
//! parent-death signal reaches only a direct child. So on Linux, once the
//! binary calls [`enable`], the program runs under a supervisor: the same
//! binary started as `flywheel __flywheel-supervise …` ([`run_if_asked`]).
//! The supervisor gets SIGTERM when flywheel dies (`PR_SET_PDEATHSIG`) and
//! then ends the group; it also adopts and reaps the group's orphans
//! (`PR_SET_CHILD_SUBREAPER`), so it knows when the group is really gone.
//! Without a supervisor (library use, other unixes) the group is still
//! ended on timeout and cancel, but only the program itself gets the
//! parent-death signal.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a stopped group may take to exit after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);

/// The first argument that makes the binary a supervisor.
const SUPERVISE_ARG: &str = "__flywheel-supervise";

static SUPERVISOR: OnceLock<PathBuf> = OnceLock::new();

/// Makes `command` steps run under `exe` as supervisor (the binary itself,
/// which must call [`run_if_asked`] first thing in `main`). Linux only;
/// elsewhere, or when `exe` cannot be found, this does nothing.
pub fn enable(exe: PathBuf) {
    if cfg!(target_os = "linux") && exe.exists() {
        let _ = SUPERVISOR.set(exe);
    }
}

/// A program ready to start in its own process group; set its environment,
/// folder and output through [`Launch::cmd`].
pub struct Launch {
    cmd: Command,
    program: String,
    supervised: bool,
}

/// Prepares `program args…`, under the supervisor when one is enabled.
pub fn command(program: &str, args: &[String]) -> Launch {
    let (cmd, supervised) = match SUPERVISOR.get() {
        Some(exe) => {
            let mut cmd = Command::new(exe);
            cmd.arg(SUPERVISE_ARG).arg(program).args(args);
            (cmd, true)
        }
        None => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            (cmd, false)
        }
    };
    Launch { cmd, program: program.to_string(), supervised }
}

impl Launch {
    pub fn cmd(&mut self) -> &mut Command {
        &mut self.cmd
    }
}

/// A started program and its process group.
pub struct Group {
    child: Child,
    supervised: bool,
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    /// Whether any process is left in group `pgid`.
    pub(super) fn group_alive(pgid: i32) -> bool {
        // SAFETY: kill with signal 0 only checks that the group exists.
        unsafe { libc::kill(-pgid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
    }

    pub(super) fn signal_group(pgid: i32, signal: i32) {
        // SAFETY: signals only the group that was made for the program.
        unsafe { libc::kill(-pgid, signal) };
    }

    /// SIGTERM to the group, SIGKILL after `grace` if some of it is left;
    /// `reap` collects exited members meanwhile (they would count as alive).
    pub(super) fn end_group(pgid: i32, grace: Duration, reap: &mut dyn FnMut()) {
        reap();
        if !group_alive(pgid) {
            return;
        }
        signal_group(pgid, libc::SIGTERM);
        if !wait_until_gone(pgid, grace, reap) {
            signal_group(pgid, libc::SIGKILL);
            wait_until_gone(pgid, Duration::from_secs(1), reap);
        }
    }

    fn wait_until_gone(pgid: i32, limit: Duration, reap: &mut dyn FnMut()) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            reap();
            if !group_alive(pgid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    impl Launch {
        /// Starts the program; the error says why it could not start.
        pub fn spawn(mut self) -> Result<Group, String> {
            let program = self.program.clone();
            let cannot = |e: std::io::Error| format!("cannot start `{program}`: {e}");
            self.cmd.process_group(0);
            if !self.supervised {
                set_parent_death_signal(&mut self.cmd, libc::SIGKILL);
                let child = self.cmd.spawn().map_err(cannot)?;
                return Ok(Group { child, supervised: false });
            }
            // The supervisor reports a program that cannot start through a
            // pipe (its stdout and stderr are the step's log).
            let (mut reader, writer) = std::io::pipe().map_err(cannot)?;
            let fd = writer.as_raw_fd();
            self.cmd.env(STATUS_FD_VAR, fd.to_string()).env(PARENT_VAR, std::process::id().to_string());
            set_parent_death_signal(&mut self.cmd, libc::SIGTERM);
            // SAFETY: fcntl is async-signal-safe; it keeps the pipe's write
            // end open across exec in the child only.
            unsafe {
                self.cmd.pre_exec(move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = self.cmd.spawn().map_err(cannot)?;
            drop(writer);
            let mut message = String::new();
            let _ = reader.read_to_string(&mut message);
            if !message.is_empty() {
                let _ = child.wait();
                return Err(message);
            }
            Ok(Group { child, supervised: true })
        }
    }

    /// The child gets `signal` when the thread that started it ends (the
    /// thread lives as long as the step).
    fn set_parent_death_signal(cmd: &mut Command, signal: i32) {
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id() as i32;
            // SAFETY: prctl and getppid are async-signal-safe and touch only the child.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent died before the signal was armed.
                    if libc::getppid() != parent {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                    Ok(())
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (cmd, signal);
    }

    impl Group {
        pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
            self.child.try_wait()
        }

        /// Ends the program's group (SIGTERM, SIGKILL after [`GRACE`]) and
        /// reaps the program.
        pub fn stop(&mut self) {
            let pid = self.child.id() as i32;
            if self.supervised {
                // The supervisor ends the group, then exits.
                // SAFETY: signals our own child process.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                let deadline = Instant::now() + GRACE + Duration::from_secs(2);
                while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            } else {
                let child = &mut self.child;
                end_group(pid, GRACE, &mut || {
                    let _ = child.try_wait();
                });
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        /// After the program exited: ends what it left running in its group.
        pub fn end_leftovers(&mut self) {
            // A supervisor has done so before exiting.
            if !self.supervised {
                end_group(self.child.id() as i32, GRACE, &mut || {});
            }
        }
    }
}

#[cfg(not(unix))]
impl Launch {
    pub fn spawn(mut self) -> Result<Group, String> {
        let child = self.cmd.spawn().map_err(|e| format!("cannot start `{}`: {e}", self.program))?;
        Ok(Group { child, supervised: false })
    }
}

#[cfg(not(unix))]
impl Group {
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    pub fn end_leftovers(&mut self) {}
}

/// Where the supervisor reports a program that cannot start, and who its
/// parent must be (set for the supervisor only).
const STATUS_FD_VAR: &str = "FLYWHEEL_SUPERVISOR_STATUS_FD";
const PARENT_VAR: &str = "FLYWHEEL_SUPERVISOR_PARENT";

/// When the binary was started as a supervisor, supervises and returns its
/// exit code; `None` otherwise. Call it before parsing flags.
pub fn run_if_asked() -> Option<u8> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != SUPERVISE_ARG {
        return None;
    }
    let argv: Vec<std::ffi::OsString> = args.collect();
    #[cfg(target_os = "linux")]
    let code = supervisor::run(&argv);
    #[cfg(not(target_os = "linux"))]
    let code = {
        let _ = argv;
        eprintln!("flywheel: {SUPERVISE_ARG} is only used on Linux");
        2
    };
    Some(code)
}

#[cfg(target_os = "linux")]
mod supervisor {
    use super::unix::end_group;
    use super::*;
    use std::cell::Cell;
    use std::ffi::OsString;
    use std::io::Write;
    use std::os::fd::FromRawFd;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::sync::atomic::{AtomicBool, Ordering};

    static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn request_stop(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }

    fn env_i32(name: &str) -> Option<i32> {
        std::env::var(name).ok()?.parse().ok()
    }

    /// Runs `program args…` in a new group until it exits or a stop is
    /// asked (SIGTERM, SIGINT, SIGHUP, or flywheel gone); returns the exit
    /// code, or dies of the program's signal.
    pub(super) fn run(argv: &[OsString]) -> u8 {
        let (Some((program, args)), Some(fd), Some(parent)) =
            (argv.split_first(), env_i32(STATUS_FD_VAR), env_i32(PARENT_VAR))
        else {
            eprintln!("flywheel: {SUPERVISE_ARG} is internal to `command` steps");
            return 2;
        };
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            // SAFETY: the handler only stores to an atomic.
            unsafe { libc::signal(signal, request_stop as *const () as libc::sighandler_t) };
        }
        // SAFETY: flywheel handed this descriptor over for this report alone.
        let mut status = unsafe { std::fs::File::from_raw_fd(fd) };
        // SAFETY: plain syscalls on our own process and descriptor.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        }
        let flywheel_gone = || {
            // SAFETY: getppid has no preconditions.
            let now = unsafe { libc::getppid() };
            now != parent
        };
        if flywheel_gone() || STOP.load(Ordering::SeqCst) {
            return 1;
        }
        let mut cmd = Command::new(program);
        cmd.args(args).env_remove(STATUS_FD_VAR).env_remove(PARENT_VAR).process_group(0);
        // SAFETY: prctl is async-signal-safe; if the supervisor is killed
        // outright, its program goes with it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let pid = match cmd.spawn() {
            Ok(child) => child.id() as i32,
            Err(e) => {
                let _ = write!(status, "cannot start `{}`: {e}", program.to_string_lossy());
                return 127;
            }
        };
        drop(status);
        let wait_status = supervise(pid, &flywheel_gone);
        exit_like(ExitStatus::from_raw(wait_status))
    }

    /// Waits for the program, ending its group on a stop; then ends what
    /// is left of the group. Returns the program's wait status.
    fn supervise(pid: i32, flywheel_gone: &dyn Fn() -> bool) -> i32 {
        let main: Cell<Option<i32>> = Cell::new(None);
        let mut reap = || {
            // Every process of the group is ours to reap (subreaper).
            loop {
                let mut st = 0;
                // SAFETY: waits on our own children without blocking.
                let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
                if r <= 0 {
                    break;
                }
                if r == pid {
                    main.set(Some(st));
                }
            }
        };
        let mut polls = 0u32;
        loop {
            reap();
            if main.get().is_some() || STOP.load(Ordering::SeqCst) || flywheel_gone() {
                break;
            }
            polls += 1;
            std::thread::sleep(if polls < 200 { Duration::from_micros(250) } else { Duration::from_millis(10) });
        }
        end_group(pid, GRACE, &mut reap);
        if main.get().is_none() {
            let mut st = 0;
            // SAFETY: waits for our own child, killed by now.
            if unsafe { libc::waitpid(pid, &mut st, 0) } == pid {
                main.set(Some(st));
            }
        }
        main.get().unwrap_or(libc::SIGKILL)
    }

    /// The program's exit code, or the same death by signal.
    fn exit_like(status: ExitStatus) -> u8 {
        if let Some(code) = status.code() {
            return code as u8;
        }
        let signal = status.signal().unwrap_or(libc::SIGKILL);
        // SAFETY: restores the default action (and no core file of ours),
        // then raises the signal on this process.
        unsafe {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        128u8.wrapping_add(signal as u8)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Live processes whose command line contains `marker`.
    fn running(marker: &str) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
        dir.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(marker))
            })
            .count()
    }

    fn start(script: &str, marker: &str) -> Group {
        let mut group = command("sh", &["-c".into(), script.into()]).spawn().expect("start sh");
        let deadline = Instant::now() + Duration::from_secs(10);
        while running(marker) == 0 {
            assert!(Instant::now() < deadline, "`{marker}` did not start");
            assert!(matches!(group.try_wait(), Ok(None)), "sh ended early");
            std::thread::sleep(Duration::from_millis(10));
        }
        group
    }

    #[test]
    fn stopping_ends_the_programs_children_too() {
        let mut group = start("sleep 7.351; true", "sleep 7.351");
        group.stop();
        assert_eq!(running("sleep 7.351"), 0);
        assert!(group.try_wait().unwrap().is_some());
    }

    #[test]
    fn a_group_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let mut group = start("trap '' TERM; sleep 7.352; true", "sleep 7.352");
        let started = Instant::now();
        group.stop();
        let took = started.elapsed();
        assert_eq!(running("sleep 7.352"), 0);
        // Whatever ends it (SIGKILL after the grace, here), nothing is left
        // and stopping never waits much past the grace.
        assert!(took < GRACE + Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn what_the_program_leaves_in_the_background_ends_with_it() {
        let mut group = start("sleep 7.353 & sleep 0.2", "sleep 7.353");
        let deadline = Instant::now() + Duration::from_secs(10);
        while group.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "sh did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(running("sleep 7.353"), 1, "the background sleep outlives sh until the step ends it");
        group.end_leftovers();
        assert_eq!(running("sleep 7.353"), 0);
    }

    #[test]
    fn a_missing_program_is_named_with_the_reason() {
        let e = command("./no-such-program-here", &[]).spawn().err().expect("an error");
        assert!(e.contains("cannot start `./no-such-program-here`") && e.contains("No such file"), "{e}");
    }
}
