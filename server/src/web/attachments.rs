//! Photos and scans on the office pages: a thumbnail that opens the full size (a PDF as a
//! link), or "scan pending" while the phone that took it has not uploaded it yet. The images
//! come from `/files/sha256/…`, which checks again that the viewer may read a document
//! referencing them and audits the read (`crate::files`).

use fieldsync_core::schema::{Attachment, AttachmentKind, timestamp_millis};
use maud::{Markup, html};

use super::i18n::Lang;
use crate::AppState;

/// One attachment as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub sha256: String,
    /// What the document says it shows (`None` where only the reference is known).
    pub kind: Option<AttachmentKind>,
    /// The MIME type, as the document declares it or as stored.
    pub mime: Option<String>,
    pub caption: Option<String>,
    pub taken_at: Option<String>,
    /// The server has the bytes.
    pub stored: bool,
}

/// What a document's attachments look like on a page: each entry with whether the server has
/// its bytes yet.
pub async fn shown(state: &AppState, attachments: &[Attachment]) -> Vec<Shown> {
    let mut out = Vec::with_capacity(attachments.len());
    for a in attachments {
        let stored = matches!(state.storage.blob(a.sha256.blob()).await, Ok(Some(_)));
        out.push(Shown {
            sha256: a.sha256.as_str().to_owned(),
            kind: Some(a.kind),
            mime: Some(a.mime.as_str().to_owned()),
            caption: a.caption.clone(),
            taken_at: Some(a.taken_at.clone()),
            stored,
        });
    }
    out
}

/// The name of a kind of attachment.
pub fn kind_label(lang: Lang, kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Ktp => "KTP",
        AttachmentKind::Kk => "KK",
        AttachmentKind::Sktm => "SKTM",
        AttachmentKind::SuratPuskesmas => lang.t("Surat puskesmas", "Puskesmas letter"),
        AttachmentKind::Rumah => lang.t("Foto rumah", "House photo"),
        AttachmentKind::Lainnya => lang.t("Lainnya", "Other"),
    }
}

/// The attachments as a row of thumbnails, each opening the full size in a new tab.
pub fn gallery(lang: Lang, items: &[Shown]) -> Markup {
    html! {
        ul.gallery {
            @for item in items {
                @let name = item.kind.map_or(lang.t("Lampiran", "Attachment"), |k| kind_label(lang, k));
                @let href = format!("/files/sha256/{}", item.sha256);
                @let pdf = item.mime.as_deref() == Some("application/pdf");
                li.attachment data-sha256=(item.sha256) data-state=(if item.stored { "stored" } else { "pending" }) {
                    @if !item.stored {
                        span.pending title=(lang.t(
                            "Ponsel peksos belum mengunggahnya; akan muncul setelah ponsel daring.",
                            "The field worker's phone has not uploaded it yet; it appears once the phone is online."
                        )) {
                            (lang.t("Pindaian belum terunggah", "Scan pending"))
                        }
                    } @else if pdf {
                        a.pdf href=(href) target="_blank" rel="noopener" { "PDF" }
                    } @else {
                        a href=(href) target="_blank" rel="noopener" {
                            img src={(href) "/thumb"} alt=(name) loading="lazy" width="160" height="120";
                        }
                    }
                    span.caption {
                        strong { (name) }
                        @if let Some(c) = item.caption.as_deref().filter(|c| !c.is_empty()) { " — " (c) }
                        @if let Some(t) = item.taken_at.as_deref().and_then(timestamp_millis) {
                            br; span.muted { (lang.datetime(t)) }
                        }
                    }
                }
            }
        }
    }
}

/// A section with a heading, or nothing when there are no attachments.
pub fn section(lang: Lang, id: &str, items: &[Shown]) -> Markup {
    if items.is_empty() {
        return html! {};
    }
    html! {
        section id=(id) {
            h2 { (lang.t("Foto dan pindaian", "Photos and scans")) }
            (gallery(lang, items))
        }
    }
}
