-- Names of Indonesia's administrative areas by Kemendagri code (province `32`, kabupaten/kota
-- `32.77`, kecamatan `32.77.02`, kelurahan/desa `32.77.02.1003`), loaded by
-- `fieldsync areas import` (server/src/areas.rs). Pages show these names instead of codes.
-- `updated_at` (milliseconds since the Unix epoch) tells running processes to read it again.
CREATE TABLE areas (
    code       TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
