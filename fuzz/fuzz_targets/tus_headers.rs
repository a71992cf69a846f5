//! The tus header parsers (`fieldsync_protocol::tus`) on arbitrary header values: the input is
//! split at newlines into `Upload-Metadata`, `Upload-Checksum`, `Upload-Offset`,
//! `Upload-Length` and a blob hash. Nothing panics; a parsed byte count prints back as the
//! same digits; a parsed hash prints back as the same text; metadata keys are unique and
//! printable; a parsed checksum's digest has its algorithm's length.
#![no_main]

use fieldsync_protocol::BlobHash;
use fieldsync_protocol::tus::{Checksum, Metadata, parse_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let mut next = || fields.next().unwrap_or("");
    let (metadata, checksum, offset, length, hash) = (next(), next(), next(), next(), next());

    if let Ok(m) = Metadata::parse(metadata) {
        let keys: Vec<&str> = m.keys().collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b','));
            assert!(!keys[..i].contains(key), "duplicate key {key:?}");
            let _ = m.text(key);
        }
    }
    if let Ok(c) = Checksum::parse(checksum) {
        assert_eq!(c.digest.len(), c.algorithm.digest_len());
    }
    for (name, value) in [("Upload-Offset", offset), ("Upload-Length", length)] {
        if let Ok(n) = parse_bytes(name, value) {
            assert_eq!(n.to_string().parse::<u64>().ok(), value.parse::<u64>().ok());
            assert!(i64::try_from(n).is_ok(), "{n} fits the database");
        }
    }
    if let Some(h) = BlobHash::parse(hash) {
        assert_eq!(h.to_string(), hash);
    }
});
