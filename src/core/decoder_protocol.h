/*
 * What the backend and its decoder processes (pg_gik_decoder) say to each other. A backend
 * starts each decoder with requests on its stdin, responses on its stdout and a shared memory
 * file on descriptor 3. The shared region starts with a header; the message to decode is
 * copied where the request says and the decoder writes the values where it says, so that the
 * backend can copy one result out while the decoder works on the next. Pipes carry only
 * these fixed-size records (and a bounded log text), so values are copied once: from the
 * region into the result. The backend trusts nothing a decoder says: it checks every size.
 */
#ifndef GIK_CORE_DECODER_PROTOCOL_H
#define GIK_CORE_DECODER_PROTOCOL_H

#include <stdint.h>

#include "core/decoded.h"

#define GIK_DECODER_MAGIC 0x474b4443u	/* "GKDC" */
#define GIK_DECODER_VERSION 2
#define GIK_DECODER_SHM_FD 3
#define GIK_DECODER_LOG_MAX 2048		/* most log text after a response */
#define GIK_DECODER_ERR_MAX 256
#define GIK_DECODER_SHM_HEADER 64		/* messages and values lie past it */

typedef enum GikDecoderOp
{
	GIK_DECODER_DECODE = 1,		/* values and layout */
	GIK_DECODER_META = 2		/* metadata with names (scan_grib, message_info, templates) */
} GikDecoderOp;

/* The start of the shared region, written by the decoder. */
typedef struct GikDecoderShmHeader
{
	volatile uint32_t alloc_failed;	/* an allocation failed since the last request */
} GikDecoderShmHeader;

/* Sent once, when a decoder has started and locked itself down. */
typedef struct GikDecoderHello
{
	uint32_t	magic;
	uint32_t	version;
	int32_t		pid;
	int32_t		landlock_abi;	/* Landlock ABI in force, 0 when the kernel has none */
	int32_t		seccomp;		/* 1 when the system call filter is in force */
	char		detail[200];	/* a sentence on what the sandbox allows */
} GikDecoderHello;

/* One request. */
typedef struct GikDecoderRequest
{
	uint32_t	magic;
	uint32_t	op;				/* GikDecoderOp */
	uint64_t	id;
	uint64_t	shm_size;		/* size of the shared region now (it only grows) */
	uint64_t	msg_offset;		/* the message: msg_len bytes at msg_offset */
	uint64_t	msg_len;
	uint64_t	out_offset;		/* float values go here (DECODE) */
	uint64_t	out_capacity;	/* room for this many values */
	GikDecodeOptions opts;
} GikDecoderRequest;

/* One response, followed by log_len bytes of ecCodes' messages. */
typedef struct GikDecoderResponse
{
	uint32_t	magic;
	uint32_t	status;			/* GikDecodeStatus */
	uint64_t	id;
	GikDecoded	dec;			/* DECODE: layout, dec.nvalues values written; NEED_SPACE: dec.nvalues needed */
	GikMeta		meta;			/* META */
	char		errbuf[GIK_DECODER_ERR_MAX];
	uint32_t	log_len;
} GikDecoderResponse;

#endif
