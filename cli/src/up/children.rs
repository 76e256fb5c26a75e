//! The processes `hospital up` supervises: spawning each in its own process group (so Ctrl-C
//! reaches only the orchestrator), noticing the first one that exits, and stopping them
//! (SIGTERM, a grace period, then SIGKILL).

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures::future::select_all;

/// One supervised process.
pub struct Child {
    /// `nats-server`, `patient`, `gateway`, ...
    pub name: &'static str,
    process: tokio::process::Child,
}

/// How a child ended when asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It ended (on SIGTERM, or earlier) with this status.
    Exited(ExitStatus),
    /// It ignored SIGTERM for the whole grace period and was killed.
    Killed,
    /// It could not be waited for.
    Lost(String),
}

impl Child {
    /// Spawns `command` (which the caller has filled in) in a process group of its own, with
    /// stdout and stderr shared with ours.
    pub fn spawn(
        name: &'static str,
        mut command: tokio::process::Command,
    ) -> std::io::Result<Child> {
        command
            .process_group(0)
            .stdin(Stdio::null())
            // If the orchestrator itself fails, no child outlives it.
            .kill_on_drop(true);
        let process = command.spawn()?;
        Ok(Child { name, process })
    }

    /// Resolves when the child exits on its own.
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.process.wait().await
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// SIGTERM to the child's process group, up to `grace` to exit, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) -> Stopped {
        if let Ok(Some(status)) = self.process.try_wait() {
            return Stopped::Exited(status);
        }
        self.signal(libc::SIGTERM);
        match tokio::time::timeout(grace, self.process.wait()).await {
            Ok(Ok(status)) => Stopped::Exited(status),
            Ok(Err(error)) => Stopped::Lost(error.to_string()),
            Err(_) => {
                self.signal(libc::SIGKILL);
                match self.process.wait().await {
                    Ok(_) => Stopped::Killed,
                    Err(error) => Stopped::Lost(error.to_string()),
                }
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // `id()` is `None` once the child has been reaped, so the group id cannot have been
        // reused by an unrelated process.
        if let Some(pid) = self.process.id() {
            // SAFETY: kill(2) has no memory-safety preconditions. The child leads its own group
            // (process_group(0)), so -pid reaches it and anything it started.
            unsafe {
                libc::kill(-(pid as libc::pid_t), signal);
            }
        }
    }
}

/// The supervised processes in the order they were started; stopped in the reverse order, so
/// the gateway goes first (no new requests), then the services, then NATS.
#[derive(Default)]
pub struct Fleet {
    children: Vec<Child>,
}

impl Fleet {
    pub fn push(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Waits for the first child to exit on its own and takes it out of the fleet: its name and
    /// status. Pending forever when the fleet is empty.
    pub async fn first_exit(&mut self) -> (&'static str, std::io::Result<ExitStatus>) {
        if self.children.is_empty() {
            return std::future::pending().await;
        }
        let waits = self
            .children
            .iter_mut()
            .map(|child| Box::pin(child.process.wait()));
        let (status, index, _) = select_all(waits).await;
        let gone = self.children.remove(index);
        (gone.name, status)
    }

    /// Stops every child, newest first, one at a time, reporting each on stderr.
    pub async fn stop_all(&mut self, grace: Duration) {
        while let Some(mut child) = self.children.pop() {
            match child.stop(grace).await {
                Stopped::Exited(status) if status.success() => {
                    eprintln!("hospital: {} stopped", child.name);
                }
                Stopped::Exited(status) => {
                    eprintln!("hospital: {} stopped ({})", child.name, describe(status));
                }
                Stopped::Killed => eprintln!(
                    "hospital: {} did not stop within {} s and was killed",
                    child.name,
                    grace.as_secs()
                ),
                Stopped::Lost(error) => {
                    eprintln!("hospital: {} could not be waited for: {error}", child.name);
                }
            }
        }
    }

    /// The names, newest first: the order [`Self::stop_all`] stops them in.
    pub fn stop_order(&self) -> Vec<&'static str> {
        self.children.iter().rev().map(|child| child.name).collect()
    }
}

/// "exit code 1", "killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(name: &'static str, script: &str) -> Child {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", script]);
        Child::spawn(name, command).unwrap()
    }

    #[tokio::test]
    async fn a_child_that_honours_sigterm_stops_within_the_grace_period() {
        let mut child = shell("sleeper", "exec sleep 30");
        let stopped = child.stop(Duration::from_secs(5)).await;
        assert!(
            matches!(stopped, Stopped::Exited(status) if describe(status) == "killed by signal 15")
        );
    }

    #[tokio::test]
    async fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let mut child = shell("stubborn", "trap '' TERM; sleep 30 & wait");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopped = child.stop(Duration::from_millis(300)).await;
        assert_eq!(stopped, Stopped::Killed);
    }

    #[tokio::test]
    async fn the_first_child_to_exit_is_named_and_the_rest_stop_newest_first() {
        let mut fleet = Fleet::default();
        fleet.push(shell("nats-server", "exec sleep 30"));
        fleet.push(shell("patient", "exit 3"));
        fleet.push(shell("gateway", "exec sleep 30"));
        let (name, status) = fleet.first_exit().await;
        assert_eq!(name, "patient");
        assert_eq!(describe(status.unwrap()), "exit code 3");
        assert_eq!(fleet.stop_order(), ["gateway", "nats-server"]);
        fleet.stop_all(Duration::from_secs(5)).await;
        assert!(fleet.stop_order().is_empty());
    }

    #[tokio::test]
    async fn a_child_runs_in_a_process_group_of_its_own() {
        let mut child = shell("grouped", "exec sleep 30");
        let pid = child.pid().unwrap() as libc::pid_t;
        // SAFETY: getpgid(2) only reads.
        let group = unsafe { libc::getpgid(pid) };
        assert_eq!(group, pid);
        child.stop(Duration::from_secs(5)).await;
    }
}
