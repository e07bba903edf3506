-- gik.ingest_latest as pg_cron would call it, for one of the two datasets, "now" being one of the mirror's
-- cycles. recheck_h (hours) below the mirror's age makes complete runs count as due again, so every call
-- has work: the first calls ingest new runs, later ones re-ingest complete runs (outcome unchanged).
\set c random(0, :ncycles - 1)
\set d random(1, 2)
CALL gik.ingest_latest((ARRAY['load_gefs', 'load_ecmwf'])[:d],
                       as_of => timestamptz '2025-10-01 00:00+00' + :c * interval '6 hours',
                       max_runs => :max_runs, recheck => :recheck_h * interval '1 hour');
