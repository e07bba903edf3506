/*
 * Decoding in helper processes: every ecCodes call on fetched bytes runs in a pg_gik_decoder
 * process of this backend (at most gik.decode_threads of them), never in the backend itself.
 */
#ifndef GIK_DECODER_POOL_H
#define GIK_DECODER_POOL_H

#include "postgres.h"

#include "utils/array.h"

#include "core/decoder_protocol.h"

typedef struct GikDecoderClient GikDecoderClient;

/* One message to decode or describe, and its result. */
typedef struct GikDecodeJob
{
	/* set by the caller */
	const char *url;			/* the message, for errors: url and byte range */
	int64		offset;
	int64		length;
	const unsigned char *msg;	/* its bytes (length of them), framing checked; kept until the job is done */
	GikDecoderOp op;
	GikDecodeOptions opts;		/* GIK_DECODER_DECODE */
	void	   *arg;			/* the caller's */

	/* results, once done */
	bool		done;
	GikDecodeStatus status;
	char		errbuf[GIK_DECODER_ERR_MAX];
	GikDecoded	dec;			/* DECODE: layout */
	ArrayType  *values;			/* DECODE: real[] in the client's memory context */
	GikMeta		meta;			/* META */

	/* the pool's */
	GikDecoderClient *client;
	uint64		points;			/* from the message's own structure */
	uint64		capacity;		/* values room asked for */
	uint64		msg_offset;		/* where it lies in its decoder's region */
	uint64		out_offset;
} GikDecodeJob;

/*
 * A set of jobs of one caller, in the current memory context. When that context goes (the
 * call ends or fails), decoders still busy with its jobs are killed and replaced later.
 */
extern GikDecoderClient *gik_decoder_client_create(void);

/*
 * Queue a job. The message's structure is checked (gik_grib_shape; the decoder runs the full
 * gik_grib_sane) and its size held against gik.max_message_points and gik.max_call_decoded_size
 * here; a job that fails them is done at once with its status.
 */
extern void gik_decoder_submit(GikDecoderClient *client, GikDecodeJob *job);

/*
 * Drive the decoders until a job of this client is done and return it; NULL when none is
 * queued or running, or when timeout_ms (>= 0) passed first. Cancellable.
 */
extern GikDecodeJob *gik_decoder_next(GikDecoderClient *client, long timeout_ms);

/* The response pipes of busy decoders (at most max), for a caller that waits on other things too. */
extern int	gik_decoder_busy_fds(int *fds, int max);

/* Jobs of this client queued or running. */
extern int	gik_decoder_pending(GikDecoderClient *client);

/* Decode or describe one message and wait for it. */
extern void gik_decoder_run(GikDecodeJob *job);

/* What a decoder slot holds, for gik.decoders(). */
typedef struct GikDecoderInfo
{
	int			pid;			/* 0: not running */
	bool		busy;
	int			memory_limit_mb;
	uint64		region_bytes;
	GikDecoderHello hello;
} GikDecoderInfo;

/* Number of decoder slots (the largest gik.decode_threads), and one slot's state. */
extern int	gik_decoder_slots(void);
extern void gik_decoder_slot_info(int slot, GikDecoderInfo *info);

/*
 * Raise the error of a failed job (status not GIK_DECODE_OK) naming its URL and byte range:
 * the one place that maps decode statuses to SQLSTATEs.
 */
extern void gik_raise_decode_error(const GikDecodeJob *job) pg_attribute_noreturn();

#endif
