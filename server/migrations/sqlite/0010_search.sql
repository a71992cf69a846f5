-- Search by name (server/src/name_words.rs): the folded words of every name a visit or
-- referral has held, by document (whose lock orders concurrent writers, so two processes never
-- deadlock on a word). Written with the document's query row and kept when the name changes:
-- a search by an earlier spelling still finds the record. A search matches a word by prefix
-- (word >= 'ami' AND word < 'ami' || U+10FFFF), in byte order.
CREATE TABLE name_words (
    word TEXT NOT NULL,
    document_id TEXT NOT NULL,
    PRIMARY KEY (word, document_id)
);

-- Households: every record of a family card (KK).
CREATE INDEX visits_by_kk ON visits (kk);
CREATE INDEX referrals_by_kk ON referrals (kk);
