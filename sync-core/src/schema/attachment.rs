//! Attachments: photos and scans that visits and referrals reference by content.
//!
//! A document holds only the reference (`{sha256, size, mime, kind, takenAt, caption?}`); the
//! bytes travel apart (tus uploads to `/files/`, docs/schema.md). The reference is what the
//! server authorises a blob read by, so the rules here are what keep it honest: entries are
//! added or removed by whoever may edit the document's content, never changed in place, and a
//! supervisor (who may only append decision events) cannot touch them.

use std::fmt;

use automerge::ObjId;
use fieldsync_protocol::BlobHash;

use super::document::{DocumentsChecklist, Referral};
use super::values::{InvalidValue, refused, slug_enum};

/// The largest attachment the rules accept unless the server is configured otherwise: a
/// scanned page as a phone shrinks it is a few hundred kilobytes, a multi-page PDF a few
/// megabytes.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;

/// The fields of an attachment entry; any other is refused.
pub(super) const ATTACHMENT_FIELDS: [&str; 6] =
    ["sha256", "size", "mime", "kind", "takenAt", "caption"];

/// What the document rules need to know of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaLimits {
    /// The largest `size` of an attachment (the server's `--max-attachment-bytes`).
    pub max_attachment_bytes: u64,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
        }
    }
}

/// The SHA-256 of a blob, as 64 lowercase hex digits: its address, as the document writes it
/// (the blob's name is [`BlobHash`], which decides what is valid).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match BlobHash::parse(s) {
            Some(_) => Ok(Self(s.to_owned())),
            None => Err(refused("must be 64 lowercase hex digits (a SHA-256)")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The blob this names.
    pub fn blob(&self) -> BlobHash {
        BlobHash::parse(&self.0).expect("parsed as a blob hash")
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

slug_enum!(
    /// The media types an attachment may have: photos and scans.
    MediaType, "media type (image/jpeg, image/png, image/webp or application/pdf)", {
        Jpeg => "image/jpeg",
        Png => "image/png",
        Webp => "image/webp",
        Pdf => "application/pdf",
    }
);

impl MediaType {
    /// Whether the server may decode it into a thumbnail.
    pub fn is_image(self) -> bool {
        self != Self::Pdf
    }
}

slug_enum!(
    /// What an attachment shows.
    AttachmentKind, "attachment kind", {
        Ktp => "ktp",
        Kk => "kk",
        Sktm => "sktm",
        SuratPuskesmas => "surat-puskesmas",
        Rumah => "rumah",
        Lainnya => "lainnya",
    }
);

/// One photo or scan a visit or referral references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub sha256: Sha256,
    /// Bytes, 1 to the configured maximum.
    pub size: u64,
    pub mime: MediaType,
    pub kind: AttachmentKind,
    pub taken_at: String,
    pub caption: Option<String>,
    /// Where the entry sits in the document, once it is there: what lets the rules see that
    /// an entry was changed in place.
    pub id: Option<ObjId>,
}

slug_enum!(
    /// An item of a referral's document checklist (`documents.*`).
    ChecklistItem, "checklist item", {
        Ktp => "ktp",
        Kk => "kk",
        Sktm => "sktm",
        SuratPuskesmas => "suratPuskesmas",
    }
);

impl ChecklistItem {
    /// The kind of scan that satisfies this item.
    pub fn scan_kind(self) -> AttachmentKind {
        match self {
            Self::Ktp => AttachmentKind::Ktp,
            Self::Kk => AttachmentKind::Kk,
            Self::Sktm => AttachmentKind::Sktm,
            Self::SuratPuskesmas => AttachmentKind::SuratPuskesmas,
        }
    }

    fn checked(self, documents: &DocumentsChecklist) -> bool {
        match self {
            Self::Ktp => documents.ktp,
            Self::Kk => documents.kk,
            Self::Sktm => documents.sktm,
            Self::SuratPuskesmas => documents.surat_puskesmas,
        }
    }
}

/// One item of a referral's checklist and what satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistEntry<'a> {
    pub item: ChecklistItem,
    /// The field worker ticked the box.
    pub checked: bool,
    /// Attached scans of this item's kind, in list order.
    pub scans: Vec<&'a Attachment>,
}

impl ChecklistEntry<'_> {
    /// Ticked, or backed by at least one attached scan.
    pub fn satisfied(&self) -> bool {
        self.checked || !self.scans.is_empty()
    }
}

impl Referral {
    /// The document checklist, item by item in `ChecklistItem::ALL` order: each satisfied by
    /// its box or by an attached scan of its kind (docs/schema.md). For the server's pages and
    /// the app alike.
    pub fn checklist(&self) -> Vec<ChecklistEntry<'_>> {
        ChecklistItem::ALL
            .iter()
            .map(|&item| ChecklistEntry {
                item,
                checked: item.checked(&self.documents),
                scans: self
                    .attachments
                    .iter()
                    .filter(|a| a.kind == item.scan_kind())
                    .collect(),
            })
            .collect()
    }
}
