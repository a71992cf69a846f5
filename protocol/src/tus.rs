//! The headers of tus 1.0.0, the resumable upload protocol attachments travel by (`/files/`,
//! docs/protocol.md): parsed once, at the boundary, into values the server trusts. Nothing
//! here does IO; `fuzz/fuzz_targets/tus_headers.rs` feeds it arbitrary header values.
//!
//! Also [`BlobHash`], the SHA-256 that names a blob, shared by the upload, the documents'
//! `attachments` lists and the read routes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The only protocol version served.
pub const TUS_VERSION: &str = "1.0.0";

/// Longest `Upload-Metadata` header read (bytes): a phone sends three short pairs.
pub const MAX_METADATA_BYTES: usize = 4096;

/// The SHA-256 of a blob's bytes, which is its name: 64 lowercase hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    /// Parses 64 lowercase hex digits; anything else (upper case, other lengths) is `None`,
    /// so that one blob has one spelling.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
        }
        Some(Self(out))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

/// Why a header was refused; the text is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{0} must be a non-negative whole number of bytes")]
    NotANumber(&'static str),
    #[error("Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")]
    MetadataTooLong,
    #[error("Upload-Metadata must be comma-separated `key base64value` pairs")]
    MetadataMalformed,
    #[error("Upload-Metadata names the key `{0}` twice")]
    MetadataDuplicate(String),
    #[error("Upload-Checksum must be `sha1 <base64>` or `sha256 <base64>`")]
    ChecksumMalformed,
    #[error("Upload-Checksum algorithm `{0}` is not supported; use sha1 or sha256")]
    ChecksumAlgorithm(String),
}

/// A byte count or offset (`Upload-Length`, `Upload-Offset`): ASCII digits only, no sign, no
/// spaces, at most 18 digits (so it fits an `i64` in the database).
pub fn parse_bytes(name: &'static str, value: &str) -> Result<u64, HeaderError> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::NotANumber(name));
    }
    value.parse().map_err(|_| HeaderError::NotANumber(name))
}

/// `Upload-Metadata`: pairs `key value` separated by commas, the value base64 (it may be
/// absent: a key alone). Keys are ASCII without spaces or commas and must not repeat. Values
/// are bytes; [`Metadata::text`] gives one as UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    pub fn parse(header: &str) -> Result<Self, HeaderError> {
        if header.len() > MAX_METADATA_BYTES {
            return Err(HeaderError::MetadataTooLong);
        }
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if header.trim().is_empty() {
            return Ok(Self { pairs });
        }
        for pair in header.split(',') {
            let pair = pair.trim();
            let (key, value) = match pair.split_once(' ') {
                Some((key, value)) => (key, Some(value.trim())),
                None => (pair, None),
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(HeaderError::MetadataMalformed);
            }
            let value = match value {
                None | Some("") => Vec::new(),
                Some(v) => STANDARD
                    .decode(v)
                    .map_err(|_| HeaderError::MetadataMalformed)?,
            };
            if pairs.iter().any(|(k, _)| k == key) {
                return Err(HeaderError::MetadataDuplicate(key.to_owned()));
            }
            pairs.push((key.to_owned(), value));
        }
        Ok(Self { pairs })
    }

    /// The value of `key` as UTF-8 text; `None` when absent or not UTF-8.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }
}

/// The algorithms `Upload-Checksum` may name (`Tus-Checksum-Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

/// `Upload-Checksum: <algorithm> <base64 digest>` of one PATCH's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub digest: Vec<u8>,
}

impl Checksum {
    pub fn parse(header: &str) -> Result<Self, HeaderError> {
        let (name, digest) = header
            .trim()
            .split_once(' ')
            .ok_or(HeaderError::ChecksumMalformed)?;
        let algorithm = match name {
            "sha1" => ChecksumAlgorithm::Sha1,
            "sha256" => ChecksumAlgorithm::Sha256,
            other if other.len() <= 32 && other.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(HeaderError::ChecksumAlgorithm(other.to_owned()));
            }
            _ => return Err(HeaderError::ChecksumMalformed),
        };
        let digest = STANDARD
            .decode(digest.trim())
            .map_err(|_| HeaderError::ChecksumMalformed)?;
        if digest.len() != algorithm.digest_len() {
            return Err(HeaderError::ChecksumMalformed);
        }
        Ok(Self { algorithm, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_hashes_are_lowercase_hex_of_64_digits() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let hash = BlobHash::parse(hex).unwrap();
        assert_eq!(hash.to_string(), hex);
        assert_eq!(BlobHash::parse(&hex.to_uppercase()), None);
        assert_eq!(BlobHash::parse(&hex[1..]), None);
        assert_eq!(BlobHash::parse(&format!("{hex}0")), None);
        assert_eq!(BlobHash::parse(&hex.replace('e', "g")), None);
    }

    #[test]
    fn byte_counts_are_plain_digits() {
        assert_eq!(parse_bytes("Upload-Length", "0"), Ok(0));
        assert_eq!(parse_bytes("Upload-Length", "20971520"), Ok(20_971_520));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "0x10",
            "9999999999999999999",
        ] {
            assert!(parse_bytes("Upload-Offset", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_pairs_decode_from_base64() {
        // What tus-js-client sends: `key base64,key base64`.
        let m = Metadata::parse("filetype aW1hZ2UvanBlZw==,sha256 YWJj,flag").unwrap();
        assert_eq!(m.text("filetype"), Some("image/jpeg"));
        assert_eq!(m.text("sha256"), Some("abc"));
        assert_eq!(m.text("flag"), Some(""));
        assert_eq!(m.text("missing"), None);
        assert_eq!(Metadata::parse("").unwrap(), Metadata::default());
        assert_eq!(
            Metadata::parse("a YQ==,a YQ=="),
            Err(HeaderError::MetadataDuplicate("a".into()))
        );
        assert_eq!(
            Metadata::parse("a not-base64!"),
            Err(HeaderError::MetadataMalformed)
        );
        assert_eq!(Metadata::parse(",a"), Err(HeaderError::MetadataMalformed));
        let long = format!("a {}", "QUFB".repeat(MAX_METADATA_BYTES));
        assert_eq!(Metadata::parse(&long), Err(HeaderError::MetadataTooLong));
    }

    #[test]
    fn checksums_name_an_algorithm_and_a_digest_of_its_length() {
        // SHA-1 of "" in base64.
        let c = Checksum::parse("sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=").unwrap();
        assert_eq!(c.algorithm, ChecksumAlgorithm::Sha1);
        assert_eq!(c.digest.len(), 20);
        assert_eq!(
            Checksum::parse("md5 1B2M2Y8AsgTpgAmY7PhCfg=="),
            Err(HeaderError::ChecksumAlgorithm("md5".into()))
        );
        assert_eq!(
            Checksum::parse("sha256 2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
            Err(HeaderError::ChecksumMalformed)
        );
        assert_eq!(Checksum::parse("sha1"), Err(HeaderError::ChecksumMalformed));
    }
}
