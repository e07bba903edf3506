/*
 * Unit tests of the decoder program (src/decoder) through the backend's process layer
 * (core/decoder_proc.c), without a server: values and metadata of every message of the real
 * files in test/data against ecCodes read here directly; a crash, a memory limit and a
 * request for more room; the sandbox refusing sockets, programs, writes and foreign files.
 */
#include "core/decoder_proc.h"
#include "core/grib_frame.h"
#include "core/grid.h"
#include "tap.h"

#include <eccodes.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GIK_DECODER_PATH
#define GIK_DECODER_PATH "../../src/decoder/pg_gik_decoder"
#endif

extern char **environ;

static const char *data_dir;
static GikDecoderProc proc;
static uint64_t next_id = 1;

/* Start the decoder with a memory limit; false (and a diagnostic) when it does not start. */
static bool
start(long memory_mb)
{
	char		err[256];
	int			rc = gik_decoder_proc_start(&proc, GIK_DECODER_PATH, memory_mb, 1 << 20, 10000, err, sizeof(err));

	if (rc != 0)
		tap_diag("decoder did not start: %s", err);
	return rc == 0;
}

/* Send one request for msg and wait for the answer; returns 1, or -1 when the decoder died. */
static int
ask(GikDecoderOp op, const void *msg, size_t len, const GikDecodeOptions *opts, uint64_t capacity,
	GikDecoderResponse *rsp)
{
	GikDecoderRequest req = {0};
	char		log[GIK_DECODER_LOG_MAX + 1];
	uint64_t	out = GIK_DECODER_SHM_HEADER + ((len + 7) & ~(size_t) 7);

	if (!gik_decoder_proc_grow(&proc, (size_t) (out + capacity * sizeof(float))))
		return -1;
	memcpy(proc.shm + GIK_DECODER_SHM_HEADER, msg, len);
	req.magic = GIK_DECODER_MAGIC;
	req.op = op;
	req.id = next_id++;
	req.shm_size = proc.shm_size;
	req.msg_offset = GIK_DECODER_SHM_HEADER;
	req.msg_len = len;
	req.out_offset = out;
	req.out_capacity = capacity;
	if (opts)
		req.opts = *opts;
	if (!gik_decoder_proc_send(&proc, &req))
		return -1;
	for (;;)
	{
		struct pollfd pfd = {proc.from_fd, POLLIN, 0};
		int			r;

		poll(&pfd, 1, 30000);
		r = gik_decoder_proc_receive(&proc, rsp, log, sizeof(log));
		if (r != 0)
			return r;
	}
}

/* The decoded values of the last request. */
static const float *
values_of(size_t len)
{
	return (const float *) (proc.shm + GIK_DECODER_SHM_HEADER + ((len + 7) & ~(size_t) 7));
}

/* Compare one message decoded by the decoder with ecCodes here. */
static void
check_message(const char *label, const unsigned char *msg, size_t len)
{
	codes_handle *h = codes_handle_new_from_message(NULL, msg, len);
	GikDecoderResponse rsp;
	double	   *raw;
	size_t		n = 0;
	long		mode = 0;
	char		short_name[64] = "";
	size_t		slen = sizeof(short_name);
	bool		same = true;
	double		sum_raw = 0;
	double		sum_dec = 0;
	size_t		nan_raw = 0;
	size_t		nan_dec = 0;

	if (!h)
	{
		tap_ok(false, "%s: ecCodes reads the message", label);
		return;
	}
	codes_set_double(h, "missingValue", NAN);
	codes_get_size(h, "values", &n);
	codes_get_long(h, "scanningMode", &mode);
	codes_get_string(h, "shortName", short_name, &slen);
	raw = malloc(sizeof(double) * (n ? n : 1));
	codes_get_double_array(h, "values", raw, &n);

	tap_ok(ask(GIK_DECODER_META, msg, len, NULL, 0, &rsp) == 1 && rsp.status == GIK_DECODE_OK &&
		   strcmp(rsp.meta.short_name, short_name) == 0,
		   "%s: metadata names %s as ecCodes does (got %s)", label, short_name, rsp.meta.short_name);
	tap_ok(ask(GIK_DECODER_DECODE, msg, len, NULL, 1, &rsp) == 1 && rsp.status == GIK_DECODE_NEED_SPACE &&
		   rsp.dec.nvalues == n, "%s: with room for one value it asks for %zu", label, n);
	if (ask(GIK_DECODER_DECODE, msg, len, NULL, n, &rsp) != 1 || rsp.status != GIK_DECODE_OK)
	{
		tap_ok(false, "%s: decodes (status %u: %s)", label, rsp.status, rsp.errbuf);
		free(raw);
		codes_handle_delete(h);
		return;
	}
	for (size_t i = 0; i < n; i++)
	{
		float		v = values_of(len)[i];

		if (isnan(raw[i]))
			nan_raw++;
		else
			sum_raw += raw[i];
		if (isnan(v))
			nan_dec++;
		else
			sum_dec += v;
		if (mode == 0 && !(v == (float) raw[i] || (isnan(v) && isnan(raw[i]))))
			same = false;
	}
	tap_is_int((int64_t) rsp.dec.nvalues, (int64_t) n, "%s: %zu values", label, n);
	if (mode == 0)
		tap_ok(same, "%s: every value equals ecCodes' (north-up already)", label);
	else
		tap_ok(nan_raw == nan_dec && fabs(sum_raw - sum_dec) <= 1e-4 * (fabs(sum_raw) + 1),
			   "%s: the values are ecCodes' reordered (scanning mode %ld)", label, mode);
	free(raw);
	codes_handle_delete(h);
}

/* Every message of a real file. */
static void
check_file(const char *relpath)
{
	size_t		len;
	const unsigned char *buf = (const unsigned char *) test_read_file(data_dir, relpath, &len);
	uint64_t	off;
	uint64_t	mlen;
	size_t		pos = 0;
	int			k = 0;

	if (!buf)
	{
		tap_ok(false, "%s is readable", relpath);
		return;
	}
	while (gik_grib_next(buf, len, pos, &off, &mlen))
	{
		char		label[200];

		snprintf(label, sizeof(label), "%s message %d", relpath, ++k);
		check_message(label, buf + off, (size_t) mlen);
		pos = (size_t) (off + mlen);
	}
	test_alloc_reset();
}

/* A region and a longitude convention give the planner's grid, filled from ecCodes' values. */
static void
check_region(void)
{
	size_t		len;
	const unsigned char *msg = (const unsigned char *) test_read_file(data_dir, "grib-rs/gdas.t12z.pgrb2.0p25.f000.12", &len);
	codes_handle *h = msg ? codes_handle_new_from_message(NULL, msg, len) : NULL;
	GikDecodeOptions opts = {GIK_LON_180, true, {21, -12, 53, 23}};
	GikDecoderResponse rsp;
	GikGrid		g = {0};
	GikGridPlan plan;
	char		err[200];
	double	   *raw;
	float	   *expect;
	size_t		n = 0;
	size_t		slen = sizeof(g.grid_type);
	bool		same = true;
	int			r;

	if (!h)
	{
		tap_ok(false, "the GDAS message is readable");
		return;
	}
	codes_get_string(h, "gridType", g.grid_type, &slen);
	codes_get_long(h, "Ni", &g.ni);
	codes_get_long(h, "Nj", &g.nj);
	codes_get_double(h, "latitudeOfFirstGridPointInDegrees", &g.lat_first);
	codes_get_double(h, "longitudeOfFirstGridPointInDegrees", &g.lon_first);
	codes_get_double(h, "latitudeOfLastGridPointInDegrees", &g.lat_last);
	codes_get_double(h, "longitudeOfLastGridPointInDegrees", &g.lon_last);
	codes_get_double(h, "iDirectionIncrementInDegrees", &g.di);
	codes_get_double(h, "jDirectionIncrementInDegrees", &g.dj);
	g.num_points = g.ni * g.nj;
	codes_get_size(h, "values", &n);
	raw = malloc(sizeof(double) * n);
	codes_get_double_array(h, "values", raw, &n);
	if (!gik_grid_plan(&g, opts.lon, &opts.box, test_alloc, &plan, err, sizeof(err)))
	{
		tap_ok(false, "East Africa plans on the GDAS grid: %s", err);
		return;
	}
	expect = malloc(sizeof(float) * plan.out.ni * plan.out.nj);
	gik_grid_apply(&plan, raw, n, NAN, expect);
	r = ask(GIK_DECODER_DECODE, msg, len, &opts, n, &rsp);
	tap_ok(r == 1 && rsp.status == GIK_DECODE_OK && rsp.dec.regular &&
		   rsp.dec.out.ni == plan.out.ni && rsp.dec.out.nj == plan.out.nj,
		   "East Africa on GDAS 0.25: %ld x %ld cells (got %ld x %ld)", plan.out.ni, plan.out.nj,
		   rsp.dec.out.ni, rsp.dec.out.nj);
	for (long i = 0; i < plan.out.ni * plan.out.nj && rsp.status == GIK_DECODE_OK; i++)
		if (values_of(len)[i] != expect[i])
			same = false;
	tap_ok(same, "East Africa on GDAS 0.25: every cell holds ecCodes' value");
	opts.box = (GikBox) {10.05, 10.05, 10.1, 10.1};
	r = ask(GIK_DECODER_DECODE, msg, len, &opts, n, &rsp);
	tap_ok(r == 1 && rsp.status == GIK_DECODE_BAD_REGION, "a box with no cell centre is a bad region (status %u: %s)",
		   rsp.status, rsp.errbuf);
	free(raw);
	free(expect);
	codes_handle_delete(h);
	test_alloc_reset();
}

/* A GRIB2 message of ni x nj points with a constant field (0 bits per value): a few hundred bytes. */
static unsigned char *
constant_message(long ni, long nj, size_t *len)
{
	codes_handle *h = codes_grib_handle_new_from_samples(NULL, "GRIB2");
	const void *bytes;
	unsigned char *copy;
	double	   *v;

	codes_set_long(h, "Ni", ni);
	codes_set_long(h, "Nj", nj);
	codes_set_double(h, "iDirectionIncrementInDegrees", 360.0 / ni);
	codes_set_double(h, "jDirectionIncrementInDegrees", 180.0 / (nj - 1));
	codes_set_double(h, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / ni);
	codes_set_double(h, "latitudeOfFirstGridPointInDegrees", 90);
	codes_set_double(h, "latitudeOfLastGridPointInDegrees", -90);
	v = calloc((size_t) (ni * nj), sizeof(double));
	codes_set_double_array(h, "values", v, (size_t) (ni * nj));
	free(v);
	codes_get_message(h, &bytes, len);
	copy = malloc(*len);
	memcpy(copy, bytes, *len);
	codes_handle_delete(h);
	return copy;
}

/* A crash kills the decoder, not its parent; a memory limit fails the message. */
static void
check_failures(void)
{
	size_t		len;
	const unsigned char *bad = (const unsigned char *) test_read_file(data_dir, "../fuzz/known/decode/jpeg2000-openjpeg-invalid-free", &len);
	GikDecoderResponse rsp;
	int			wstatus = 0;
	unsigned char *bomb;
	size_t		bomb_len;

	if (bad)
	{
		uint64_t	off = 0;
		uint64_t	mlen = len;

		/* fuzz inputs are framed as in test/fuzz/fuzz_grib.h: take the message inside */
		if (gik_grib_next(bad, len, 0, &off, &mlen))
		{
			int			r = ask(GIK_DECODER_DECODE, bad + off, (size_t) mlen, NULL, 1 << 20, &rsp);
			char		how[96];

			if (r < 0)
			{
				gik_decoder_proc_kill(&proc, &wstatus);
				gik_decoder_exit_text(wstatus, how, sizeof(how));
				tap_ok(WIFSIGNALED(wstatus), "corrupt JPEG 2000: the decoder %s; this process goes on", how);
			}
			else
				tap_ok(rsp.status != GIK_DECODE_OK, "corrupt JPEG 2000: refused (%s)", rsp.errbuf);
		}
		else
			tap_ok(false, "the known JPEG 2000 input holds a framed message");
	}
	else
		tap_ok(false, "the known JPEG 2000 input is readable");
	if (proc.pid == 0 && !start(2048))
		return;
	check_file("gribberish/ecmwf-ifs-oper-surface.grib2");

	gik_decoder_proc_kill(&proc, NULL);
	if (!start(128))
		return;
	bomb = constant_message(5000, 5000, &bomb_len);
	tap_ok(bomb_len < 1000, "a 25-million-point constant field is %zu bytes", bomb_len);
	if (ask(GIK_DECODER_DECODE, bomb, bomb_len, NULL, 1, &rsp) == 1)
		tap_ok(rsp.status == GIK_DECODE_NEED_SPACE && rsp.dec.nvalues == 25000000,
			   "it asks for room for 25,000,000 values before decoding");
	else
		tap_ok(false, "the decoder answers a room check without decoding");
	gik_decoder_proc_grow(&proc, 100 * 1024 * 1024 + 4096);
	{
		int			r = ask(GIK_DECODER_DECODE, bomb, bomb_len, NULL, 25000000, &rsp);

		if (r < 0)
		{
			gik_decoder_proc_kill(&proc, &wstatus);
			tap_ok(true, "with 128 MB of address space it dies decoding it");
		}
		else
			tap_ok(rsp.status == GIK_DECODE_OUT_OF_MEMORY, "with 128 MB of address space it reports out of memory (status %u: %s)",
				   rsp.status, rsp.errbuf);
	}
	free(bomb);
	gik_decoder_proc_kill(&proc, NULL);
	test_alloc_reset();
}

/* Run a self-test of the sandbox; the wait status. */
static int
selftest(const char *what, const char *arg)
{
	char	   *argv[] = {GIK_DECODER_PATH, "--memory-limit", "256", "--selftest", (char *) what, (char *) arg, NULL};
	posix_spawn_file_actions_t fa;
	pid_t		pid;
	int			status = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0)
		waitpid(pid, &status, 0);
	posix_spawn_file_actions_destroy(&fa);
	return status;
}

/* What the sandbox lets a decoder do. */
static void
check_sandbox(void)
{
	char		path[300];
	int			s;

	snprintf(path, sizeof(path), "/tmp/pg_gik_decoder_selftest_%d", (int) getpid());
	s = selftest("socket", NULL);
	tap_ok(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS, "a socket kills the decoder (SIGSYS)");
	s = selftest("exec", NULL);
	tap_ok(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS, "running a program kills the decoder");
	s = selftest("fork", NULL);
	tap_ok(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS, "starting a process kills the decoder");
	s = selftest("kill-parent", NULL);
	tap_ok(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS, "signalling another process kills the decoder");
	s = selftest("mmap-exec", NULL);
	tap_ok(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS, "executable memory kills the decoder");
	s = selftest("write-file", path);
	tap_ok(WIFEXITED(s) && WEXITSTATUS(s) == 0 && access(path, F_OK) != 0, "a file cannot be created");
	s = selftest("alloc", "512");
	tap_ok(WIFEXITED(s) && WEXITSTATUS(s) == 0, "512 MB cannot be allocated under a 256 MB limit");
	s = selftest("alloc", "64");
	tap_ok(WIFEXITED(s) && WEXITSTATUS(s) == 1, "64 MB can");
	s = selftest("read-file", codes_definition_path(NULL));
	if (proc.hello.landlock_abi > 0)
	{
		s = selftest("read-file", "/etc/passwd");
		tap_ok(WIFEXITED(s) && WEXITSTATUS(s) == 0, "with Landlock, /etc/passwd cannot be read");
	}
	else
		tap_diag("no Landlock in this kernel: files outside the definitions stay readable");
}

int
main(int argc, char **argv)
{
	data_dir = test_data_dir(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (!start(2048))
	{
		tap_ok(false, "the decoder starts");
		return tap_done();
	}
	tap_ok(proc.hello.seccomp == 1, "the decoder says its seccomp filter is on: %s", proc.hello.detail);
	tap_diag("Landlock ABI %d", proc.hello.landlock_abi);
	check_file("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2");
	check_file("gribberish/ecmwf-ifs-oper-surface.grib2");
	check_file("grib-rs/20240101000000-0h-oper-fc.grib2.0-10");
	check_file("grib-rs/gdas.t12z.pgrb2.0p25.f000.12");
	check_file("kerchunk/gec00_20250101_00_soilw.grib");
	check_file("generated/lambert.grib2");
	check_file("generated/scan_ineg_jpos.grib2");
	check_region();
	check_sandbox();
	check_failures();
	gik_decoder_proc_kill(&proc, NULL);
	return tap_done();
}
