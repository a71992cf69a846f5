//! Attachments in storage, on both backends: uploads in chunks, the offset counting only what
//! is committed, a later PATCH taking an upload over, blobs stored once, expiry, and the
//! documents that reference a blob written with their query rows.

use fieldsync_core::schema::{DocKind, FieldDocument, RegionCode, examples};
use fieldsync_protocol::BlobHash;
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::blobs::{Claim, Finish, Upload};
use fieldsync_server::storage::{self, Write};
use sha2::{Digest, Sha256};

use super::{backends, did, doc_with_changes, finish};

const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn hash_of(bytes: &[u8]) -> BlobHash {
    BlobHash::from_bytes(Sha256::digest(bytes).into())
}

fn upload(id: &str, bytes: &[u8], now: i64) -> Upload {
    Upload {
        id: id.into(),
        user_id: "peksos-ani".into(),
        device_id: "dev_1".into(),
        sha256: hash_of(bytes),
        mime: "image/jpeg".into(),
        length: bytes.len() as u64,
        stored: 0,
        created_at: now,
        expires_at: now + HOUR,
        finished: false,
        writing: false,
    }
}

/// Every byte of a content, read back chunk by chunk.
async fn read_all(storage: &dyn storage::Storage, content: &str, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((start, data)) = storage
        .chunk(content, out.len() as u64, size)
        .await
        .unwrap()
    {
        assert_eq!(start, out.len() as u64, "chunks are contiguous");
        out.extend_from_slice(&data);
    }
    out
}

#[tokio::test]
async fn an_upload_in_chunks_becomes_a_blob_stored_once() {
    let backends = backends().await;
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let now = now();
    for b in &backends {
        let s = b.storage.as_ref();
        s.create_upload(&upload("up_a", &bytes, now)).await.unwrap();
        assert_eq!(s.claim("up_a", 0, "w1", now).await.unwrap(), Claim::Claimed);
        for (i, piece) in bytes.chunks(256 * 1024).enumerate() {
            let at = (i * 256 * 1024) as u64;
            assert!(s.put_chunk("up_a", "w1", at, piece, true).await.unwrap());
            let stored = s.upload("up_a").await.unwrap().unwrap().stored;
            assert_eq!(stored, at + piece.len() as u64, "{}", b.name);
        }
        // Not yet a blob: its hash has not been checked.
        assert!(
            s.blob(hash_of(&bytes)).await.unwrap().is_none(),
            "{}",
            b.name
        );
        assert_eq!(
            s.finish("up_a", "w1", now).await.unwrap(),
            Finish::Stored,
            "{}",
            b.name
        );
        let blob = s.blob(hash_of(&bytes)).await.unwrap().unwrap();
        assert_eq!((blob.size, blob.mime.as_str()), (700_000, "image/jpeg"));
        assert_eq!(read_all(s, &blob.content, blob.size).await, bytes);
        assert!(s.upload("up_a").await.unwrap().unwrap().finished);

        // The same bytes again, from another phone: the second copy is dropped.
        s.create_upload(&upload("up_b", &bytes, now)).await.unwrap();
        assert_eq!(s.claim("up_b", 0, "w2", now).await.unwrap(), Claim::Claimed);
        assert!(s.put_chunk("up_b", "w2", 0, &bytes, true).await.unwrap());
        assert_eq!(
            s.finish("up_b", "w2", now).await.unwrap(),
            Finish::Duplicate,
            "{}",
            b.name
        );
        assert_eq!(s.chunk("up_b", 0, u64::MAX).await.unwrap(), None);
        // Terminating the finished upload keeps the blob.
        assert!(s.delete_upload("up_a").await.unwrap());
        assert_eq!(read_all(s, &blob.content, blob.size).await, bytes);
        // A finished upload takes no more bytes.
        assert_eq!(
            s.claim("up_b", 700_000, "w3", now).await.unwrap(),
            Claim::Finished
        );
    }
    finish(backends).await;
}

#[tokio::test]
async fn the_offset_counts_only_committed_chunks_and_a_later_patch_takes_over() {
    let backends = backends().await;
    let bytes = vec![7u8; 1000];
    let now = now();
    for b in &backends {
        let s = b.storage.as_ref();
        s.create_upload(&upload("up_c", &bytes, now)).await.unwrap();
        assert_eq!(s.claim("up_c", 0, "w1", now).await.unwrap(), Claim::Claimed);
        assert!(
            s.put_chunk("up_c", "w1", 0, &bytes[..300], true)
                .await
                .unwrap()
        );
        // A checksummed PATCH stores without counting until its digest matched.
        assert!(
            s.put_chunk("up_c", "w1", 300, &bytes[300..600], false)
                .await
                .unwrap()
        );
        assert_eq!(
            s.upload("up_c").await.unwrap().unwrap().stored,
            300,
            "{}",
            b.name
        );
        assert_eq!(
            s.claim("up_c", 0, "w2", now).await.unwrap(),
            Claim::Conflict { stored: 300 },
            "{}",
            b.name
        );
        // The client resumes at 300 (the first PATCH's connection was cut): the uncounted
        // bytes go, and the first PATCH can store nothing more.
        assert_eq!(
            s.claim("up_c", 300, "w2", now).await.unwrap(),
            Claim::Claimed
        );
        // The cut request's own claim, late (its token is older): it does not overtake.
        assert_eq!(
            s.claim("up_c", 300, "w0", now).await.unwrap(),
            Claim::Conflict { stored: 300 },
            "{}",
            b.name
        );
        assert_eq!(
            s.chunk("up_c", 300, 1000).await.unwrap(),
            None,
            "{}",
            b.name
        );
        assert!(
            !s.put_chunk("up_c", "w1", 300, &bytes[300..], true)
                .await
                .unwrap()
        );
        assert!(!s.advance("up_c", "w1", 600).await.unwrap());
        assert!(
            s.put_chunk("up_c", "w2", 300, &bytes[300..], false)
                .await
                .unwrap()
        );
        assert!(s.advance("up_c", "w2", 1000).await.unwrap());
        assert!(s.upload("up_c").await.unwrap().unwrap().writing);
        // The loser's release leaves the new writer in place.
        s.release("up_c", "w1").await.unwrap();
        assert!(
            s.upload("up_c").await.unwrap().unwrap().writing,
            "{}",
            b.name
        );
        assert_eq!(s.finish("up_c", "w1", now).await.unwrap(), Finish::Lost);
        assert_eq!(s.finish("up_c", "w2", now).await.unwrap(), Finish::Stored);
        assert_eq!(read_all(s, "up_c", 1000).await, bytes, "{}", b.name);
    }
    finish(backends).await;
}

#[tokio::test]
async fn an_upload_continues_on_another_process() {
    let backends = backends().await;
    let bytes = vec![3u8; 500];
    let now = now();
    for b in &backends {
        let other = storage::open(&b.url).await.unwrap();
        b.storage
            .create_upload(&upload("up_d", &bytes, now))
            .await
            .unwrap();
        assert_eq!(
            b.storage.claim("up_d", 0, "w1", now).await.unwrap(),
            Claim::Claimed
        );
        assert!(
            b.storage
                .put_chunk("up_d", "w1", 0, &bytes[..200], true)
                .await
                .unwrap()
        );
        let seen = other.upload("up_d").await.unwrap().unwrap();
        assert_eq!(seen.stored, 200, "{}", b.name);
        assert_eq!(
            other.claim("up_d", 200, "w2", now).await.unwrap(),
            Claim::Claimed
        );
        assert!(
            other
                .put_chunk("up_d", "w2", 200, &bytes[200..], true)
                .await
                .unwrap()
        );
        assert_eq!(
            other.finish("up_d", "w2", now).await.unwrap(),
            Finish::Stored
        );
        let blob = b.storage.blob(hash_of(&bytes)).await.unwrap().unwrap();
        assert_eq!(
            read_all(b.storage.as_ref(), &blob.content, 500).await,
            bytes
        );
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn expired_uploads_go_with_their_chunks_and_blobs_stay() {
    let backends = backends().await;
    let now = now();
    let (kept, lapsed) = (vec![1u8; 100], vec![2u8; 100]);
    for b in &backends {
        let s = b.storage.as_ref();
        // A finished upload whose bytes are a blob's, and an unfinished one, both expired.
        let mut done = upload("up_e", &kept, now - 2 * HOUR);
        done.expires_at = now - HOUR;
        s.create_upload(&Upload {
            expires_at: now + HOUR,
            ..done.clone()
        })
        .await
        .unwrap();
        assert_eq!(s.claim("up_e", 0, "w", now).await.unwrap(), Claim::Claimed);
        assert!(s.put_chunk("up_e", "w", 0, &kept, true).await.unwrap());
        assert_eq!(s.finish("up_e", "w", now).await.unwrap(), Finish::Stored);
        let mut old = upload("up_f", &lapsed, now - 2 * HOUR);
        old.expires_at = now + 50;
        s.create_upload(&old).await.unwrap();
        assert_eq!(s.claim("up_f", 0, "w", now).await.unwrap(), Claim::Claimed);
        assert!(
            s.put_chunk("up_f", "w", 0, &lapsed[..50], true)
                .await
                .unwrap()
        );
        // Nothing has expired yet.
        assert_eq!(s.expire_uploads(now).await.unwrap(), 0, "{}", b.name);
        // Later: both uploads go; the blob's chunks stay, the unfinished one's do not.
        assert_eq!(
            s.expire_uploads(now + 2 * HOUR).await.unwrap(),
            2,
            "{}",
            b.name
        );
        assert!(s.upload("up_f").await.unwrap().is_none());
        assert_eq!(s.chunk("up_f", 0, 100).await.unwrap(), None, "{}", b.name);
        let blob = s.blob(hash_of(&kept)).await.unwrap().unwrap();
        assert_eq!(read_all(s, &blob.content, 100).await, kept, "{}", b.name);
        // An expired upload takes no bytes even before it is deleted.
        let mut late = upload("up_g", &lapsed, now - 2 * HOUR);
        late.expires_at = now - 1;
        s.create_upload(&late).await.unwrap();
        assert_eq!(s.claim("up_g", 0, "w", now).await.unwrap(), Claim::Gone);
    }
    finish(backends).await;
}

#[tokio::test]
async fn the_documents_that_reference_a_blob_follow_each_change() {
    let backends = backends().await;
    let (a, c) = (hash_of(b"ktp"), hash_of(b"kk"));
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    let referral = |hashes: Vec<BlobHash>| {
        Projection::of(Some(&FieldDocument::Referral(examples::referral(
            &area,
            "peksos-ani",
        ))))
        .with_attachments(hashes)
    };
    let visit = Projection::of(Some(&FieldDocument::Visit(examples::visit(
        &area,
        "peksos-ani",
    ))))
    .with_attachments(vec![a]);
    for b in &backends {
        let (_, chunks) = doc_with_changes(3);
        let s = &b.storage;
        s.write(&[
            Write::Append {
                doc: did(40),
                bytes: chunks[0].clone(),
                projection: referral(vec![a, c]),
            },
            Write::Append {
                doc: did(41),
                bytes: chunks[0].clone(),
                projection: visit.clone(),
            },
        ])
        .await
        .unwrap();
        let placed = s.referencing(a).await.unwrap();
        let found: Vec<(String, DocKind)> = placed
            .iter()
            .map(|p| (p.document_id.clone(), p.kind))
            .collect();
        let mut expected = vec![
            (did(40).to_string(), DocKind::Referral),
            (did(41).to_string(), DocKind::Visit),
        ];
        expected.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(found, expected, "{}", b.name);
        assert_eq!(placed[0].area, "32.77.01.1001", "{}", b.name);
        let rows = s.projection_rows().await.unwrap();
        assert!(
            rows.contains(&format!("attachment_refs|{}|{c}", did(40))),
            "{}: {rows:?}",
            b.name
        );
        // The referral's next change drops one scan: it no longer references it.
        s.write(&[Write::Append {
            doc: did(40),
            bytes: chunks[1].clone(),
            projection: referral(vec![a]),
        }])
        .await
        .unwrap();
        assert!(s.referencing(c).await.unwrap().is_empty(), "{}", b.name);
        assert_eq!(s.referencing(a).await.unwrap().len(), 2, "{}", b.name);
    }
    finish(backends).await;
}
