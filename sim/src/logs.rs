//! Simulated container logs.
//!
//! A container's log is a pure function of the sim's seed, the pod's uid, the
//! container name and the container's start time: line `i` is written at
//! `start + i × period` and its text is drawn from a hash of those inputs. Nothing is
//! buffered, so 50 000 pods cost nothing until someone reads a log, and the same seed
//! always produces the same lines. Only the last [`RETAINED_LINES`] lines are kept, as
//! if the kubelet rotated the file.
//!
//! Lines come in the formats the log viewer must classify: JSON with `level`,
//! logfmt `level=…`, bracketed `[WARN]`, `panic:` lines and plain text.

use std::time::Duration;

use time::OffsetDateTime;

/// How many lines of a container's log are kept (older ones are "rotated away").
pub const RETAINED_LINES: u64 = 1000;

/// The log of one container run.
#[derive(Debug, Clone)]
pub struct ContainerLog {
    key: u64,
    start: OffsetDateTime,
    period: Duration,
    /// When the container stopped; no lines are written after it.
    end: Option<OffsetDateTime>,
}

/// SplitMix64: a small, well-known mixing function, good enough to spread hashes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_str(seed: u64, s: &str) -> u64 {
    s.bytes().fold(mix(seed), |h, b| mix(h ^ u64::from(b)))
}

impl ContainerLog {
    /// The log of `container` in the pod with uid `pod_uid`, started at `start`.
    pub fn new(seed: u64, pod_uid: &str, container: &str, start: OffsetDateTime) -> Self {
        let key = hash_str(hash_str(seed, pod_uid), container);
        // Between 0.4 s and 2 s between lines: lively but readable.
        let period = Duration::from_millis(400 + key % 1600);
        Self {
            key,
            start,
            period,
            end: None,
        }
    }

    /// Stops the log at `end` (the container terminated then).
    pub fn ending_at(mut self, end: Option<OffsetDateTime>) -> Self {
        self.end = end;
        self
    }

    /// When line `i` is written.
    pub fn time_of(&self, i: u64) -> OffsetDateTime {
        let nanos = self.period.as_nanos() * u128::from(i);
        self.start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Number of lines written up to `now` (counting rotated ones).
    pub fn written_by(&self, now: OffsetDateTime) -> u64 {
        let now = self.end.map_or(now, |end| end.min(now));
        if now < self.start {
            return 0;
        }
        let elapsed = (now - self.start).whole_nanoseconds().max(0) as u128;
        u64::try_from(elapsed / self.period.as_nanos() + 1).unwrap_or(u64::MAX)
    }

    /// Whether the container has stopped writing.
    pub fn ended(&self, now: OffsetDateTime) -> bool {
        self.end.is_some_and(|end| end <= now)
    }

    /// Indices of the lines a request returns at `now`: the retained lines, narrowed to
    /// the last `tail` and to those written in the last `since`.
    pub fn selection(&self, now: OffsetDateTime, tail: Option<u64>, since: Option<Duration>) -> std::ops::Range<u64> {
        let written = self.written_by(now);
        let mut first = written.saturating_sub(RETAINED_LINES);
        if let Some(tail) = tail {
            first = first.max(written.saturating_sub(tail));
        }
        if let Some(since) = since {
            let cutoff = now - since;
            while first < written && self.time_of(first) < cutoff {
                first += 1;
            }
        }
        first..written
    }

    /// The text of line `i` (without timestamp or newline).
    pub fn line(&self, i: u64) -> String {
        let h = mix(self.key ^ mix(i));
        let pick = |n: u64, salt: u64| (mix(h ^ salt) % n) as usize;
        const PATHS: &[&str] = &[
            "/api/cart",
            "/api/orders",
            "/healthz",
            "/api/users",
            "/metrics",
            "/api/checkout",
        ];
        const WARNINGS: &[&str] = &[
            "slow query on orders table",
            "retrying upstream request",
            "cache miss ratio above 40%",
            "connection pool nearly exhausted",
        ];
        const ERRORS: &[&str] = &[
            "upstream timed out after 5s",
            "failed to reach payments service: connection refused",
            "could not decode request body",
        ];
        let path = PATHS[pick(PATHS.len() as u64, 1)];
        let latency = 2 + mix(h ^ 2) % 400;
        let level_roll = mix(h ^ 3) % 100;
        let (level, message) = match level_roll {
            0..=2 => ("error", ERRORS[pick(ERRORS.len() as u64, 4)].to_string()),
            3..=9 => ("warn", WARNINGS[pick(WARNINGS.len() as u64, 5)].to_string()),
            10..=14 => ("debug", format!("cache hit for key session:{}", h % 10_000)),
            _ => ("info", format!("GET {path} 200 {latency}ms")),
        };
        match h % 10 {
            0..=3 => format!("{{\"level\":\"{level}\",\"msg\":\"{message}\",\"line\":{i},\"latency_ms\":{latency}}}"),
            4..=5 => format!("level={level} msg=\"{message}\" line={i}"),
            6..=7 => format!("[{}] {message}", level.to_ascii_uppercase()),
            8 if level == "error" => format!(
                "panic: runtime error: index out of range [{}] with length {}",
                h % 8 + 1,
                h % 8 + 1
            ),
            _ => format!("{message} (errors=0, line {i})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn the_same_inputs_give_the_same_log() {
        let a = ContainerLog::new(7, "uid-1", "app", at(0));
        let b = ContainerLog::new(7, "uid-1", "app", at(0));
        let c = ContainerLog::new(8, "uid-1", "app", at(0));
        assert_eq!(a.line(5), b.line(5));
        assert!((0..20).any(|i| a.line(i) != c.line(i)));
    }

    #[test]
    fn lines_are_written_over_time_and_tail_selects_the_end() {
        let log = ContainerLog::new(1, "uid", "app", at(0));
        assert_eq!(log.written_by(at(-1)), 0);
        assert_eq!(log.written_by(at(0)), 1);
        let n = log.written_by(at(60));
        assert!(n > 29 && n <= 151, "{n}");
        assert_eq!(log.selection(at(60), Some(5), None), n - 5..n);
        let recent = log.selection(at(60), None, Some(Duration::from_secs(10)));
        assert!(recent.start > 0 && log.time_of(recent.start) >= at(50));
    }

    #[test]
    fn rotation_and_termination_bound_the_log() {
        let log = ContainerLog::new(1, "uid", "app", at(0));
        let day = log.selection(at(86_400), None, None);
        assert_eq!(day.end - day.start, RETAINED_LINES);
        let stopped = log.ending_at(Some(at(10)));
        assert_eq!(stopped.written_by(at(100)), stopped.written_by(at(10)));
        assert!(stopped.ended(at(11)));
    }

    #[test]
    fn several_formats_appear() {
        let log = ContainerLog::new(3, "uid", "app", at(0));
        let lines: Vec<String> = (0..400).map(|i| log.line(i)).collect();
        assert!(lines.iter().any(|l| l.starts_with("{\"level\"")));
        assert!(lines.iter().any(|l| l.starts_with("level=")));
        assert!(lines.iter().any(|l| l.starts_with('[')));
        assert!(lines.iter().any(|l| l.contains("errors=0")));
    }
}
