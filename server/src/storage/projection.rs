//! Writing a document's query rows inside a storage transaction. The SQL is the same on both
//! backends (`$n` placeholders work on SQLite too); the macro instantiates it for each
//! backend's connection type, since sqlx code generic over databases needs bounds for every
//! bound type.

/// Defines `async fn $name(conn, doc, source, projection) -> Result<bool, sqlx::Error>`:
/// replaces the document's rows with `projection` unless rows computed from a newer chunk
/// than `source` are already there (then returns `false` and changes nothing).
///
/// The main row (`visits`, `referrals`, `outreach`) is written as an upsert that leaves
/// `received_at` alone: it is the server's time when the row was first written, kept through
/// every later change and every rebuild (`fieldsync reindex`).
macro_rules! projection_writer {
    ($name:ident, $conn:ty) => {
        pub(super) async fn $name(
            conn: &mut $conn,
            doc: &str,
            source: i64,
            projection: &crate::projection::Projection,
        ) -> Result<bool, sqlx::Error> {
            use crate::projection::Projection;
            // Claims the document's rows for `source`; on PostgreSQL the row lock it takes
            // also orders a concurrent rebuild after this transaction.
            let claimed: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO projection_sources (document_id, chunk_id) VALUES ($1, $2) \
                 ON CONFLICT (document_id) DO UPDATE SET chunk_id = excluded.chunk_id \
                 WHERE projection_sources.chunk_id <= excluded.chunk_id RETURNING chunk_id",
            )
            .bind(doc)
            .bind(source)
            .fetch_optional(&mut *conn)
            .await?;
            if claimed.is_none() {
                return Ok(false);
            }
            // A field document's type never changes once written (the envelope is fixed), so
            // its old rows can only be in its own tables: clearing those (and upserting its
            // main row) is enough, which keeps a phone's change at two statements here instead
            // of five. A document without rows (empty, or of a newer schema) is cleared
            // everywhere.
            let received_at = crate::storage::now_millis();
            let tables: &[&str] = match projection {
                Projection::Nothing => &[
                    "DELETE FROM attachment_refs WHERE document_id = $1",
                    "DELETE FROM visits WHERE document_id = $1",
                    "DELETE FROM referrals WHERE document_id = $1",
                    "DELETE FROM referral_events WHERE document_id = $1",
                    "DELETE FROM outreach WHERE document_id = $1",
                ],
                Projection::Visit(_) => &["DELETE FROM attachment_refs WHERE document_id = $1"],
                Projection::Referral(_) => &[
                    "DELETE FROM attachment_refs WHERE document_id = $1",
                    "DELETE FROM referral_events WHERE document_id = $1",
                ],
                Projection::Outreach(_) => &[],
            };
            for delete in tables {
                sqlx::query(*delete)
                    .bind(doc)
                    .execute(&mut *conn)
                    .await?;
            }
            let attachments = match projection {
                Projection::Visit(v) => v.attachments.as_slice(),
                Projection::Referral(r) => r.attachments.as_slice(),
                Projection::Nothing | Projection::Outreach(_) => &[],
            };
            for hash in attachments {
                sqlx::query("INSERT INTO attachment_refs (document_id, sha256) VALUES ($1, $2)")
                    .bind(doc)
                    .bind(hash.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
            match projection {
                Projection::Nothing => {}
                Projection::Visit(v) => {
                    sqlx::query(
                        "INSERT INTO visits (document_id, area, created_by, created_at, schema, \
                         nik, kk, name, ppks, visited_at, purpose, follow_up_on, lat, lon, \
                         notes_excerpt, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                         $16) \
                         ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, \
                         created_by = excluded.created_by, created_at = excluded.created_at, \
                         schema = excluded.schema, nik = excluded.nik, kk = excluded.kk, \
                         name = excluded.name, ppks = excluded.ppks, \
                         visited_at = excluded.visited_at, purpose = excluded.purpose, \
                         follow_up_on = excluded.follow_up_on, lat = excluded.lat, \
                         lon = excluded.lon, notes_excerpt = excluded.notes_excerpt",
                    )
                    .bind(doc)
                    .bind(&v.common.area)
                    .bind(&v.common.created_by)
                    .bind(v.common.created_at)
                    .bind(v.common.schema)
                    .bind(&v.person.nik)
                    .bind(&v.person.kk)
                    .bind(&v.person.name)
                    .bind(&v.person.ppks)
                    .bind(v.visited_at)
                    .bind(&v.purpose)
                    .bind(&v.follow_up_on)
                    .bind(v.lat)
                    .bind(v.lon)
                    .bind(&v.notes_excerpt)
                    .bind(received_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Projection::Referral(r) => {
                    sqlx::query(
                        "INSERT INTO referrals (document_id, area, created_by, created_at, \
                         schema, nik, kk, name, ppks, program, status, visit_id, consent_given, \
                         doc_ktp, doc_kk, doc_sktm, doc_surat_puskesmas, reason_excerpt, \
                         submitted_at, decided_at, last_event_at, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                         $15, $16, $17, $18, $19, $20, $21, $22) \
                         ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, \
                         created_by = excluded.created_by, created_at = excluded.created_at, \
                         schema = excluded.schema, nik = excluded.nik, kk = excluded.kk, \
                         name = excluded.name, ppks = excluded.ppks, \
                         program = excluded.program, status = excluded.status, \
                         visit_id = excluded.visit_id, consent_given = excluded.consent_given, \
                         doc_ktp = excluded.doc_ktp, doc_kk = excluded.doc_kk, \
                         doc_sktm = excluded.doc_sktm, \
                         doc_surat_puskesmas = excluded.doc_surat_puskesmas, \
                         reason_excerpt = excluded.reason_excerpt, \
                         submitted_at = excluded.submitted_at, \
                         decided_at = excluded.decided_at, \
                         last_event_at = excluded.last_event_at",
                    )
                    .bind(doc)
                    .bind(&r.common.area)
                    .bind(&r.common.created_by)
                    .bind(r.common.created_at)
                    .bind(r.common.schema)
                    .bind(&r.person.nik)
                    .bind(&r.person.kk)
                    .bind(&r.person.name)
                    .bind(&r.person.ppks)
                    .bind(&r.program)
                    .bind(&r.status)
                    .bind(&r.visit_id)
                    .bind(r.consent_given)
                    .bind(r.documents[0])
                    .bind(r.documents[1])
                    .bind(r.documents[2])
                    .bind(r.documents[3])
                    .bind(&r.reason_excerpt)
                    .bind(r.submitted_at)
                    .bind(r.decided_at)
                    .bind(r.last_event_at)
                    .bind(received_at)
                    .execute(&mut *conn)
                    .await?;
                    for e in &r.events {
                        sqlx::query(
                            "INSERT INTO referral_events (document_id, seq, kind, at, by_user, \
                             note, applied) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(doc)
                        .bind(e.seq)
                        .bind(&e.kind)
                        .bind(e.at)
                        .bind(&e.by)
                        .bind(&e.note)
                        .bind(e.applied)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                Projection::Outreach(o) => {
                    sqlx::query(
                        "INSERT INTO outreach (document_id, area, created_by, created_at, schema, \
                         topic, held_at, place, attendees, notes_excerpt, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, \
                         created_by = excluded.created_by, created_at = excluded.created_at, \
                         schema = excluded.schema, topic = excluded.topic, \
                         held_at = excluded.held_at, place = excluded.place, \
                         attendees = excluded.attendees, \
                         notes_excerpt = excluded.notes_excerpt",
                    )
                    .bind(doc)
                    .bind(&o.common.area)
                    .bind(&o.common.created_by)
                    .bind(o.common.created_at)
                    .bind(o.common.schema)
                    .bind(&o.topic)
                    .bind(o.held_at)
                    .bind(&o.place)
                    .bind(o.attendees)
                    .bind(&o.notes_excerpt)
                    .bind(received_at)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            // The name's words for search; kept when the name changes (an earlier spelling
            // still finds the record), so a change that keeps the name adds nothing.
            let person = match projection {
                Projection::Visit(v) => Some(&v.person),
                Projection::Referral(r) => Some(&r.person),
                Projection::Nothing | Projection::Outreach(_) => None,
            };
            if let Some(person) = person {
                let words = crate::name_words::words(&person.name);
                if !words.is_empty() {
                    let sql = crate::storage::beneficiaries::name_words_insert(words.len());
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for word in &words {
                        insert = insert.bind(word).bind(doc);
                    }
                    insert.execute(&mut *conn).await?;
                }
            }
            Ok(true)
        }
    };
}

pub(super) use projection_writer;
