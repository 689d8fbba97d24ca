//! A calendar quarter (`2026-Q4`): the period an export covers.

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// A calendar quarter, `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    /// Year.
    pub year: i32,
    /// 1 to 4.
    pub q: u32,
}

impl std::str::FromStr for Quarter {
    type Err = String;
    fn from_str(s: &str) -> Result<Quarter, String> {
        let bad = || format!("`{s}` is not a quarter like 2026-Q4");
        let (y, q) = s
            .split_once("-Q")
            .or_else(|| s.split_once("-q"))
            .ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let q: u32 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(Quarter { year, q })
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-Q{}", self.year, self.q)
    }
}

impl Quarter {
    /// First instant of the quarter (UTC).
    pub(crate) fn start(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, 3 * self.q - 2, 1, 0, 0, 0)
            .single()
            .expect("a valid date")
    }

    /// First instant after the quarter (UTC).
    pub(crate) fn end(&self) -> DateTime<Utc> {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
            .start()
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
            .start()
        }
    }

    /// True when `t` falls in the quarter.
    pub(crate) fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start() <= t && t < self.end()
    }
}

/// Today's quarter, for `--quarter` defaults and messages.
pub fn quarter_of(t: DateTime<Utc>) -> Quarter {
    Quarter {
        year: t.year(),
        q: (t.month() - 1) / 3 + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_parse_and_bound_their_months() {
        let q: Quarter = "2026-Q4".parse().unwrap();
        assert_eq!(q.start().to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(q.end().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(q.contains(t("2026-10-01T00:00:00Z")));
        assert!(q.contains(t("2026-12-31T23:59:59Z")));
        assert!(!q.contains(t("2026-09-30T23:59:59Z")));
        assert!(!q.contains(t("2027-01-01T00:00:00Z")));
        let q1: Quarter = "2027-Q1".parse().unwrap();
        assert_eq!(q1.end().to_rfc3339(), "2027-04-01T00:00:00+00:00");
        for bad in ["2026-Q5", "2026-Q0", "2026Q4", "Q4-2026", "2026-Q"] {
            assert!(bad.parse::<Quarter>().is_err(), "{bad}");
        }
        assert_eq!(quarter_of(t("2026-11-26T08:00:00Z")), q);
    }
}
