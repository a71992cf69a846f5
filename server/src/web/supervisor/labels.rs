//! The supervisor's view of the names in [`crate::web::labels`]: typed statuses, programs and
//! events, the statuses a queue filters by, and the buttons that record a decision.
//!
//! An unknown slug (from a newer app) is shown as it is, never dropped.

use fieldsync_core::schema::{EventKind, Program, ReferralStatus};

use crate::web::i18n::Lang;
use crate::web::labels;

/// Every status, in the order of a referral's life: for filters and parsing.
pub const STATUSES: [ReferralStatus; 9] = [
    ReferralStatus::Draft,
    ReferralStatus::Submitted,
    ReferralStatus::Accepted,
    ReferralStatus::NeedsDocuments,
    ReferralStatus::Approved,
    ReferralStatus::Rejected,
    ReferralStatus::Enrolled,
    ReferralStatus::Closed,
    ReferralStatus::Withdrawn,
];

/// Statuses in which a referral waits for a supervisor's decision: the queue's default.
pub const AWAITING: [ReferralStatus; 3] = [
    ReferralStatus::Submitted,
    ReferralStatus::Accepted,
    ReferralStatus::NeedsDocuments,
];

pub fn parse_status(slug: &str) -> Option<ReferralStatus> {
    STATUSES.into_iter().find(|s| s.as_str() == slug)
}

pub fn status(lang: Lang, status: ReferralStatus) -> &'static str {
    labels::status_label(lang, status.as_str())
}

/// A status slug from a query row.
pub fn status_slug(lang: Lang, slug: &str) -> String {
    labels::status_label(lang, slug).to_owned()
}

pub fn program(lang: Lang, program: Program) -> &'static str {
    labels::program_label(lang, program.as_str())
}

/// A program slug from a query row.
pub fn program_slug(lang: Lang, slug: &str) -> String {
    labels::program_label(lang, slug).to_owned()
}

/// An event in a referral's history.
pub fn event(lang: Lang, kind: EventKind) -> &'static str {
    labels::event_label(lang, kind.as_str())
}

/// The button that records a supervisor's decision.
pub fn action(lang: Lang, kind: EventKind) -> &'static str {
    use EventKind as E;
    match kind {
        E::Accepted => lang.t("Terima", "Accept"),
        E::NeedsDocuments => lang.t("Minta dokumen", "Ask for documents"),
        E::Approved => lang.t("Setujui", "Approve"),
        E::Rejected => lang.t("Tolak", "Reject"),
        E::Enrolled => lang.t("Tandai terdaftar", "Mark enrolled"),
        E::Closed => lang.t("Tutup", "Close"),
        other => event(lang, other),
    }
}

/// A PPKS category slug (Permensos 8/2012).
pub fn ppks(lang: Lang, slug: &str) -> String {
    labels::ppks_label(lang, slug).to_owned()
}

#[cfg(test)]
mod tests {
    use fieldsync_core::schema::PpksCategory;

    use super::*;

    #[test]
    fn every_slug_has_a_name() {
        for s in STATUSES {
            assert_eq!(parse_status(s.as_str()), Some(s));
        }
        for c in PpksCategory::ALL {
            assert_ne!(ppks(Lang::Id, c.as_str()), c.as_str(), "{c}");
        }
        assert_eq!(status_slug(Lang::En, "approved"), "Approved");
        assert_eq!(program_slug(Lang::Id, "tak-dikenal"), "tak-dikenal");
    }
}
