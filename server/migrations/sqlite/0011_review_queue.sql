-- The review queue (storage/review.rs): its page is read in the queue's order from this index
-- instead of sorting every waiting referral (2 s for a province of 200,000 referrals), and its
-- count from the index of status and area alone.
CREATE INDEX referrals_queue ON referrals ((COALESCE(submitted_at, created_at)), created_at, document_id);
CREATE INDEX referrals_by_status_area ON referrals (status, area);
