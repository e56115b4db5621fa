//! Child processes that tests and tasks start (servers, browser drivers, `trunk serve`, third-party
//! clients): each runs in a process group of its own, and dropping its guard stops the whole group
//! by its id, grandchildren such as a browser included. Also free loopback ports, and waiting until
//! a child listens on one.
//!
//! Blocking and light (std and libc only), so `xtask` uses it without building a server.

use std::{
    collections::BTreeSet,
    net::{TcpListener, TcpStream},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

/// How long a stopped group has to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A child process in a process group of its own; on drop the group gets SIGTERM, then SIGKILL
/// after [`STOP_GRACE`], and the child is reaped.
pub struct ChildProcess {
    name: String,
    child: Child,
}

impl ChildProcess {
    /// Starts `command` (standard input closed) in a new process group.
    pub fn spawn(command: &mut Command) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let name = describe(command);
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Self { name, child })
    }

    /// The process id, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has already exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited early ({status})", self.name)),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the process alone (not its group).
    pub fn signal(&self, signal: libc::c_int) -> Result<(), String> {
        // SAFETY: kill(2) on our own child, which is not reaped before `self` is dropped.
        match unsafe { libc::kill(self.pid() as libc::pid_t, signal) } {
            0 => Ok(()),
            _ => Err(format!(
                "cannot signal {}: {}",
                self.name,
                std::io::Error::last_os_error()
            )),
        }
    }

    /// Waits up to `within` for the process to exit.
    pub fn exit_status(&mut self, within: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!("{} is still running after {within:?}", self.name));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until something listens on the loopback `port`, failing if this process exits first
    /// or nothing listens within `within`.
    pub fn wait_for_port(&mut self, port: u16, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while !is_listening(port) {
            self.check_running()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "nothing listens on port {port} after {within:?} ({})",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group `spawn` created; it holds
        // only this child and its descendants.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (grandchildren such as a browser) goes too.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The command line, for messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// A free loopback port (free when asked; the caller binds it soon after). Never the same port
/// twice in one process: the kernel may hand a just-released port out again before the first
/// caller's child process has bound it.
pub fn free_port() -> Result<u16, String> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("cannot find a free loopback port: {e}"))?
            .port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
}

/// Whether a listener accepts on the loopback `port`. A connection to an unbound port in the
/// ephemeral range can be given that same port as its source and connect to itself; that is not
/// a listener (and it holds the port, so the process meant to bind it fails).
pub fn is_listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port))
        .is_ok_and(|stream| stream.local_addr().ok() != stream.peer_addr().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_stops_the_whole_group() {
        // The shell starts a grandchild, writes down its id and waits for it; the grandchild
        // must be gone (or a zombie, dead but not yet reaped by init) after the drop.
        let pid_file = std::env::temp_dir().join(format!("group-test-{}", std::process::id()));
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let shell = ChildProcess::spawn(Command::new("sh").args(["-c", &script])).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let grandchild = loop {
            match std::fs::read_to_string(&pid_file).map(|text| text.trim().parse::<u32>()) {
                Ok(Ok(pid)) => break pid,
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                other => panic!("the shell wrote no pid: {other:?}"),
            }
        };
        std::fs::remove_file(&pid_file).unwrap();
        assert!(is_running(grandchild), "sleep {grandchild} should run");
        drop(shell);
        assert!(
            !is_running(grandchild),
            "sleep {grandchild} survived the guard"
        );
    }

    /// Whether `pid` is a live process: it exists and is not a zombie.
    fn is_running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    #[test]
    fn waits_for_a_listener_and_reports_an_early_exit() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sleeper = ChildProcess::spawn(Command::new("sleep").arg("60")).unwrap();
        sleeper.wait_for_port(port, Duration::from_secs(1)).unwrap();
        drop(listener);

        let mut quitter = ChildProcess::spawn(&mut Command::new("true")).unwrap();
        let error = quitter
            .wait_for_port(free_port().unwrap(), Duration::from_secs(5))
            .unwrap_err();
        assert!(error.contains("true exited early"), "{error}");
    }

    #[test]
    fn never_hands_out_a_port_twice() {
        let ports: BTreeSet<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 50);
    }
}
