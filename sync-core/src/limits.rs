//! Size limits on what a peer may make the server (or a phone) apply, checked *before* automerge
//! sees the bytes.
//!
//! A change is small on the wire and can be enormous in memory: a 10 KB deflated change can
//! carry a 10-million-character text, and automerge's run-length columns can claim billions of
//! operations in a few bytes. Applying either costs gigabytes and seconds of CPU, and the
//! stored chunk makes every later load cost the same again. [`inspect`] walks the chunk
//! headers and the column runs without building a single operation: it inflates deflated data
//! only up to the byte limit, and counts the items of every column by its run lengths, so its
//! own cost is bounded by the input's size and the limits, never by what the input claims.
//!
//! The item count of a chunk is the largest item count of any of its operation columns: at
//! least its number of operations, and exactly the work automerge would do to read them.

use std::io::Read;

/// The largest change and document a peer may make us apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of one change.
    pub max_change_bytes: u64,
    /// Operations (column items) of one change.
    pub max_change_ops: u64,
    /// Uncompressed bytes of a whole document (its chunks together).
    pub max_document_bytes: u64,
    /// Operations of a whole document.
    pub max_document_ops: u64,
}

impl Default for Limits {
    /// Generous for field documents (a visit with long notes is a few thousand operations and
    /// a few tens of kilobytes) and small enough that a document stays within tens of
    /// megabytes in memory.
    fn default() -> Self {
        Self {
            max_change_bytes: 1024 * 1024,
            max_change_ops: 100_000,
            max_document_bytes: 4 * 1024 * 1024,
            max_document_ops: 400_000,
        }
    }
}

impl Limits {
    /// No limit: for a replica's own documents, which it wrote or received from a server that
    /// enforced its own limits.
    pub const NONE: Limits = Limits {
        max_change_bytes: u64::MAX,
        max_change_ops: u64::MAX,
        max_document_bytes: u64::MAX,
        max_document_ops: u64::MAX,
    };
}

/// What a run of chunks holds, as far as the limits are concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    /// Uncompressed bytes.
    pub bytes: u64,
    /// Operations (the largest item count of any operation column, summed over chunks).
    pub ops: u64,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.ops = self.ops.saturating_add(other.ops);
    }
}

/// Why bytes were not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("a change of more than {limit} operations is not accepted")]
    ChangeOps { limit: u64 },
    #[error("a change larger than {limit} bytes uncompressed is not accepted")]
    ChangeBytes { limit: u64 },
    #[error(
        "the document would exceed {limit} operations; start a new document instead of growing this one"
    )]
    DocumentOps { limit: u64 },
    #[error("the document would exceed {limit} bytes uncompressed")]
    DocumentBytes { limit: u64 },
    #[error("not an automerge chunk: {0}")]
    Malformed(&'static str),
    #[error("automerge bundle chunks are not accepted")]
    Bundle,
}

/// Checks concatenated automerge chunks (change chunks, compressed change chunks, document
/// chunks) against `limits`, and returns their total size. Change chunks are held to the
/// change limits, document chunks and the total to the document limits. `base` is the size
/// the document already has: the total is judged with it added.
pub fn inspect(data: &[u8], limits: &Limits, base: Size) -> Result<Size, LimitError> {
    let mut total = Size::default();
    let mut rest = data;
    while !rest.is_empty() {
        let (size, tail) = chunk(rest, limits)?;
        total.add(size);
        let mut whole = base;
        whole.add(total);
        if whole.ops > limits.max_document_ops {
            return Err(LimitError::DocumentOps {
                limit: limits.max_document_ops,
            });
        }
        if whole.bytes > limits.max_document_bytes {
            return Err(LimitError::DocumentBytes {
                limit: limits.max_document_bytes,
            });
        }
        rest = tail;
    }
    Ok(total)
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED: u8 = 2;
const BUNDLE: u8 = 3;

/// One chunk at the start of `data`: its size and what follows it.
fn chunk<'a>(data: &'a [u8], limits: &Limits) -> Result<(Size, &'a [u8]), LimitError> {
    let mut r = Reader(data);
    if r.take(4)? != MAGIC {
        return Err(LimitError::Malformed("wrong magic bytes"));
    }
    r.take(4)?; // checksum
    let kind = r.byte()?;
    let len = usize::try_from(r.uleb()?).map_err(|_| LimitError::Malformed("chunk too long"))?;
    let body = r.take(len)?;
    let size = match kind {
        CHANGE => {
            let size = change(body, limits)?;
            Size {
                bytes: len as u64,
                ..size
            }
        }
        COMPRESSED => {
            let inflated = inflate(body, limits.max_change_bytes, || LimitError::ChangeBytes {
                limit: limits.max_change_bytes,
            })?;
            let size = change(&inflated, limits)?;
            Size {
                bytes: inflated.len() as u64,
                ..size
            }
        }
        DOCUMENT => document(body, limits)?,
        BUNDLE => return Err(LimitError::Bundle),
        _ => return Err(LimitError::Malformed("unknown chunk type")),
    };
    Ok((size, r.0))
}

/// The body of an uncompressed change chunk.
fn change(body: &[u8], limits: &Limits) -> Result<Size, LimitError> {
    if body.len() as u64 > limits.max_change_bytes {
        return Err(LimitError::ChangeBytes {
            limit: limits.max_change_bytes,
        });
    }
    let mut r = Reader(body);
    let deps = r.uleb()?;
    r.take(usize_of(deps)?.checked_mul(32).ok_or(TRUNCATED)?)?;
    r.bytes()?; // actor
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    r.bytes()?; // message
    let others = r.uleb()?;
    for _ in 0..others {
        r.bytes()?;
    }
    let columns = r.columns()?;
    let mut items = 0;
    let mut data = r.0;
    for (spec, len) in columns {
        let col = Reader(data).take(usize_of(len)?)?;
        data = &data[col.len()..];
        items = items.max(column_items(spec, col, limits.max_change_ops)?);
        if items > limits.max_change_ops {
            return Err(LimitError::ChangeOps {
                limit: limits.max_change_ops,
            });
        }
    }
    Ok(Size {
        bytes: body.len() as u64,
        ops: items,
    })
}

/// The body of a document chunk (a snapshot): actors, heads, change columns, op columns.
fn document(body: &[u8], limits: &Limits) -> Result<Size, LimitError> {
    let mut r = Reader(body);
    let actors = r.uleb()?;
    for _ in 0..actors {
        r.bytes()?;
    }
    let heads = r.uleb()?;
    r.take(usize_of(heads)?.checked_mul(32).ok_or(TRUNCATED)?)?;
    let change_columns = r.columns()?;
    let op_columns = r.columns()?;
    let mut data = r.0;
    let mut bytes = body.len() as u64;
    let mut ops = 0;
    let too_many = || LimitError::DocumentOps {
        limit: limits.max_document_ops,
    };
    for (i, (spec, len)) in change_columns.iter().chain(&op_columns).enumerate() {
        let raw = Reader(data).take(usize_of(*len)?)?;
        data = &data[raw.len()..];
        let inflated;
        let col = if spec & DEFLATE != 0 {
            let room = limits.max_document_bytes.saturating_sub(bytes);
            inflated = inflate(raw, room, || LimitError::DocumentBytes {
                limit: limits.max_document_bytes,
            })?;
            bytes += inflated.len() as u64;
            &inflated[..]
        } else {
            raw
        };
        let items = column_items(*spec, col, limits.max_document_ops)?;
        if i >= change_columns.len() {
            ops = ops.max(items);
        }
        if items > limits.max_document_ops {
            return Err(too_many());
        }
    }
    if bytes > limits.max_document_bytes {
        return Err(LimitError::DocumentBytes {
            limit: limits.max_document_bytes,
        });
    }
    Ok(Size { bytes, ops })
}

const DEFLATE: u32 = 0b1000;
const TRUNCATED: LimitError = LimitError::Malformed("truncated chunk");

/// Items in one column, counted from its runs; stops as soon as the count passes `cap`.
fn column_items(spec: u32, col: &[u8], cap: u64) -> Result<u64, LimitError> {
    let mut r = Reader(col);
    let mut items: u64 = 0;
    match spec & 0b111 {
        // Boolean: alternating run lengths of false and true.
        4 => {
            while !r.0.is_empty() {
                items = items.saturating_add(r.uleb()?);
                if items > cap {
                    break;
                }
            }
        }
        // Raw values: their lengths live in the metadata column, which is counted.
        7 => {}
        // Run-length encoded: group, actor, integer, delta, string, value metadata.
        kind => {
            while !r.0.is_empty() {
                let run = r.sleb()?;
                if run > 0 {
                    items = items.saturating_add(run as u64);
                    r.value(kind)?;
                } else if run < 0 {
                    let n = run.unsigned_abs();
                    for _ in 0..n {
                        r.value(kind)?;
                    }
                    items = items.saturating_add(n);
                } else {
                    items = items.saturating_add(r.uleb()?);
                }
                if items > cap {
                    break;
                }
            }
        }
    }
    Ok(items)
}

/// Inflates raw deflate data, refusing (with `over`) as soon as it passes `max` bytes.
fn inflate(data: &[u8], max: u64, over: impl Fn() -> LimitError) -> Result<Vec<u8>, LimitError> {
    let mut out = Vec::new();
    flate2::bufread::DeflateDecoder::new(data)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| LimitError::Malformed("bad deflate data"))?;
    if out.len() as u64 > max {
        return Err(over());
    }
    Ok(out)
}

fn usize_of(n: u64) -> Result<usize, LimitError> {
    usize::try_from(n).map_err(|_| TRUNCATED)
}

/// A cursor over bytes that never reads past their end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LimitError> {
        if n > self.0.len() {
            return Err(TRUNCATED);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, LimitError> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Result<u64, LimitError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(LimitError::Malformed("LEB128 number too long"))
    }

    fn sleb(&mut self) -> Result<i64, LimitError> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(LimitError::Malformed("LEB128 number too long"));
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// Length-prefixed bytes.
    fn bytes(&mut self) -> Result<&'a [u8], LimitError> {
        let n = self.uleb()?;
        self.take(usize_of(n)?)
    }

    /// Column metadata: (spec, length) pairs.
    fn columns(&mut self) -> Result<Vec<(u32, u64)>, LimitError> {
        let n = self.uleb()?;
        // Each pair takes at least two bytes: a count larger than that is a lie.
        if n > self.0.len() as u64 / 2 {
            return Err(TRUNCATED);
        }
        (0..n)
            .map(|_| {
                let spec = u32::try_from(self.uleb()?)
                    .map_err(|_| LimitError::Malformed("column spec too large"))?;
                Ok((spec, self.uleb()?))
            })
            .collect()
    }

    /// One value of a run-length encoded column of this type.
    fn value(&mut self, kind: u32) -> Result<(), LimitError> {
        match kind {
            3 => self.sleb().map(drop),
            5 => self.bytes().map(drop),
            _ => self.uleb().map(drop),
        }
    }
}
