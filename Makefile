# pg_gik: PGXS build for the pg_gik core extension and the SQL-only pg_gik_postgis companion,
# and the pg_gik_decoder program, the only code that runs ecCodes (installed beside pg_gik.so).
EXTENSION = pg_gik pg_gik_postgis
EXTVERSION = 0.2.0

MODULE_big = pg_gik
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/core/*.c)))
HEADERS = $(wildcard src/*.h src/core/*.h)

# SQL install scripts are assembled from sql/pg_gik/*.sql (one file per job, in name order).
SQL_PARTS = $(sort $(wildcard sql/pg_gik/*.sql))
DATA_built = sql/pg_gik--$(EXTVERSION).sql
DATA = sql/pg_gik_postgis--$(EXTVERSION).sql $(wildcard sql/pg_gik--*--*.sql) $(wildcard sql/pg_gik_postgis--*--*.sql)

PG_CPPFLAGS = -I$(srcdir)/src $(shell pkg-config --cflags libcurl jansson)
PG_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Wno-cast-function-type
SHLIB_LINK = $(shell pkg-config --libs libcurl jansson) -lpthread

# One regression file per install part (test/sql/NAME.sql tests sql/pg_gik/NN_NAME.sql; postgis the companion
# extension), run in this order in one database: import follows export, refs and retention follow scheduler.
# Files not named here run after these, in name order.
REGRESS_ORDER = analytics decode ensemble fetch ingest export import scheduler health refs retention parse postgis privileges
# REGRESS_SKIP: files left out (test/other-pg.sh: postgis, which needs PostGIS for that server version).
REGRESS = $(filter-out $(REGRESS_SKIP),$(REGRESS_ORDER) $(filter-out $(REGRESS_ORDER),$(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))))
REGRESS_OPTS = --inputdir=test --outputdir=test --load-extension=pg_gik

DECODER = src/decoder/pg_gik_decoder
DECODER_SRCS = $(sort $(wildcard src/decoder/*.c)) $(addprefix src/core/,grib_sanity.c grib_frame.c octets.c grid.c proj.c)
DECODER_CFLAGS ?= -O2 -g
DECODER_WARN = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
DECODER_LIBS = $(shell pkg-config --libs eccodes libseccomp) -lm

EXTRA_CLEAN = sql/pg_gik--$(EXTVERSION).sql test/results test/regression.* tmp_check $(DECODER)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The grants of gik_reader follow from the "-- grant: reader" lines of the parts (sql/reader-grants.awk).
sql/pg_gik--$(EXTVERSION).sql: $(SQL_PARTS) sql/reader-grants.awk
	cat $(SQL_PARTS) > $@
	awk -f sql/reader-grants.awk $(SQL_PARTS) >> $@

# Headers are few: every object depends on all of them (PGXS tracks no header dependencies).
$(OBJS): $(wildcard src/*.h src/core/*.h)

all: $(DECODER)

$(DECODER): $(DECODER_SRCS) $(wildcard src/decoder/*.h src/core/*.h)
	$(CC) $(DECODER_CFLAGS) $(DECODER_WARN) -I$(srcdir)/src $(shell pkg-config --cflags eccodes libseccomp) \
		-o $@ $(DECODER_SRCS) $(DECODER_LIBS)

install: install-decoder
.PHONY: install-decoder
install-decoder: $(DECODER)
	$(INSTALL_PROGRAM) $(DECODER) '$(DESTDIR)$(pkglibdir)/pg_gik_decoder'

# make installcheck (pg_regress) reads the loopback mirror and the fault server that test/start-servers.sh
# starts; without them it stops here with the command to run.
installcheck: test-servers-ready
.PHONY: test-servers-ready
test-servers-ready:
	@test -n "$$GIK_TEST_ROOT" -a -n "$$GIK_HTTP" -a -n "$$GIK_FAULT" || { echo "make installcheck: GIK_TEST_ROOT, GIK_HTTP and GIK_FAULT are not set: run test/start-servers.sh DIR, then . DIR/env.sh" >&2; exit 1; }
	@curl -sf -o /dev/null -r 0-0 "$$GIK_HTTP/fixtures/SOURCES.md" && curl -sf -o /dev/null "$$GIK_FAULT/__stats" || { echo "make installcheck: no mirror on $$GIK_HTTP or no fault server on $$GIK_FAULT: run test/start-servers.sh $$GIK_TEST_ROOT" >&2; exit 1; }

# Pure-C unit tests of src/core (no server needed).
.PHONY: unit
unit: $(DECODER)
	$(MAKE) -C test/unit run

# libFuzzer harnesses of src/core (test/fuzz, clang-14), live-server fuzzing through SQL (test/fuzz/run-live.sh),
# and the suite against an ASan build; see docs/fuzzing.md.
.PHONY: fuzz fuzz-smoke check-asan
fuzz:
	status=0; $(MAKE) -C test/fuzz fuzz FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) || status=1; \
	test/fuzz/run-live.sh $(or $(FUZZ_SECONDS),600) || status=1; exit $$status
fuzz-smoke:
	status=0; $(MAKE) -C test/fuzz smoke FUZZ_SECONDS=$(or $(FUZZ_SECONDS),30) || status=1; \
	test/fuzz/run-live.sh $(or $(FUZZ_SECONDS),30) || status=1; exit $$status
check-asan:
	test/run-asan.sh

# Self-check of test/support/gen_mirror.py's realistic rain model: message sizes against real ones and decoded
# values (no server needed; about 20 s).
.PHONY: check-gen
check-gen:
	/usr/bin/python3 test/support/gen_mirror.py --self-check --jobs 1
