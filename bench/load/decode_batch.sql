-- One gik.decode_batch of a member set: one field at one step for every member of a run.
\set s random(1, :nsets)
SELECT count(*) FROM bench.member_set s, LATERAL gik.decode_batch(s.refs) b WHERE s.id = :s;
