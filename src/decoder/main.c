/*
 * pg_gik_decoder: decodes GRIB messages for one backend in a process of its own, so that a
 * crash or a runaway allocation in ecCodes or a codec under it (OpenJPEG, libaec, libpng)
 * ends this process and never the server. The backend starts it (see decoder_pool.c) with
 * requests on stdin, responses on stdout and the shared region on descriptor 3, then it
 * locks itself down (sandbox.c) before it reads a single message.
 * Usage: pg_gik_decoder --memory-limit MB [--selftest WHAT [ARG]]
 */
#include <eccodes.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/decoder_protocol.h"
#include "decoder/decode.h"
#include "decoder/eccodes_log.h"
#include "decoder/eccodes_meta.h"
#include "decoder/sandbox.h"

_Static_assert(sizeof(GikDecoderResponse) + GIK_DECODER_LOG_MAX <= 4096,
			   "a response and its log must fit in one atomic pipe write");

static unsigned char *shm = NULL;
static size_t shm_size = 0;

/* The allocation-failure flag in the shared region (a dummy before it is mapped). */
static GikDecoderShmHeader *
shm_header(void)
{
	static GikDecoderShmHeader dummy;

	return shm ? (GikDecoderShmHeader *) shm : &dummy;
}

/* ecCodes allocators: what ecCodes' own do (its persistent memory comes zeroed), but a failure is flagged for the backend before anything can crash. */
static void *
flagged_malloc(const codes_context *c, size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (!p)
		shm_header()->alloc_failed = 1;
	return p;
}

static void *
flagged_calloc(const codes_context *c, size_t n)
{
	void	   *p = calloc(n ? n : 1, 1);

	if (!p)
		shm_header()->alloc_failed = 1;
	return p;
}

static void
flagged_free(const codes_context *c, void *p)
{
	free(p);
}

static void *
flagged_realloc(const codes_context *c, void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (!q)
		shm_header()->alloc_failed = 1;
	return q;
}

/* Read exactly n bytes; false at end of input or on error. */
static bool
read_exact(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0)
	{
		ssize_t		r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t) r;
	}
	return true;
}

/* Map the shared region at its new size; false when it cannot be mapped. */
static bool
map_shm(size_t size)
{
	void	   *p;

	if (size == shm_size)
		return true;
	if (shm)
		munmap(shm, shm_size);
	shm = NULL;
	shm_size = 0;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, GIK_DECODER_SHM_FD, 0);
	if (p == MAP_FAILED)
		return false;
	shm = p;
	shm_size = size;
	return true;
}

/* Carry out one request into rsp. */
static void
handle(const GikDecoderRequest *req, GikDecoderResponse *rsp)
{
	const unsigned char *msg;

	rsp->status = GIK_DECODE_CORRUPT;
	if (req->shm_size < GIK_DECODER_SHM_HEADER || !map_shm((size_t) req->shm_size))
	{
		snprintf(rsp->errbuf, sizeof(rsp->errbuf), "The decoder could not map its shared region of %llu bytes.",
				 (unsigned long long) req->shm_size);
		rsp->status = GIK_DECODE_OUT_OF_MEMORY;
		return;
	}
	if (req->msg_offset < GIK_DECODER_SHM_HEADER || req->msg_offset > shm_size || req->msg_len > shm_size - req->msg_offset)
	{
		snprintf(rsp->errbuf, sizeof(rsp->errbuf), "The request's message does not fit in the shared region.");
		return;
	}
	msg = shm + req->msg_offset;
	shm_header()->alloc_failed = 0;
	if (req->op == GIK_DECODER_META)
	{
		int			err = gik_meta_from_message(msg, (size_t) req->msg_len, &rsp->meta,
												rsp->errbuf, sizeof(rsp->errbuf));

		rsp->status = err == 0 ? GIK_DECODE_OK :
			err == CODES_NOT_IMPLEMENTED ? GIK_DECODE_UNSUPPORTED : GIK_DECODE_CORRUPT;
		return;
	}
	if (req->op != GIK_DECODER_DECODE || req->out_offset % sizeof(float) != 0 ||
		req->out_offset < GIK_DECODER_SHM_HEADER || req->out_offset > shm_size ||
		req->out_capacity > (shm_size - req->out_offset) / sizeof(float) ||
		(req->out_offset < req->msg_offset + req->msg_len &&
		 req->msg_offset < req->out_offset + req->out_capacity * sizeof(float)))
	{
		snprintf(rsp->errbuf, sizeof(rsp->errbuf), "The request is malformed.");
		return;
	}
	rsp->status = gik_decode_message(msg, (size_t) req->msg_len, &req->opts, &rsp->dec,
									 (float *) (shm + req->out_offset), (size_t) req->out_capacity,
									 rsp->errbuf, sizeof(rsp->errbuf));
	if (rsp->status == GIK_DECODE_CORRUPT && shm_header()->alloc_failed)
		rsp->status = GIK_DECODE_OUT_OF_MEMORY;
}

/* Serve requests until the backend closes the pipe. */
static int
serve(void)
{
	static char log[GIK_DECODER_LOG_MAX];
	GikDecoderRequest req;

	while (read_exact(STDIN_FILENO, &req, sizeof(req)))
	{
		static GikDecoderResponse rsp;
		struct iovec iov[2];

		if (req.magic != GIK_DECODER_MAGIC)
			return 2;
		memset(&rsp, 0, sizeof(rsp));
		rsp.magic = GIK_DECODER_MAGIC;
		rsp.id = req.id;
		handle(&req, &rsp);
		rsp.log_len = (uint32_t) gik_eccodes_log_take(log, sizeof(log));
		iov[0].iov_base = &rsp;
		iov[0].iov_len = sizeof(rsp);
		iov[1].iov_base = log;
		iov[1].iov_len = rsp.log_len;
		if (writev(STDOUT_FILENO, iov, 2) != (ssize_t) (sizeof(rsp) + rsp.log_len))
			return 3;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	long		memory_mb = 0;
	const char *selftest = NULL;
	const char *selftest_arg = NULL;
	GikDecoderHello hello = {GIK_DECODER_MAGIC, GIK_DECODER_VERSION};
	GikSandboxReport report;
	codes_context *ctx;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--memory-limit") == 0 && i + 1 < argc)
			memory_mb = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--selftest") == 0 && i + 1 < argc)
		{
			selftest = argv[++i];
			if (i + 1 < argc)
				selftest_arg = argv[++i];
		}
		else
		{
			fprintf(stderr, "usage: %s --memory-limit MB [--selftest WHAT [ARG]]\n", argv[0]);
			return 2;
		}
	}
	/* die with the backend; a backend gone before this line is seen as a closed pipe */
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	ctx = codes_context_get_default();
	codes_context_set_memory_proc(ctx, flagged_malloc, flagged_free, flagged_realloc);
	codes_context_set_persistent_memory_proc(ctx, flagged_calloc, flagged_free);
	codes_context_set_buffer_memory_proc(ctx, flagged_malloc, flagged_free, flagged_realloc);
	gik_eccodes_log_init();
	/* ecCodes frees and allocates field-sized buffers per message: keep them in the heap for reuse */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);

	if (!gik_sandbox_enter((size_t) (memory_mb > 0 ? memory_mb : 0) * 1024 * 1024,
						   codes_definition_path(ctx), &report))
	{
		fprintf(stderr, "pg_gik_decoder: %s\n", report.detail);
		return 4;
	}
	if (selftest)
		return gik_sandbox_selftest(selftest, selftest_arg);
	hello.pid = (int32_t) getpid();
	hello.landlock_abi = report.landlock_abi;
	hello.seccomp = report.seccomp ? 1 : 0;
	snprintf(hello.detail, sizeof(hello.detail), "%s", report.detail);
	if (write(STDOUT_FILENO, &hello, sizeof(hello)) != (ssize_t) sizeof(hello))
		return 3;
	return serve();
}
