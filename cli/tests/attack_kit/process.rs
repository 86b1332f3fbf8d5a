//! The validator seen from `/proc`: resident memory, its peak, sockets, CPU time, and a
//! sampler that keeps the peaks while an attack runs.

use super::*;

fn status_field_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resident memory of process `pid` now (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_field_bytes(pid, "VmRSS:")
}

/// Peak resident memory of process `pid` since it started or since [`reset_peak_rss`]
/// (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_field_bytes(pid, "VmHWM:")
}

/// Resets the peak that [`peak_rss_bytes`] reports to the current resident memory (Linux
/// `clear_refs` 5); whether it worked.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Sockets process `pid` holds open (its listener, its connections), from `/proc/PID/fd`.
pub fn socket_count(pid: u32) -> Option<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

/// Clock ticks per second of `/proc/PID/stat`.
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// CPU time process `pid` used so far, user and system together.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(
        ticks * 1000 / clock_ticks_per_second(),
    ))
}

/// The open-file limit of this process (`ulimit -n`, which child processes inherit), or `None`
/// if the shell says `unlimited` or cannot tell.
pub fn open_file_limit() -> Option<usize> {
    let out = Command::new("sh").args(["-c", "ulimit -n"]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// Sockets are counted every this many memory samples (listing the descriptors of a process
/// that holds thousands costs more than reading its memory).
const SOCKET_SAMPLE_EVERY: u32 = 10;

/// The highest values a [`ProcessSampler`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peaks {
    /// Resident memory, in bytes.
    pub rss: u64,
    /// Open sockets.
    pub sockets: usize,
}

/// Samples a process's resident memory every [`RSS_SAMPLE_INTERVAL`] (and its open sockets
/// every [`SOCKET_SAMPLE_EVERY`] samples) on its own thread and keeps the highest values; the
/// kernel's own memory peak (`VmHWM`, reset when sampling starts) is taken into account too,
/// so a spike between two samples is not missed.
pub struct ProcessSampler {
    pid: u32,
    kernel_peak: bool,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Peaks>>,
}

impl ProcessSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> ProcessSampler {
        let kernel_peak = reset_peak_rss(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peaks = Peaks::default();
                let mut samples = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    peaks.rss = peaks.rss.max(rss_bytes(pid).unwrap_or(0));
                    if samples.is_multiple_of(SOCKET_SAMPLE_EVERY) {
                        peaks.sockets = peaks.sockets.max(socket_count(pid).unwrap_or(0));
                    }
                    samples = samples.wrapping_add(1);
                    std::thread::sleep(RSS_SAMPLE_INTERVAL);
                }
                peaks
            }
        });
        ProcessSampler {
            pid,
            kernel_peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the highest values seen.
    pub fn finish(mut self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        let mut peaks = self
            .thread
            .take()
            .map(|thread| thread.join().unwrap_or_default())
            .unwrap_or_default();
        if self.kernel_peak {
            peaks.rss = peaks.rss.max(peak_rss_bytes(self.pid).unwrap_or(0));
        }
        peaks.rss = peaks.rss.max(rss_bytes(self.pid).unwrap_or(0));
        peaks
    }
}

impl Drop for ProcessSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
