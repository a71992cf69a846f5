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

    fn day(self, days: i64) -> String {
        let (y, m, d) = civil_from_days(days);
        const ID: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
        ];
        const EN: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = if self == Self::Id { ID } else { EN }[(m - 1) as usize];
        format!("{d} {month} {y}")
    }
}

/// Western Indonesia Time, where Dinas Sosial offices on Java and Sumatra work.
pub const WIB_OFFSET_MS: i64 = 7 * 3_600_000;

pub use fieldsync_core::schema::civil_from_days;

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
}
