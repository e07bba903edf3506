-- East Africa 0-24 h probability of exceedance for 4 thresholds, one of the two ensembles.
\set d random(1, 2)
SELECT count(*) FROM gik.exceedance((ARRAY['load_gefs', 'load_ecmwf'])[:d], timestamptz '2025-10-01 00:00+00',
                                    0, 24, '{1,5,10,25}'::real[], gik.bbox(21, -12, 53, 23));
