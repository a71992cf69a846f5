//! The figures of the outcome statistics, computed from the decision rows: per program and
//! per area, referrals decided, approved and rejected, the approval rate, and the median days
//! from submission to decision. Computed here rather than in SQL so that both databases give
//! the same figures (neither has a portable median).

use std::collections::BTreeMap;

use fieldsync_core::schema::Program;
use serde_json::{Value, json};

use crate::storage::review::{DecisionRow, OpenRow};
use crate::web::i18n::{WIB_OFFSET_MS, civil_from_days};

const DAY_MS: i64 = 86_400_000;

/// The outcome of a group of referrals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub approved: u64,
    pub rejected: u64,
    /// Days from submission to decision, one per referral.
    days: Vec<f64>,
}

impl Outcome {
    fn add(&mut self, row: &DecisionRow) {
        match row.kind.as_str() {
            "approved" => self.approved += 1,
            "rejected" => self.rejected += 1,
            _ => return,
        }
        if let Some(submitted) = row.submitted_at {
            self.days
                .push((row.decided_at - submitted).max(0) as f64 / DAY_MS as f64);
        }
    }

    pub fn decided(&self) -> u64 {
        self.approved + self.rejected
    }

    /// approved / (approved + rejected); `None` with no decision.
    pub fn approval_rate(&self) -> Option<f64> {
        (self.decided() > 0).then(|| self.approved as f64 / self.decided() as f64)
    }

    pub fn median_days(&self) -> Option<f64> {
        let mut d = self.days.clone();
        d.sort_by(f64::total_cmp);
        let n = d.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(d[n / 2]),
            _ => Some((d[n / 2 - 1] + d[n / 2]) / 2.0),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "decided": self.decided(),
            "approved": self.approved,
            "rejected": self.rejected,
            "approvalRate": self.approval_rate(),
            "medianDays": self.median_days(),
        })
    }
}

/// The statistics of a set of decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub total: Outcome,
    /// By program slug, in the order of the program list.
    pub by_program: Vec<(String, Outcome)>,
    /// By kecamatan code (`PP.KK.CC`).
    pub by_kecamatan: Vec<(String, Outcome)>,
    /// By kelurahan code.
    pub by_kelurahan: Vec<(String, Outcome)>,
    /// By the month of the decision in WIB (`2026-11`), oldest first: the trend.
    pub by_month: Vec<(String, Outcome)>,
}

/// How long the referrals still waiting for a decision have waited, in whole days: the
/// upper bounds of the backlog's groups (the last group has none).
pub const BACKLOG_BOUNDS: [i64; 3] = [7, 14, 30];

/// The backlog: how many referrals waiting for a decision have waited up to 7 days, 8–14,
/// 15–30 and more than 30 (one count per group of [`BACKLOG_BOUNDS`], and one more).
pub fn backlog(rows: &[OpenRow], now: i64) -> [u64; 4] {
    let mut groups = [0; 4];
    for row in rows {
        let days = (now - row.waiting_since).max(0) / DAY_MS;
        let group = BACKLOG_BOUNDS
            .iter()
            .position(|b| days <= *b)
            .unwrap_or(BACKLOG_BOUNDS.len());
        groups[group] += 1;
    }
    groups
}

/// The month (`2026-11`) of a moment, in WIB.
pub fn month_of(millis: i64) -> String {
    let (y, m, _) = civil_from_days((millis + WIB_OFFSET_MS).div_euclid(DAY_MS));
    format!("{y:04}-{m:02}")
}

pub fn compute(rows: &[DecisionRow]) -> Stats {
    let mut stats = Stats::default();
    let mut programs: BTreeMap<(usize, String), Outcome> = BTreeMap::new();
    let mut kecamatan: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut kelurahan: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut months: BTreeMap<String, Outcome> = BTreeMap::new();
    for row in rows {
        months.entry(month_of(row.decided_at)).or_default().add(row);
        stats.total.add(row);
        // Known programs in their list order, unknown ones (a newer app's) after them.
        let order = Program::parse(&row.program)
            .ok()
            .and_then(|p| Program::ALL.iter().position(|q| *q == p))
            .unwrap_or(usize::MAX);
        programs
            .entry((order, row.program.clone()))
            .or_default()
            .add(row);
        let district = row.area.get(..8).unwrap_or(&row.area).to_owned();
        kecamatan.entry(district).or_default().add(row);
        kelurahan.entry(row.area.clone()).or_default().add(row);
    }
    stats.by_program = programs.into_iter().map(|((_, p), o)| (p, o)).collect();
    stats.by_kecamatan = kecamatan.into_iter().collect();
    stats.by_kelurahan = kelurahan.into_iter().collect();
    stats.by_month = months.into_iter().collect();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(program: &str, area: &str, days: i64, kind: &str) -> DecisionRow {
        DecisionRow {
            program: program.into(),
            area: area.into(),
            submitted_at: Some(1_000),
            decided_at: 1_000 + days * DAY_MS,
            kind: kind.into(),
        }
    }

    #[test]
    fn rates_and_medians_per_group() {
        let stats = compute(&[
            row("pkh", "32.77.01.1001", 2, "approved"),
            row("kis-pbi", "32.77.01.1001", 1, "approved"),
            row("kis-pbi", "32.77.01.1002", 3, "rejected"),
            row("kis-pbi", "32.77.02.1001", 10, "approved"),
            row("kis-pbi", "32.77.02.1001", 4, "approved"),
        ]);
        assert_eq!(stats.total.decided(), 5);
        assert_eq!(stats.total.median_days(), Some(3.0));
        let (program, kis) = &stats.by_program[0];
        assert_eq!(program, "kis-pbi", "in the order of the program list");
        assert_eq!(kis.approval_rate(), Some(0.75));
        assert_eq!(kis.median_days(), Some(3.5), "the mean of the middle two");
        assert_eq!(stats.by_kecamatan[0].0, "32.77.01");
        assert_eq!(stats.by_kecamatan[0].1.decided(), 3);
        assert_eq!(stats.by_kelurahan.len(), 3);
        assert_eq!(Outcome::default().approval_rate(), None);
        assert_eq!(stats.by_month.len(), 1);
        assert_eq!(stats.by_month[0].1.decided(), 5);
    }

    #[test]
    fn months_are_wib_and_the_backlog_groups_by_days_waited() {
        // 2026-11-30T18:00:00Z is already 1 December in WIB.
        assert_eq!(month_of(1_796_061_600_000), "2026-12");
        assert_eq!(month_of(1_796_061_600_000 - 3_600_000 * 2), "2026-11");
        let open = |days: i64| OpenRow {
            program: "pkh".into(),
            area: "32.77.01.1001".into(),
            status: "submitted".into(),
            waiting_since: 100 * DAY_MS - days * DAY_MS,
        };
        let rows = [
            open(0),
            open(7),
            open(8),
            open(14),
            open(30),
            open(31),
            open(90),
        ];
        assert_eq!(backlog(&rows, 100 * DAY_MS), [2, 2, 1, 2]);
    }
}
