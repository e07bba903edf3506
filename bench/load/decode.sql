-- One gik.decode of a random chunk reference (any variable, either dataset).
\set r random(1, :nrefs)
SELECT cardinality(gik.decode(r.url, r.byte_offset, r.byte_length)) FROM bench.ref r WHERE r.id = :r;
