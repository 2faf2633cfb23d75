//! Time-of-day windows of `at_times` (`HH:MM[:SS]-HH:MM[:SS]`, local time): from the start
//! (inclusive) to the end (exclusive); a window whose end is before its start wraps
//! midnight (`22:00-06:00`). `24:00` is allowed as an end (`18:00-24:00`). Also
//! [`local_seconds_of_day`], the clock a caller passes to the matcher.

use chrono::Timelike;

use super::ast::list_items;

const DAY: u32 = 24 * 3600;

/// One window, in seconds since local midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    start: u32,
    end: u32,
}

impl TimeWindow {
    /// A `,`-separated list of windows.
    pub fn parse_list(list: &str) -> Result<Vec<TimeWindow>, String> {
        list_items(list, "time range")?
            .into_iter()
            .map(TimeWindow::parse)
            .collect()
    }

    /// `HH:MM[:SS]-HH:MM[:SS]`.
    pub fn parse(text: &str) -> Result<TimeWindow, String> {
        let bad = |why: &str| format!("bad time range '{text}': {why}");
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| bad("expected HH:MM[:SS]-HH:MM[:SS]"))?;
        let start = time_of_day(a).ok_or_else(|| bad("expected HH:MM[:SS]-HH:MM[:SS]"))?;
        let end = time_of_day(b).ok_or_else(|| bad("expected HH:MM[:SS]-HH:MM[:SS]"))?;
        if start == DAY {
            return Err(bad("24:00 can only end a range"));
        }
        if start == end % DAY {
            return Err(bad("empty range (start equals end)"));
        }
        Ok(TimeWindow { start, end })
    }

    /// Is `t` (seconds since local midnight, 0..86400) inside?
    #[inline]
    pub fn contains(&self, t: u32) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// `HH:MM` or `HH:MM:SS` in seconds; `24:00[:00]` is 86400.
fn time_of_day(s: &str) -> Option<u32> {
    let num = |p: &str, max: u32| -> Option<u32> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok().filter(|v| *v <= max)
    };
    let mut parts = s.split(':');
    let h = num(parts.next()?, 24)?;
    let m = num(parts.next()?, 59)?;
    let sec = match parts.next() {
        None => 0,
        Some(p) => num(p, 59)?,
    };
    if parts.next().is_some() {
        return None;
    }
    let t = h * 3600 + m * 60 + sec;
    (t <= DAY).then_some(t)
}

/// Seconds since local midnight now (the machine's time zone, as `chrono::Local` reads
/// it), for [`Statement::now_seconds_of_day`](super::Statement::now_seconds_of_day).
/// Needed only when [`RuleSet::needs_time`](super::RuleSet::needs_time).
pub fn local_seconds_of_day() -> u32 {
    chrono::Local::now().num_seconds_from_midnight() % DAY
}
