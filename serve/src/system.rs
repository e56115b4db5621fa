//! What the stack asks of the operating system so that its own bounds are the ones that hold:
//! enough file descriptors for `--max-connections`, and memory handed back after a spike.
//!
//! A service manager often starts a process with a soft limit of 1,024 open files: a server
//! configured for 10,000 connections would then fail its accepts at about a thousand, locking out
//! every client long before its own bound. The soft limit is raised to the hard one at start-up,
//! and a warning says when even that cannot fit the connections allowed.
//!
//! glibc's allocator keeps freed memory for reuse rather than return it: after a burst of
//! connections the process would stay at its peak for good. A background task asks it to return
//! what it holds free, at most every [`TRIM_INTERVAL`].

use std::time::Duration;

/// File descriptors the server needs beyond one per connection: the listener, the runtime's, the
/// log, the page's files while they load.
const SPARE_DESCRIPTORS: u64 = 64;

/// How often free memory is handed back to the system.
pub(crate) const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Raises the soft limit on open files to the hard limit; warns if `max_connections` still cannot
/// fit under it. Returns the limit in force.
pub(crate) fn raise_open_files_limit(max_connections: u32) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct it is given, which lives for the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct it is given, which lives for the call.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit = raised;
            }
        }
        let available: u64 = limit.rlim_cur;
        let needed = u64::from(max_connections) + SPARE_DESCRIPTORS;
        if available < needed {
            tracing::warn!(
                open_files = available,
                max_connections,
                "the open-files limit is below what --max-connections needs ({needed}); \
                 accepts will fail before that many connections (raise the hard limit, \
                 e.g. LimitNOFILE=, or lower --max-connections)"
            );
        }
        Some(available)
    }
    #[cfg(not(unix))]
    {
        let _ = max_connections;
        None
    }
}

/// Hands memory the allocator holds free back to the system, every [`TRIM_INTERVAL`], for as
/// long as the returned task runs. Does nothing where the allocator is not glibc's.
pub(crate) fn spawn_memory_trim() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let mut interval = tokio::time::interval(TRIM_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                // It walks the heap: on the blocking pool, so no call waits for it.
                let _ = tokio::task::spawn_blocking(|| {
                    // SAFETY: malloc_trim takes no pointers; it only releases free memory.
                    unsafe { libc::malloc_trim(0) }
                })
                .await;
            }
        }
    })
}
