//! Identifiers that cross the wire, parsed once at the boundary.

use std::fmt;
use std::str::FromStr;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("document id is not bs58check of 16 bytes nor a UUID: {0:?}")]
    DocumentId(String),
    #[error("automerge URL must look like automerge:<documentId>: {0:?}")]
    Url(String),
    #[error("peer id must be 1 to {max} printable characters", max = PeerId::MAX_LEN)]
    PeerId,
    #[error("storage id must be 1 to {max} printable characters", max = StorageId::MAX_LEN)]
    StorageId,
}

/// A document's identity: 16 random bytes, written as bs58check (`PLUD22EtHV6JRMaH8ZvRwb1ejFa`).
///
/// Legacy clients may write the same 16 bytes as a UUID string; both forms parse to the same id,
/// and the id is always written back in bs58check form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    /// A new random document id, from 16 bytes of caller-supplied randomness.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the bs58check form, or a legacy UUID string.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let err = || IdError::DocumentId(truncate(s));
        if s.len() > 64 {
            return Err(err());
        }
        if let Ok(bytes) = bs58::decode(s).with_check(None).into_vec() {
            return bytes.try_into().map(Self).map_err(|_| err());
        }
        if s.len() == 36
            && let Ok(uuid) = uuid::Uuid::try_parse(s)
        {
            return Ok(Self(*uuid.as_bytes()));
        }
        Err(err())
    }

    pub fn url(&self) -> AutomergeUrl {
        AutomergeUrl(*self)
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

/// `automerge:<documentId>`, the form users and apps pass documents around in.
///
/// A `#heads` suffix (a link to a past version) is accepted and ignored: the server always
/// syncs whole documents.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AutomergeUrl(DocumentId);

impl AutomergeUrl {
    pub const PREFIX: &'static str = "automerge:";

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let rest = s
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| IdError::Url(truncate(s)))?;
        let id = rest.split('#').next().unwrap_or_default();
        DocumentId::parse(id)
            .map(Self)
            .map_err(|_| IdError::Url(truncate(s)))
    }

    pub fn document_id(&self) -> DocumentId {
        self.0
    }
}

impl fmt::Display for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

impl fmt::Debug for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AutomergeUrl({self})")
    }
}

impl FromStr for AutomergeUrl {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

macro_rules! bounded_string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $err:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, IdError> {
                if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
                    return Err($err);
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

bounded_string_id!(
    /// A peer's self-chosen name for one connection (the JS client uses a random string).
    PeerId,
    256,
    IdError::PeerId
);

bounded_string_id!(
    /// Names a persistent store (a UUID string in the reference clients). A peer that sends one
    /// and is not ephemeral gets its sync state persisted under it, so that its next connection
    /// starts from shared heads.
    StorageId,
    128,
    IdError::StorageId
);

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_id_roundtrips_through_bs58check() {
        let id = DocumentId::from_bytes([7; 16]);
        let text = id.to_string();
        assert_eq!(DocumentId::parse(&text), Ok(id));
        assert_eq!(
            AutomergeUrl::parse(&format!("automerge:{text}"))
                .unwrap()
                .document_id(),
            id
        );
    }

    #[test]
    fn known_document_id_from_the_js_client_parses() {
        let id = DocumentId::parse("PLUD22EtHV6JRMaH8ZvRwb1ejFa").unwrap();
        assert_eq!(id.to_string(), "PLUD22EtHV6JRMaH8ZvRwb1ejFa");
    }

    #[test]
    fn legacy_uuid_document_id_parses_to_same_bytes() {
        let uuid = "6f1d2b4e-93a5-4c1e-8c59-0d7ab1a3e0f2";
        let id = DocumentId::parse(uuid).unwrap();
        assert_eq!(
            id.as_bytes(),
            uuid::Uuid::parse_str(uuid).unwrap().as_bytes()
        );
    }

    #[test]
    fn malformed_document_ids_are_refused() {
        for bad in [
            "",
            "hello",
            "PLUD22EtHV6JRMaH8ZvRwb1ejFb",
            "0OIl",
            &"1".repeat(200),
        ] {
            assert!(DocumentId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        // A valid bs58check string of the wrong length.
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert!(DocumentId::parse(&short).is_err());
    }

    #[test]
    fn urls_need_the_prefix_and_ignore_heads() {
        assert!(AutomergeUrl::parse("PLUD22EtHV6JRMaH8ZvRwb1ejFa").is_err());
        let url = AutomergeUrl::parse("automerge:PLUD22EtHV6JRMaH8ZvRwb1ejFa#abc").unwrap();
        assert_eq!(url.to_string(), "automerge:PLUD22EtHV6JRMaH8ZvRwb1ejFa");
    }

    #[test]
    fn peer_ids_are_bounded_and_printable() {
        assert!(PeerId::parse("phone-1").is_ok());
        assert!(PeerId::parse("").is_err());
        assert!(PeerId::parse("a\nb").is_err());
        assert!(PeerId::parse(&"x".repeat(257)).is_err());
    }
}
