//! Area names on both backends: an import adds and renames in one go, and a process reading
//! the names sees another process's import at its next refresh.

use fieldsync_server::areas::AreaBook;
use fieldsync_server::storage;
use fieldsync_server::storage::areas::{AreaImport, AreaRow};

use super::{backends, finish};

fn row(code: &str, name: &str) -> AreaRow {
    AreaRow {
        code: code.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn an_import_adds_and_renames_and_another_process_sees_it() {
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        let other = storage::open(&b.url).await.unwrap();
        let book = AreaBook::default();
        book.refresh(other.as_ref()).await.unwrap();
        assert!(book.names().is_empty(), "{}", b.name);

        let rows = [
            row("32", "Jawa Barat"),
            row("32.77", "Kota Cimahi"),
            row("32.77.02", "Cimahi Tengah"),
            row("32.77.02.1003", "Karangmekr"),
        ];
        let done = s.import_areas(&rows, 1_000).await.unwrap();
        assert_eq!(
            done,
            AreaImport {
                added: 4,
                renamed: 0,
                total: 4
            },
            "{}",
            b.name
        );
        book.refresh(other.as_ref()).await.unwrap();
        assert_eq!(book.names().name("32.77.02.1003"), Some("Karangmekr"));

        // The same rows again change nothing, not even the version.
        let version = s.areas_version().await.unwrap();
        let same = s.import_areas(&rows, 2_000).await.unwrap();
        assert_eq!((same.added, same.renamed), (0, 0), "{}", b.name);
        assert_eq!(s.areas_version().await.unwrap(), version, "{}", b.name);

        // A corrected name and a new kelurahan: both reach the other process.
        let fixed = [
            row("32.77.02.1003", "Karangmekar"),
            row("32.77.02.1004", "Setiamanah"),
        ];
        let done = s.import_areas(&fixed, 3_000).await.unwrap();
        assert_eq!(
            (done.added, done.renamed, done.total),
            (1, 1, 5),
            "{}",
            b.name
        );
        book.refresh(other.as_ref()).await.unwrap();
        let names = book.names();
        assert_eq!(
            names.name("32.77.02.1003"),
            Some("Karangmekar"),
            "{}",
            b.name
        );
        assert_eq!(
            names.name("32.77.02.1004"),
            Some("Setiamanah"),
            "{}",
            b.name
        );
        assert_eq!(names.len(), 5);
        other.close().await.unwrap();
    }
    finish(backends).await;
}
