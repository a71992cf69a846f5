//! Names people read for the slugs stored in documents: PPKS categories, programs, referral
//! statuses and events, document types. Shared by every page; an unknown slug (from a newer
//! schema) is shown as it is rather than hidden.

use maud::{Markup, html};

use super::i18n::Lang;
use crate::areas::AreaNames;

/// An area as a page shows it: its name, with the code on hover; the code alone when its
/// name has not been imported.
pub fn area(names: &AreaNames, code: &str) -> Markup {
    match names.name(code) {
        Some(name) => html! { span.area title=(code) { (name) } },
        None => html! { span.area { (code) } },
    }
}

/// A PPKS category (docs/schema.md) by its name in Permensos 8/2012.
pub fn ppks_label(lang: Lang, slug: &str) -> &str {
    let (id, en) = match slug {
        "anak-balita-terlantar" => ("Anak balita terlantar", "Neglected child under five"),
        "anak-terlantar" => ("Anak terlantar", "Neglected child"),
        "anak-berhadapan-hukum" => (
            "Anak berhadapan dengan hukum",
            "Child in conflict with the law",
        ),
        "anak-jalanan" => ("Anak jalanan", "Street child"),
        "anak-disabilitas" => ("Anak dengan kedisabilitasan", "Child with a disability"),
        "anak-korban-kekerasan" => (
            "Anak korban tindak kekerasan atau diperlakukan salah",
            "Child victim of violence or mistreatment",
        ),
        "anak-perlindungan-khusus" => (
            "Anak yang memerlukan perlindungan khusus",
            "Child in need of special protection",
        ),
        "lansia-terlantar" => ("Lanjut usia terlantar", "Neglected older person"),
        "penyandang-disabilitas" => ("Penyandang disabilitas", "Person with a disability"),
        "tuna-susila" => ("Tuna susila", "Person in prostitution"),
        "gelandangan" => ("Gelandangan", "Homeless person"),
        "pengemis" => ("Pengemis", "Beggar"),
        "pemulung" => ("Pemulung", "Waste picker"),
        "kelompok-minoritas" => ("Kelompok minoritas", "Minority group"),
        "bekas-warga-binaan" => (
            "Bekas warga binaan lembaga pemasyarakatan",
            "Former prison inmate",
        ),
        "odha" => (
            "Orang dengan HIV/AIDS (ODHA)",
            "Person living with HIV/AIDS",
        ),
        "korban-napza" => ("Korban penyalahgunaan NAPZA", "Victim of drug abuse"),
        "korban-trafficking" => ("Korban perdagangan orang", "Victim of trafficking"),
        "korban-kekerasan" => ("Korban tindak kekerasan", "Victim of violence"),
        "pekerja-migran-bermasalah" => (
            "Pekerja migran bermasalah sosial",
            "Migrant worker with social problems",
        ),
        "korban-bencana-alam" => ("Korban bencana alam", "Victim of a natural disaster"),
        "korban-bencana-sosial" => ("Korban bencana sosial", "Victim of a social disaster"),
        "perempuan-rawan-sosial-ekonomi" => (
            "Perempuan rawan sosial ekonomi",
            "Socially and economically vulnerable woman",
        ),
        "fakir-miskin" => ("Fakir miskin", "Poor"),
        "keluarga-bermasalah-sosial-psikologis" => (
            "Keluarga bermasalah sosial psikologis",
            "Family with social and psychological problems",
        ),
        "komunitas-adat-terpencil" => ("Komunitas adat terpencil", "Remote indigenous community"),
        _ => return slug,
    };
    lang.t(id, en)
}

/// A program a beneficiary is referred to.
pub fn program_label(lang: Lang, slug: &str) -> &str {
    let (id, en) = match slug {
        "kis-pbi" => ("KIS-PBI", "KIS-PBI (state-paid health insurance)"),
        "pbi-apbd" => ("PBI-APBD", "PBI-APBD (regional health insurance)"),
        "gakinda" => ("Gakinda", "Gakinda (regional scheme for poor families)"),
        "pkh" => ("PKH", "PKH (conditional cash transfer)"),
        "bpnt" => ("BPNT/Sembako", "BPNT (food aid)"),
        "rehabilitasi" => ("Rehabilitasi sosial", "Social rehabilitation"),
        "lainnya" => ("Lainnya", "Other"),
        _ => return slug,
    };
    lang.t(id, en)
}

/// A referral's derived status.
pub fn status_label(lang: Lang, slug: &str) -> &str {
    let (id, en) = match slug {
        "draft" => ("Draf", "Draft"),
        "submitted" => ("Diajukan", "Submitted"),
        "accepted" => ("Diterima", "Accepted"),
        "needs-documents" => ("Perlu dokumen", "Needs documents"),
        "approved" => ("Disetujui", "Approved"),
        "rejected" => ("Ditolak", "Rejected"),
        "enrolled" => ("Terdaftar", "Enrolled"),
        "closed" => ("Ditutup", "Closed"),
        "withdrawn" => ("Ditarik", "Withdrawn"),
        _ => return slug,
    };
    lang.t(id, en)
}

/// A step in a referral's history, as it reads in a list of events.
pub fn event_label(lang: Lang, slug: &str) -> &str {
    let (id, en) = match slug {
        "submitted" => ("Diajukan", "Submitted"),
        "withdrawn" => ("Ditarik", "Withdrawn"),
        "documents-added" => ("Dokumen dilengkapi", "Documents added"),
        "accepted" => ("Diterima untuk ditinjau", "Accepted for review"),
        "needs-documents" => ("Diminta dokumen", "Documents requested"),
        "approved" => ("Disetujui", "Approved"),
        "rejected" => ("Ditolak", "Rejected"),
        "enrolled" => ("Didaftarkan", "Enrolled"),
        "closed" => ("Ditutup", "Closed"),
        _ => return slug,
    };
    lang.t(id, en)
}

/// A type of field document.
pub fn kind_label(lang: Lang, slug: &str) -> &str {
    let (id, en) = match slug {
        "visit" => ("Kunjungan", "Visit"),
        "referral" => ("Rujukan", "Referral"),
        "outreach" => ("Penyuluhan", "Outreach"),
        _ => return slug,
    };
    lang.t(id, en)
}

#[cfg(test)]
mod tests {
    use fieldsync_core::schema::{EventKind, PpksCategory, Program, ReferralStatus};

    use super::*;

    #[test]
    fn every_slug_has_a_name_in_both_languages() {
        for lang in [Lang::Id, Lang::En] {
            for c in PpksCategory::ALL {
                assert_ne!(ppks_label(lang, c.as_str()), c.as_str());
            }
            for p in Program::ALL {
                assert_ne!(program_label(lang, p.as_str()), p.as_str());
            }
            for e in EventKind::ALL {
                assert_ne!(event_label(lang, e.as_str()), e.as_str());
            }
            use ReferralStatus as S;
            for s in [
                S::Draft,
                S::Submitted,
                S::Accepted,
                S::NeedsDocuments,
                S::Approved,
                S::Rejected,
                S::Enrolled,
                S::Closed,
                S::Withdrawn,
            ] {
                assert_ne!(status_label(lang, s.as_str()), s.as_str());
            }
            for k in ["visit", "referral", "outreach"] {
                assert_ne!(kind_label(lang, k), k);
            }
        }
        assert_eq!(status_label(Lang::Id, "unknown-later"), "unknown-later");
    }
}
