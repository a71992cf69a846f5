//! Sending a finished export file: through a task that gives the client [`SEND_TIMEOUT`] to
//! take each chunk, so a reader that stops reading lets go of the file and of its person's
//! place among running exports (`admission.rs`) instead of holding them for as long as its
//! connection stays open.

use std::time::Duration;

use axum::body::{Body, Bytes};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::admission::{SEND_TIMEOUT, UserSlot};

const READ_BYTES: usize = 64 * 1024;

/// The response body: `file`, read from where it stands. A download that stalls or fails ends
/// with an error, so the client sees a broken transfer rather than a file that looks complete.
pub fn body(file: tokio::fs::File, slot: UserSlot) -> Body {
    body_within(file, slot, SEND_TIMEOUT)
}

fn body_within(mut file: tokio::fs::File, slot: UserSlot, timeout: Duration) -> Body {
    // `None` is the end of the file; a channel closed without it is a download cut short.
    let (tx, rx) = mpsc::channel::<Option<Bytes>>(1);
    tokio::spawn(async move {
        let _slot = slot;
        let mut buf = vec![0; READ_BYTES];
        loop {
            let chunk = match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some(Bytes::copy_from_slice(&buf[..n])),
                Err(e) => {
                    tracing::error!("cannot read an export file: {e}");
                    return;
                }
            };
            let last = chunk.is_none();
            match tokio::time::timeout(timeout, tx.send(chunk)).await {
                Ok(Ok(())) if !last => {}
                // Sent whole, or the client went away.
                Ok(_) => return,
                Err(_) => {
                    tracing::info!("an export download took no data for {timeout:?}; dropped");
                    return;
                }
            }
        }
    });
    let chunks = futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Some(bytes)) => Some((Ok(bytes), Some(rx))),
            Some(None) => None,
            None => Some((Err(std::io::Error::other("export download stopped")), None)),
        }
    });
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};
    use std::sync::Arc;

    use futures_util::StreamExt;

    use super::super::admission::Admission;
    use super::*;

    fn file_of(bytes: usize) -> tokio::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![b'x'; bytes]).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        tokio::fs::File::from_std(file)
    }

    #[tokio::test]
    async fn a_download_read_to_the_end_is_whole() {
        let admission = Arc::new(Admission::default());
        let slot = admission.user_slot("dewi").unwrap();
        let body = body_within(file_of(200_000), slot, Duration::from_secs(5));
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(bytes.len(), 200_000);
    }

    #[tokio::test]
    async fn a_stalled_download_lets_go_of_its_place_and_ends_broken() {
        let admission = Arc::new(Admission::default());
        let slot = admission.user_slot("dewi").unwrap();
        let _other = admission.user_slot("dewi").unwrap();
        let body = body_within(file_of(1_000_000), slot, Duration::from_millis(50));
        let mut chunks = body.into_data_stream();
        // The client takes one chunk, then nothing.
        assert!(chunks.next().await.unwrap().is_ok());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while admission.user_slot("dewi").is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the place comes back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut broken = false;
        while let Some(chunk) = chunks.next().await {
            if chunk.is_err() {
                broken = true;
                break;
            }
        }
        assert!(broken, "the body ends with an error, not as if complete");
    }
}
