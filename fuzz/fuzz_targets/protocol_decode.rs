//! `Message::decode` on arbitrary bytes never panics, and whatever it decodes survives a
//! re-encode: `decode(encode(m)) == m`, and encoding is stable from then on.
#![no_main]

use fieldsync_protocol::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let encoded = message.encode();
    let again = Message::decode(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded {message:?} does not decode: {e}"));
    assert_eq!(again, message, "decode(encode(m)) != m");
    assert_eq!(again.encode(), encoded, "encoding is not stable");
});
