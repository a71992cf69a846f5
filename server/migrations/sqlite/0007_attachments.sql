-- Attachments (photos and scans) and their resumable uploads. Times are milliseconds since the
-- Unix epoch.
--
-- A blob is named by the SHA-256 of its bytes and stored once. Its bytes are rows of
-- blob_chunks (at most 256 KiB each) under a content id, so no blob is ever held whole in
-- memory: the id of the upload that brought them, which stays the blob's when the upload
-- finishes (nothing is copied).
CREATE TABLE blobs (
    sha256     TEXT   PRIMARY KEY,
    size       BIGINT NOT NULL,
    mime       TEXT   NOT NULL,
    content    TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- The bytes of a blob or an upload, by content id and the offset of the chunk's first byte.
-- An upload's chunks at or past its `stored` offset are not yet durable (a PATCH whose
-- checksum is still being verified) or left by a PATCH that was cut: they are ignored, and
-- deleted by the next PATCH.
CREATE TABLE blob_chunks (
    content  TEXT   NOT NULL,
    start_at BIGINT NOT NULL,
    data     BLOB   NOT NULL,
    PRIMARY KEY (content, start_at)
);

-- Uploads (tus), in progress or finished. A finished one stays until it expires, so that a
-- client asking again is told it is complete. Only the SHA-256 and MIME type of its metadata
-- are kept (a file name may name a person).
CREATE TABLE uploads (
    id          TEXT   PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    sha256      TEXT   NOT NULL,
    mime        TEXT   NOT NULL,
    length      BIGINT NOT NULL,
    -- bytes durably stored: the Upload-Offset the server reports
    stored      BIGINT NOT NULL,
    -- the PATCH now writing (a later PATCH takes over from one whose connection was cut)
    writer      TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX uploads_by_expiry ON uploads (expires_at);

-- Which blobs each document's `attachments` list references, written with its query rows in
-- the transaction of each change (rebuilt by `fieldsync reindex`): who may read a blob follows
-- who may read these documents.
CREATE TABLE attachment_refs (
    document_id TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    PRIMARY KEY (document_id, sha256)
);
CREATE INDEX attachment_refs_by_blob ON attachment_refs (sha256);

-- Thumbnails (JPEG, longest side at most 320 px) made on the server from the stored images.
CREATE TABLE thumbnails (
    sha256     TEXT   PRIMARY KEY,
    data       BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);
