/* Starting a decoder process and talking to it (see decoder_protocol.h): pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_DECODER_PROC_H
#define GIK_CORE_DECODER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/decoder_protocol.h"

/* One running decoder. */
typedef struct GikDecoderProc
{
	pid_t		pid;			/* 0 when not running */
	int			to_fd;			/* requests */
	int			from_fd;		/* responses (non-blocking) */
	int			shm_fd;
	unsigned char *shm;			/* the shared region, shm_size bytes */
	size_t		shm_size;
	GikDecoderHello hello;
	unsigned char rbuf[sizeof(GikDecoderResponse) + GIK_DECODER_LOG_MAX];
	size_t		rlen;			/* bytes of the current response received */
} GikDecoderProc;

/*
 * Start path with a shared region of shm_size bytes (sealed against shrinking), requests
 * and responses on pipes, no other descriptor, signals at their defaults, and an
 * environment of only the ECCODES_* variables; wait up to timeout_ms for its hello.
 * Returns 0, or an errno value (ENOENT: no such program) with a sentence in err.
 */
extern int	gik_decoder_proc_start(GikDecoderProc *p, const char *path, long memory_limit_mb,
								   size_t shm_size, int timeout_ms, char *err, size_t errlen);

/* Grow the shared region to at least size bytes; false when the memory cannot be had. */
extern bool gik_decoder_proc_grow(GikDecoderProc *p, size_t size);

/* Give back the pages of the region past keep bytes (its size stays). */
extern void gik_decoder_proc_trim(GikDecoderProc *p, size_t keep);

/* Send one request; false when the decoder is gone. */
extern bool gik_decoder_proc_send(GikDecoderProc *p, const GikDecoderRequest *req);

/*
 * Read what the decoder has sent without waiting. Returns 1 when a whole response is in
 * *rsp (its log, NUL-terminated, in log[0..logcap)), 0 when it is not complete yet, -1 when
 * the decoder closed its end or broke the protocol (kill and reap it).
 */
extern int	gik_decoder_proc_receive(GikDecoderProc *p, GikDecoderResponse *rsp, char *log, size_t logcap);

/* Kill (SIGKILL) and reap a decoder, close its descriptors and unmap its region; *wstatus (may be NULL) gets its wait status. */
extern void gik_decoder_proc_kill(GikDecoderProc *p, int *wstatus);

/* "exited with code N" or "was killed by signal N (name)" for a wait status. */
extern void gik_decoder_exit_text(int wstatus, char *buf, size_t len);

#endif
