//! fieldsync's notices to a device, inside protocol v1.
//!
//! Protocol v1 has no message for "your change was not accepted". The server tells a device
//! with an `ephemeral` message for the document concerned, sent by the server's peer id, whose
//! `data` is a CBOR map with a `fieldsync` key naming the notice. automerge-repo clients hand
//! ephemeral data to the app (`handle.on("ephemeral-message")` in JS) and never store it, so
//! clients that do not know these notices ignore them. docs/protocol.md describes them.

use minicbor::{Decoder, Encoder};

use crate::decode::{Entries, cbor, invalid, is_absent, read_str, read_str_list};
use crate::message::DecodeError;

/// One thing wrong with a refused change: a JSON path in the document and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeViolation {
    pub path: String,
    pub message: String,
}

/// A notice from the server to a device about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The changes the device sent (up to `heads`, hex change hashes) were neither stored nor
    /// relayed: the server keeps the document as it was. The server stops syncing the document
    /// with this connection until the device sends it something new (a repairing change).
    ChangeRefused {
        heads: Vec<String>,
        violations: Vec<NoticeViolation>,
    },
    /// The document is no longer the device's to hold (it left the user's areas, or the
    /// user's scope changed): delete the local copy.
    Drop,
}

/// The value of the `fieldsync` key of [`Notice::ChangeRefused`].
pub const CHANGE_REFUSED: &str = "change-refused";
/// The value of the `fieldsync` key of [`Notice::Drop`].
pub const DROP: &str = "drop";

impl Notice {
    /// The CBOR bytes for an ephemeral message's `data`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        let result: Result<(), minicbor::encode::Error<std::convert::Infallible>> = (|| {
            match self {
                Self::ChangeRefused { heads, violations } => {
                    e.map(3)?;
                    e.str("fieldsync")?.str(CHANGE_REFUSED)?;
                    e.str("heads")?.array(heads.len() as u64)?;
                    for h in heads {
                        e.str(h)?;
                    }
                    e.str("violations")?.array(violations.len() as u64)?;
                    for v in violations {
                        e.map(2)?;
                        e.str("path")?.str(&v.path)?;
                        e.str("message")?.str(&v.message)?;
                    }
                }
                Self::Drop => {
                    e.map(1)?;
                    e.str("fieldsync")?.str(DROP)?;
                }
            }
            Ok(())
        })();
        result.expect("writing CBOR into a Vec cannot fail");
        e.into_writer()
    }

    /// Reads ephemeral `data` as a notice: `Ok(None)` when it is some other app's ephemeral
    /// payload (no `fieldsync` key), an error when it claims to be a notice but is malformed.
    pub fn decode(data: &[u8]) -> Result<Option<Self>, DecodeError> {
        let mut d = Decoder::new(data);
        let Ok(mut entries) = Entries::map(&mut d, "data") else {
            return Ok(None);
        };
        let mut kind = None;
        let mut heads = Vec::new();
        let mut violations = Vec::new();
        while entries.next(&mut d)? {
            let Ok(key) = read_str(&mut d, "key") else {
                return Ok(None);
            };
            match key.as_str() {
                "fieldsync" => kind = Some(read_str(&mut d, "fieldsync")?),
                "heads" if !is_absent(&mut d)? => heads = read_str_list(&mut d, "heads")?,
                "violations" if !is_absent(&mut d)? => {
                    let mut list = Entries::array(&mut d, "violations")?;
                    while list.next(&mut d)? {
                        violations.push(read_violation(&mut d)?);
                    }
                }
                _ => d.skip().map_err(cbor)?,
            }
        }
        match kind.as_deref() {
            None => Ok(None),
            Some(CHANGE_REFUSED) => Ok(Some(Self::ChangeRefused { heads, violations })),
            Some(DROP) => Ok(Some(Self::Drop)),
            Some(other) => Err(invalid("fieldsync", format!("unknown notice {other:?}"))),
        }
    }
}

fn read_violation(d: &mut Decoder<'_>) -> Result<NoticeViolation, DecodeError> {
    let mut entries = Entries::map(d, "violations")?;
    let (mut path, mut message) = (String::new(), String::new());
    while entries.next(d)? {
        match read_str(d, "violations")?.as_str() {
            "path" => path = read_str(d, "path")?,
            "message" => message = read_str(d, "message")?,
            _ => d.skip().map_err(cbor)?,
        }
    }
    Ok(NoticeViolation { path, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_foreign_payloads() {
        let notice = Notice::ChangeRefused {
            heads: vec!["ab".repeat(32)],
            violations: vec![NoticeViolation {
                path: "beneficiary.nik".into(),
                message: "NIK must be 16 digits, got \"123\"".into(),
            }],
        };
        assert_eq!(Notice::decode(&notice.encode()).unwrap(), Some(notice));
        assert_eq!(
            Notice::decode(&Notice::Drop.encode()).unwrap(),
            Some(Notice::Drop)
        );
        // An app's own ephemeral payloads are not notices.
        let mut e = Encoder::new(Vec::new());
        e.map(1).unwrap().str("cursor").unwrap().u32(3).unwrap();
        assert_eq!(Notice::decode(&e.into_writer()).unwrap(), None);
        assert_eq!(Notice::decode(b"\x01").unwrap(), None);
        // Unknown notices are errors, so a newer server's notice is noticed.
        let mut e = Encoder::new(Vec::new());
        e.map(1)
            .unwrap()
            .str("fieldsync")
            .unwrap()
            .str("later")
            .unwrap();
        assert!(Notice::decode(&e.into_writer()).is_err());
    }
}
