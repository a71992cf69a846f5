//! The public schema of field documents (version 1) and the rules both sides enforce.
//!
//! The same code runs on the phone (to refuse an invalid edit before it is made) and on the
//! server (to refuse a change that would leave a document invalid). docs/schema.md is the
//! contract for mobile developers.

mod attachment;
mod document;
pub mod examples;
mod history;
mod referral;
mod rules;
mod values;
mod write;

pub use attachment::{
    Attachment, AttachmentKind, ChecklistEntry, ChecklistItem, DEFAULT_MAX_ATTACHMENT_BYTES,
    MediaType, SchemaLimits, Sha256,
};
pub use document::{
    Beneficiary, Consent, DocKind, DocumentsChecklist, Envelope, Event, FieldDocument, Outreach,
    Referral, SCHEMA, Violation, Visit,
};
pub use history::{check_applied, check_applied_with};
pub use referral::{Derived, ReferralStatus, derive_status};
pub use rules::{Action, Author, check_change, may_read, may_read_placed, permits};
pub use values::{
    EventKind, InvalidValue, Kk, Nik, PpksCategory, Program, RegionCode, Role, check_date,
    check_timestamp, civil_from_days, date_days, format_millis, timestamp_millis,
};
pub use write::{add_attachment, add_event};
