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

/// A supervisor's decision as the decision form names it. "Terima untuk ditinjau" (take it
/// up for review) and "Setujui rujukan" (approve the referral) must never read as synonyms,
/// as "Terima" and "Setujui" alone did.
pub fn action(lang: Lang, kind: EventKind) -> &'static str {
    use EventKind as E;
    match kind {
        E::Accepted => lang.t("Terima untuk ditinjau", "Accept for review"),
        E::NeedsDocuments => lang.t("Minta dokumen", "Ask for documents"),
        E::Approved => lang.t("Setujui rujukan", "Approve the referral"),
        E::Rejected => lang.t("Tolak rujukan", "Reject the referral"),
        E::Enrolled => lang.t("Tandai sudah terdaftar", "Mark as enrolled"),
        E::Closed => lang.t("Tutup rujukan", "Close the referral"),
        other => event(lang, other),
    }
}

/// What a decision does, in plain words, beside its choice in the form.
pub fn action_help(lang: Lang, kind: EventKind) -> &'static str {
    use EventKind as E;
    match kind {
        E::Accepted => lang.t(
            "Rujukan mulai ditinjau. Belum ada keputusan akhir; Peksos melihat bahwa rujukannya sedang diperiksa.",
            "Review starts. No final decision yet; the field worker sees that the referral is being checked.",
        ),
        E::NeedsDocuments => lang.t(
            "Rujukan dikembalikan ke Peksos untuk melengkapi dokumen. Tulis dokumen apa yang kurang.",
            "The referral goes back to the field worker to complete the documents. Write which ones are missing.",
        ),
        E::Approved => lang.t(
            "Keputusan akhir: penerima manfaat memenuhi syarat program ini. Setelah itu tinggal menandai pendaftarannya.",
            "Final decision: the beneficiary qualifies for this program. What remains is to mark the enrollment.",
        ),
        E::Rejected => lang.t(
            "Keputusan akhir: rujukan tidak diteruskan. Alasannya wajib ditulis dan dibaca oleh Peksos.",
            "Final decision: the referral goes no further. The reason is required and the field worker reads it.",
        ),
        E::Enrolled => lang.t(
            "Penerima manfaat sudah terdaftar di program. Rujukan selesai.",
            "The beneficiary is enrolled in the program. The referral is done.",
        ),
        E::Closed => lang.t(
            "Rujukan ditutup: tidak ada langkah lagi sesudahnya, dan tidak dapat dibuka kembali.",
            "The referral is closed: no step follows, and it cannot be reopened.",
        ),
        _ => "",
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
