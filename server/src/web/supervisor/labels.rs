//! Names for people of what the documents store as slugs: statuses, programs, event kinds,
//! the supervisor's actions and PPKS categories, in Bahasa Indonesia and English.
//!
//! An unknown slug (from a newer app) is shown as it is, never dropped.

use fieldsync_core::schema::{EventKind, Program, ReferralStatus};

use crate::web::i18n::Lang;

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
    use ReferralStatus as S;
    match status {
        S::Draft => lang.t("Draf", "Draft"),
        S::Submitted => lang.t("Diajukan", "Submitted"),
        S::Accepted => lang.t("Diterima", "Accepted"),
        S::NeedsDocuments => lang.t("Perlu dokumen", "Needs documents"),
        S::Approved => lang.t("Disetujui", "Approved"),
        S::Rejected => lang.t("Ditolak", "Rejected"),
        S::Enrolled => lang.t("Terdaftar", "Enrolled"),
        S::Closed => lang.t("Ditutup", "Closed"),
        S::Withdrawn => lang.t("Ditarik", "Withdrawn"),
    }
}

/// A status slug from a query row.
pub fn status_slug(lang: Lang, slug: &str) -> String {
    parse_status(slug).map_or_else(|| slug.to_owned(), |s| status(lang, s).to_owned())
}

pub fn program(lang: Lang, program: Program) -> &'static str {
    match program {
        Program::KisPbi => "KIS-PBI",
        Program::PbiApbd => "PBI-APBD",
        Program::Gakinda => "Gakinda",
        Program::Pkh => "PKH",
        Program::Bpnt => lang.t("BPNT/Sembako", "BPNT (food aid)"),
        Program::Rehabilitasi => lang.t("Rehabilitasi sosial", "Social rehabilitation"),
        Program::Lainnya => lang.t("Lainnya", "Other"),
    }
}

/// A program slug from a query row.
pub fn program_slug(lang: Lang, slug: &str) -> String {
    Program::parse(slug).map_or_else(|_| slug.to_owned(), |p| program(lang, p).to_owned())
}

/// An event in a referral's history.
pub fn event(lang: Lang, kind: EventKind) -> &'static str {
    use EventKind as E;
    match kind {
        E::Submitted => lang.t("Diajukan", "Submitted"),
        E::Withdrawn => lang.t("Ditarik", "Withdrawn"),
        E::DocumentsAdded => lang.t("Dokumen dilengkapi", "Documents added"),
        E::Accepted => lang.t("Diterima", "Accepted"),
        E::NeedsDocuments => lang.t("Diminta dokumen", "Documents requested"),
        E::Approved => lang.t("Disetujui", "Approved"),
        E::Rejected => lang.t("Ditolak", "Rejected"),
        E::Enrolled => lang.t("Didaftarkan", "Enrolled"),
        E::Closed => lang.t("Ditutup", "Closed"),
    }
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
    let (id, en) = match slug {
        "anak-balita-terlantar" => ("Anak balita terlantar", "Neglected toddler"),
        "anak-terlantar" => ("Anak terlantar", "Neglected child"),
        "anak-berhadapan-hukum" => (
            "Anak berhadapan dengan hukum",
            "Child in conflict with the law",
        ),
        "anak-jalanan" => ("Anak jalanan", "Street child"),
        "anak-disabilitas" => ("Anak dengan kedisabilitasan", "Child with a disability"),
        "anak-korban-kekerasan" => ("Anak korban tindak kekerasan", "Child victim of violence"),
        "anak-perlindungan-khusus" => (
            "Anak memerlukan perlindungan khusus",
            "Child in need of special protection",
        ),
        "lansia-terlantar" => ("Lanjut usia terlantar", "Neglected elderly person"),
        "penyandang-disabilitas" => ("Penyandang disabilitas", "Person with a disability"),
        "tuna-susila" => ("Tuna susila", "Sex worker"),
        "gelandangan" => ("Gelandangan", "Homeless person"),
        "pengemis" => ("Pengemis", "Beggar"),
        "pemulung" => ("Pemulung", "Waste picker"),
        "kelompok-minoritas" => ("Kelompok minoritas", "Minority group"),
        "bekas-warga-binaan" => (
            "Bekas warga binaan lembaga pemasyarakatan",
            "Former prison inmate",
        ),
        "odha" => ("Orang dengan HIV/AIDS", "Person living with HIV/AIDS"),
        "korban-napza" => ("Korban penyalahgunaan NAPZA", "Victim of drug abuse"),
        "korban-trafficking" => ("Korban trafficking", "Victim of trafficking"),
        "korban-kekerasan" => ("Korban tindak kekerasan", "Victim of violence"),
        "pekerja-migran-bermasalah" => (
            "Pekerja migran bermasalah sosial",
            "Migrant worker with social problems",
        ),
        "korban-bencana-alam" => ("Korban bencana alam", "Victim of a natural disaster"),
        "korban-bencana-sosial" => ("Korban bencana sosial", "Victim of a social disaster"),
        "perempuan-rawan-sosial-ekonomi" => (
            "Perempuan rawan sosial ekonomi",
            "Socio-economically vulnerable woman",
        ),
        "fakir-miskin" => ("Fakir miskin", "Poor"),
        "keluarga-bermasalah-sosial-psikologis" => (
            "Keluarga bermasalah sosial psikologis",
            "Family with psychosocial problems",
        ),
        "komunitas-adat-terpencil" => ("Komunitas adat terpencil", "Remote indigenous community"),
        other => return other.to_owned(),
    };
    lang.t(id, en).to_owned()
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
