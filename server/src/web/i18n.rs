//! The two languages of the pages: Bahasa Indonesia (the default) and English.
//!
//! Every text a page shows is written at its call site in both languages,
//! `lang.t("Antrian rujukan", "Referral queue")`, Indonesian first, so a page can never show a
//! key instead of a text and a translator reads both side by side.

use axum::http::HeaderMap;

/// The cookie that remembers the choice.
pub const COOKIE: &str = "fieldsync_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Id,
    En,
}

impl Lang {
    /// The language a request asks for by cookie; Indonesian unless it says English.
    pub fn of(headers: &HeaderMap) -> Self {
        match super::cookies::cookie(headers, COOKIE).as_deref() {
            Some("en") => Self::En,
            _ => Self::Id,
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "id" => Some(Self::Id),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::En => "en",
        }
    }

    /// The text in this language.
    pub fn t<'a>(self, id: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Id => id,
            Self::En => en,
        }
    }

    /// A date and time (epoch milliseconds) as people read it here: `24 Nov 2026 09.30`
    /// (WIB, UTC+7) in Indonesian, `24 Nov 2026 09:30` in English.
    pub fn datetime(self, millis: i64) -> String {
        let local = millis + WIB_OFFSET_MS;
        let (date, minutes) = (
            local.div_euclid(86_400_000),
            local.rem_euclid(86_400_000) / 60_000,
        );
        let sep = if self == Self::Id { '.' } else { ':' };
        format!(
            "{} {:02}{sep}{:02}",
            self.day(date),
            minutes / 60,
            minutes % 60
        )
    }

    /// A date (epoch milliseconds), in WIB.
    pub fn date(self, millis: i64) -> String {
        self.day((millis + WIB_OFFSET_MS).div_euclid(86_400_000))
    }

    /// A calendar date kept as `YYYY-MM-DD` (a follow-up date), as people read it:
    /// `14 Des 2026`. Text that is not such a date is shown as it is.
    pub fn day_text(self, date: &str) -> String {
        date_days(date).map_or_else(|| date.to_owned(), |days| self.day(days))
    }

    /// The week that starts on `monday` (epoch milliseconds of its first moment in WIB), as
    /// a column heading: `minggu 12–18 Okt` (`minggu 28 Sep–4 Okt` across a month) in
    /// Indonesian, `week of 12 Oct` in English. ISO week numbers ("Mg 42") mean nothing to
    /// most readers.
    pub fn week(self, monday: i64) -> String {
        let first = (monday + WIB_OFFSET_MS).div_euclid(86_400_000);
        let (_, m1, d1) = civil_from_days(first);
        let (_, m7, d7) = civil_from_days(first + 6);
        match self {
            Self::Id if m1 == m7 => format!("minggu {d1}–{d7} {}", self.month(m7)),
            Self::Id => format!("minggu {d1} {}–{d7} {}", self.month(m1), self.month(m7)),
            Self::En => format!("week of {d1} {}", self.month(m1)),
        }
    }

    fn day(self, days: i64) -> String {
        let (y, m, d) = civil_from_days(days);
        format!("{d} {} {y}", self.month(m))
    }

    fn month(self, m: i64) -> &'static str {
        const ID: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
        ];
        const EN: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let names = if self == Self::Id { ID } else { EN };
        names[(m - 1) as usize]
    }
}

/// Western Indonesia Time, where Dinas Sosial offices on Java and Sumatra work.
pub const WIB_OFFSET_MS: i64 = 7 * 3_600_000;

pub use fieldsync_core::schema::civil_from_days;
use fieldsync_core::schema::date_days;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_wib() {
        // 2026-11-24T02:30:00Z is 09.30 WIB.
        let t = 1_795_487_400_000;
        assert_eq!(Lang::Id.datetime(t), "24 Nov 2026 09.30");
        assert_eq!(Lang::En.datetime(t), "24 Nov 2026 09:30");
        // 2026-08-16T20:00:00Z is already the 17th in WIB.
        assert_eq!(Lang::Id.date(1_786_910_400_000), "17 Agu 2026");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn calendar_dates_and_weeks_in_words() {
        assert_eq!(Lang::Id.day_text("2026-12-14"), "14 Des 2026");
        assert_eq!(Lang::En.day_text("2026-12-14"), "14 Dec 2026");
        assert_eq!(Lang::Id.day_text("besok"), "besok");
        // Monday 12 October 2026, 00:00 WIB (= 11 October 17:00 UTC).
        let monday = 1_791_738_000_000;
        assert_eq!(Lang::Id.date(monday), "12 Okt 2026");
        assert_eq!(Lang::Id.week(monday), "minggu 12–18 Okt");
        assert_eq!(Lang::En.week(monday), "week of 12 Oct");
        let across = monday - 14 * 86_400_000;
        assert_eq!(Lang::Id.week(across), "minggu 28 Sep–4 Okt");
        assert_eq!(Lang::En.week(across), "week of 28 Sep");
    }
}
