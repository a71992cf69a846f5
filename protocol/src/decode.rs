//! Reading protocol v1 frames: a lenient CBOR reader for what real clients send.
//!
//! Keys may come in any order, maps and arrays may have definite or indefinite length (and
//! non-minimal headers), absent values may be `undefined` or `null`, numbers may be floats.
//! Every list is bounded, so a hostile frame cannot make us allocate for millions of entries.

use minicbor::Decoder;
use minicbor::data::Type;

use crate::ids::{DocumentId, IdError, PeerId, StorageId};
use crate::message::{DecodeError, DocMessage, HeadsInfo, Message, PeerMetadata};

impl Message {
    /// Reads one whole frame. (Here rather than beside [`Message::encode`], so that the
    /// reader depends on the message types and not the other way round.)
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(frame);
        let fields = Fields::read(&mut d)?;
        if d.position() != frame.len() {
            return Err(DecodeError::TrailingBytes);
        }
        fields.into_message()
    }
}

/// At most this many entries in any list or map a message carries. Real clients send a
/// handful; the limit keeps a hostile frame from making us allocate for millions.
const MAX_ENTRIES: u64 = 1024;

/// Every key we understand, collected before the message is assembled, because CBOR maps
/// have no key order.
#[derive(Default)]
struct Fields {
    kind: Option<String>,
    sender: Option<String>,
    target: Option<String>,
    document_id: Option<String>,
    data: Option<Vec<u8>>,
    message: Option<String>,
    selected_version: Option<String>,
    supported_versions: Option<Vec<String>>,
    metadata: Option<Option<PeerMetadata>>,
    count: Option<f64>,
    session_id: Option<String>,
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
    new_heads: Option<Vec<(String, HeadsInfo)>>,
}

pub(crate) fn cbor(e: minicbor::decode::Error) -> DecodeError {
    DecodeError::NotCbor(e.to_string())
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Iterates over a map or array of definite or indefinite length.
pub(crate) struct Entries {
    remaining: Option<u64>,
}

impl Entries {
    pub(crate) fn map(d: &mut Decoder<'_>, field: &'static str) -> Result<Self, DecodeError> {
        match d.datatype().map_err(cbor)? {
            Type::Map | Type::MapIndef => {}
            _ => return Err(invalid(field, "expected a map")),
        }
        let remaining = d.map().map_err(cbor)?;
        Self::bounded(remaining, field)
    }

    pub(crate) fn array(d: &mut Decoder<'_>, field: &'static str) -> Result<Self, DecodeError> {
        match d.datatype().map_err(cbor)? {
            Type::Array | Type::ArrayIndef => {}
            _ => return Err(invalid(field, "expected an array")),
        }
        let remaining = d.array().map_err(cbor)?;
        Self::bounded(remaining, field)
    }

    fn bounded(remaining: Option<u64>, field: &'static str) -> Result<Self, DecodeError> {
        if remaining.is_some_and(|n| n > MAX_ENTRIES) {
            return Err(invalid(field, format!("more than {MAX_ENTRIES} entries")));
        }
        Ok(Self { remaining })
    }

    /// True while there is another entry to read.
    pub(crate) fn next(&mut self, d: &mut Decoder<'_>) -> Result<bool, DecodeError> {
        match &mut self.remaining {
            Some(0) => Ok(false),
            Some(n) => {
                *n -= 1;
                Ok(true)
            }
            None => {
                if d.datatype().map_err(cbor)? == Type::Break {
                    d.skip().map_err(cbor)?;
                    Ok(false)
                } else {
                    Ok(true)
                }
            }
        }
    }
}

pub(crate) fn is_absent(d: &mut Decoder<'_>) -> Result<bool, DecodeError> {
    match d.datatype().map_err(cbor)? {
        Type::Undefined | Type::Null => {
            d.skip().map_err(cbor)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

pub(crate) fn read_str(d: &mut Decoder<'_>, field: &'static str) -> Result<String, DecodeError> {
    match d.datatype().map_err(cbor)? {
        Type::String => Ok(d.str().map_err(cbor)?.to_owned()),
        Type::StringIndef => {
            let mut s = String::new();
            for part in d.str_iter().map_err(cbor)? {
                s.push_str(part.map_err(cbor)?);
            }
            Ok(s)
        }
        _ => Err(invalid(field, "expected a string")),
    }
}

fn read_bytes(d: &mut Decoder<'_>, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    match d.datatype().map_err(cbor)? {
        Type::Bytes => Ok(d.bytes().map_err(cbor)?.to_vec()),
        Type::BytesIndef => {
            let mut v = Vec::new();
            for part in d.bytes_iter().map_err(cbor)? {
                v.extend_from_slice(part.map_err(cbor)?);
            }
            Ok(v)
        }
        // A typed array (Uint8Array) tagged by cbor-x when configured to: tag 64 is uint8.
        Type::Tag => {
            let tag = d.tag().map_err(cbor)?;
            if tag != minicbor::data::Tag::new(64) {
                return Err(invalid(field, "expected a byte string"));
            }
            read_bytes(d, field)
        }
        _ => Err(invalid(field, "expected a byte string")),
    }
}

/// A non-negative number sent as an integer or (by JS) as a float.
fn read_number(d: &mut Decoder<'_>, field: &'static str) -> Result<f64, DecodeError> {
    let value = match d.datatype().map_err(cbor)? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => d.u64().map_err(cbor)? as f64,
        Type::F16 | Type::F32 | Type::F64 => d.f64().map_err(cbor)?,
        _ => return Err(invalid(field, "expected a number")),
    };
    if !value.is_finite() || value < 0.0 {
        return Err(invalid(field, "expected a non-negative number"));
    }
    Ok(value)
}

pub(crate) fn read_str_list(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> Result<Vec<String>, DecodeError> {
    let mut entries = Entries::array(d, field)?;
    let mut out = Vec::new();
    while entries.next(d)? {
        if out.len() as u64 >= MAX_ENTRIES {
            return Err(invalid(field, format!("more than {MAX_ENTRIES} entries")));
        }
        out.push(read_str(d, field)?);
    }
    Ok(out)
}

fn read_metadata(d: &mut Decoder<'_>) -> Result<Option<PeerMetadata>, DecodeError> {
    const FIELD: &str = "peerMetadata";
    if is_absent(d)? {
        return Ok(None);
    }
    let mut entries = Entries::map(d, FIELD)?;
    let mut meta = PeerMetadata::default();
    while entries.next(d)? {
        let key = read_str(d, FIELD)?;
        match key.as_str() {
            "storageId" => {
                if !is_absent(d)? {
                    let s = read_str(d, "storageId")?;
                    meta.storage_id = Some(
                        StorageId::parse(&s).map_err(|e| invalid("storageId", e.to_string()))?,
                    );
                }
            }
            "isEphemeral" => {
                if !is_absent(d)? {
                    meta.is_ephemeral = d
                        .bool()
                        .map_err(|_| invalid("isEphemeral", "expected a boolean"))?;
                }
            }
            _ => d.skip().map_err(cbor)?,
        }
    }
    Ok(Some(meta))
}

fn read_new_heads(d: &mut Decoder<'_>) -> Result<Vec<(String, HeadsInfo)>, DecodeError> {
    const FIELD: &str = "newHeads";
    let mut entries = Entries::map(d, FIELD)?;
    let mut out = Vec::new();
    while entries.next(d)? {
        if out.len() as u64 >= MAX_ENTRIES {
            return Err(invalid(FIELD, format!("more than {MAX_ENTRIES} entries")));
        }
        let storage = read_str(d, FIELD)?;
        let mut inner = Entries::map(d, FIELD)?;
        let mut heads = None;
        let mut timestamp = 0.0;
        while inner.next(d)? {
            match read_str(d, FIELD)?.as_str() {
                "heads" => heads = Some(read_str_list(d, "heads")?),
                "timestamp" => timestamp = read_number(d, "timestamp")?,
                _ => d.skip().map_err(cbor)?,
            }
        }
        let heads = heads.ok_or_else(|| invalid(FIELD, "an entry lacks \"heads\""))?;
        out.push((storage, HeadsInfo { heads, timestamp }));
    }
    Ok(out)
}

impl Fields {
    fn read(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match d.datatype().map_err(cbor)? {
            Type::Map | Type::MapIndef => {}
            _ => return Err(DecodeError::NotAMap),
        }
        let mut entries = Entries::map(d, "message")?;
        let mut f = Fields::default();
        while entries.next(d)? {
            let key = match d.datatype().map_err(cbor)? {
                Type::String | Type::StringIndef => read_str(d, "key")?,
                _ => {
                    // A non-string key is no field of ours: skip key and value.
                    d.skip().map_err(cbor)?;
                    d.skip().map_err(cbor)?;
                    continue;
                }
            };
            match key.as_str() {
                "type" => f.kind = Some(read_str(d, "type")?),
                "senderId" => f.sender = Some(read_str(d, "senderId")?),
                "targetId" => f.target = Some(read_str(d, "targetId")?),
                "documentId" => f.document_id = Some(read_str(d, "documentId")?),
                "data" => f.data = Some(read_bytes(d, "data")?),
                "message" => f.message = Some(read_str(d, "message")?),
                "selectedProtocolVersion" => {
                    f.selected_version = Some(read_str(d, "selectedProtocolVersion")?)
                }
                "supportedProtocolVersions" => {
                    f.supported_versions = Some(read_str_list(d, "supportedProtocolVersions")?)
                }
                // samod writes `metadata`; the JS client writes `peerMetadata`.
                "peerMetadata" | "metadata" => f.metadata = Some(read_metadata(d)?),
                "count" => f.count = Some(read_number(d, "count")?),
                "sessionId" => f.session_id = Some(read_str(d, "sessionId")?),
                "add" => {
                    if !is_absent(d)? {
                        f.add = Some(read_str_list(d, "add")?)
                    }
                }
                "remove" => {
                    if !is_absent(d)? {
                        f.remove = Some(read_str_list(d, "remove")?)
                    }
                }
                "newHeads" => f.new_heads = Some(read_new_heads(d)?),
                _ => d.skip().map_err(cbor)?,
            }
        }
        Ok(f)
    }

    fn into_message(self) -> Result<Message, DecodeError> {
        let kind = self.kind.clone().ok_or(DecodeError::MissingType)?;
        let kind: &'static str = match kind.as_str() {
            "join" => "join",
            "peer" => "peer",
            "leave" => "leave",
            "error" => "error",
            "request" => "request",
            "sync" => "sync",
            "doc-unavailable" => "doc-unavailable",
            "ephemeral" => "ephemeral",
            "remote-subscription-change" => "remote-subscription-change",
            "remote-heads-changed" => "remote-heads-changed",
            _ => {
                return Err(DecodeError::UnknownType(kind.chars().take(40).collect()));
            }
        };
        let missing = |field| DecodeError::MissingField { kind, field };
        let peer = |v: Option<String>, field: &'static str| -> Result<PeerId, DecodeError> {
            let s = v.ok_or(missing(field))?;
            PeerId::parse(&s).map_err(|e| invalid(field, e.to_string()))
        };
        let doc = |v: Option<String>| -> Result<DocumentId, DecodeError> {
            let s = v.ok_or(missing("documentId"))?;
            DocumentId::parse(&s).map_err(|e: IdError| invalid("documentId", e.to_string()))
        };
        let storage_ids = |v: Option<Vec<String>>, field| -> Result<Vec<StorageId>, DecodeError> {
            v.unwrap_or_default()
                .iter()
                .map(|s| StorageId::parse(s).map_err(|e| invalid(field, e.to_string())))
                .collect()
        };
        Ok(match kind {
            "join" => Message::Join {
                sender: peer(self.sender, "senderId")?,
                metadata: self.metadata.flatten(),
                supported_versions: self
                    .supported_versions
                    .ok_or(missing("supportedProtocolVersions"))?,
            },
            "peer" => Message::Peer {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                metadata: self.metadata.flatten(),
                selected_version: self
                    .selected_version
                    .ok_or(missing("selectedProtocolVersion"))?,
            },
            "leave" => Message::Leave {
                sender: peer(self.sender, "senderId")?,
            },
            "error" => Message::Error {
                message: self.message.unwrap_or_default(),
            },
            "request" | "sync" => {
                let m = DocMessage {
                    document_id: doc(self.document_id)?,
                    sender: peer(self.sender, "senderId")?,
                    target: peer(self.target, "targetId")?,
                    data: self.data.ok_or(missing("data"))?,
                };
                if kind == "sync" {
                    Message::Sync(m)
                } else {
                    Message::Request(m)
                }
            }
            "doc-unavailable" => Message::DocUnavailable {
                document_id: doc(self.document_id)?,
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
            },
            "ephemeral" => Message::Ephemeral {
                document_id: doc(self.document_id)?,
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                count: self.count.ok_or(missing("count"))? as u64,
                session_id: self.session_id.ok_or(missing("sessionId"))?,
                data: self.data.ok_or(missing("data"))?,
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                add: storage_ids(self.add, "add")?,
                remove: storage_ids(self.remove, "remove")?,
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                document_id: doc(self.document_id)?,
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                new_heads: self
                    .new_heads
                    .ok_or(missing("newHeads"))?
                    .into_iter()
                    .map(|(s, info)| {
                        StorageId::parse(&s)
                            .map(|s| (s, info))
                            .map_err(|e| invalid("newHeads", e.to_string()))
                    })
                    .collect::<Result<_, _>>()?,
            },
            _ => unreachable!("every accepted kind is handled above"),
        })
    }
}
