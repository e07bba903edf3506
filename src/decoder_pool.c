/*
 * The backend's decoder processes. Each is a pg_gik_decoder started from pkglibdir, kept
 * between calls, and replaced when it dies, runs past gik.decoder_timeout or is busy when
 * its caller ends. Jobs queue per caller (client); a free decoder takes the next job, its
 * message is copied into the decoder's shared region and the values come back there, to be
 * copied once into a real[] in the caller's memory. Everything a decoder reports is checked
 * before it is believed.
 */
#include "postgres.h"

#include <poll.h>
#include <sys/wait.h>

#include "lib/ilist.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "core/decoder_proc.h"
#include "core/grib_sanity.h"
#include "datums.h"
#include "decoder_pool.h"
#include "pg_gik.h"

#define MAX_DECODERS 64			/* the largest gik.decode_threads */
#define INITIAL_REGION (8 * 1024 * 1024)
#define KEEP_REGION (16 * 1024 * 1024)	/* pages past this are given back when a caller ends */
#define HELLO_TIMEOUT_MS 10000
#define POLL_SLICE_MS 50		/* how often a wait checks for cancel */

/* One decoder process slot. */
typedef struct Decoder
{
	GikDecoderProc proc;		/* proc.pid == 0: not running */
	GikDecodeJob *job;			/* in flight, or NULL */
	uint64		held_from;		/* bytes [held_from, held_to) of the region hold a result not yet copied out */
	uint64		held_to;
	GikDecoderClient *client;	/* the job's client (the job's memory may already be gone) */
	TimestampTz started;
	uint64		request_id;
	int			memory_limit_mb;	/* what it was started with */
} Decoder;

/* A growable ring of job pointers. */
typedef struct JobRing
{
	GikDecodeJob **items;
	int			head;
	int			count;
	int			cap;
} JobRing;

struct GikDecoderClient
{
	dlist_node	node;			/* in the list of live clients */
	MemoryContext cxt;
	JobRing		queued;			/* waiting for a decoder */
	JobRing		done;			/* finished, not yet returned */
	int			running;
	uint64		decoded_bytes;	/* values produced for this client */
	MemoryContextCallback cleanup;
};

static Decoder decoders[MAX_DECODERS];
static dlist_head clients = DLIST_STATIC_INIT(clients);
static bool exit_hook_installed = false;
static uint64 next_request_id = 1;

/* Append to a ring, growing it in cxt. */
static void
ring_push(JobRing *r, MemoryContext cxt, GikDecodeJob *job)
{
	if (r->count == r->cap)
	{
		int			newcap = Max(16, r->cap * 2);
		GikDecodeJob **items = MemoryContextAlloc(cxt, sizeof(GikDecodeJob *) * newcap);

		for (int i = 0; i < r->count; i++)
			items[i] = r->items[(r->head + i) % r->cap];
		if (r->items)
			pfree(r->items);
		r->items = items;
		r->head = 0;
		r->cap = newcap;
	}
	r->items[(r->head + r->count) % r->cap] = job;
	r->count++;
}

/* Take the first job of a ring, or NULL. */
static GikDecodeJob *
ring_pop(JobRing *r)
{
	GikDecodeJob *job;

	if (r->count == 0)
		return NULL;
	job = r->items[r->head];
	r->head = (r->head + 1) % r->cap;
	r->count--;
	return job;
}

/* Put a job back at the front of a ring. */
static void
ring_unpop(JobRing *r, MemoryContext cxt, GikDecodeJob *job)
{
	ring_push(r, cxt, job);		/* makes room */
	r->count--;
	r->head = (r->head + r->cap - 1) % r->cap;
	r->items[r->head] = job;
	r->count++;
}

/* Full path of the decoder program. */
static const char *
decoder_path(void)
{
	static char path[MAXPGPATH];

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "%s/pg_gik_decoder", pkglib_path);
	return path;
}

/* Kill a decoder, if running; its wait status, if wanted, in *wstatus. */
static void
stop_decoder(Decoder *d, int *wstatus)
{
	gik_decoder_proc_kill(&d->proc, wstatus);
	d->job = NULL;
	d->client = NULL;
	d->held_from = d->held_to = 0;
}

/* Kill every decoder when the backend exits. */
static void
stop_all_decoders(int code, Datum arg)
{
	for (int i = 0; i < MAX_DECODERS; i++)
		stop_decoder(&decoders[i], NULL);
}

/* Start a decoder process; raises when the program cannot be started. */
static void
start_decoder(Decoder *d)
{
	char		err[256];
	int			rc;

	if (!exit_hook_installed)
	{
		on_proc_exit(stop_all_decoders, (Datum) 0);
		exit_hook_installed = true;
	}
	rc = gik_decoder_proc_start(&d->proc, decoder_path(), gik_decoder_memory_limit_mb,
								INITIAL_REGION, HELLO_TIMEOUT_MS, err, sizeof(err));
	if (rc != 0)
		ereport(ERROR, (errcode(rc == ENOENT ? ERRCODE_UNDEFINED_FILE : ERRCODE_SYSTEM_ERROR),
						errmsg("could not start the pg_gik decoder \"%s\"", decoder_path()),
						errdetail("%s", err),
						rc == ENOENT ? errhint("Reinstall pg_gik: the decoder program is installed with the extension.") : 0));
	d->memory_limit_mb = gik_decoder_memory_limit_mb;
	elog(DEBUG1, "pg_gik decoder %d started: %s", (int) d->proc.pid, d->proc.hello.detail);
}

/* Mark a job done with a status and a sentence, and hand it to its client. */
static void
finish_job(GikDecodeJob *job, GikDecodeStatus status, const char *why)
{
	job->done = true;
	job->status = status;
	if (why != job->errbuf)
		strlcpy(job->errbuf, why ? why : "", sizeof(job->errbuf));
	ring_push(&job->client->done, job->client->cxt, job);
}

/*
 * Where a job goes in a decoder's region: its message, then its values, below the result the
 * backend has yet to copy out when they fit there, else after it. Sets the job's offsets.
 */
static void
place_job(const Decoder *d, GikDecodeJob *job)
{
	uint64		size = TYPEALIGN(8, (uint64) job->length) + job->capacity * sizeof(float);
	uint64		start = GIK_DECODER_SHM_HEADER;

	if (d->held_to > d->held_from && start + size > d->held_from)
		start = TYPEALIGN(8, d->held_to);
	job->msg_offset = start;
	job->out_offset = start + TYPEALIGN(8, (uint64) job->length);
}

/* Why a job of this many values may not be decoded (gik.max_message_points, gik.max_call_decoded_size), or NULL. */
static const char *
over_limits(const GikDecodeJob *job, uint64 points)
{
	uint64		limit_bytes = (uint64) gik_max_call_decoded_mb * 1024 * 1024;

	if (points > (uint64) gik_max_message_points)
		return psprintf("It declares " UINT64_FORMAT " grid points, more than gik.max_message_points (%d).",
						points, gik_max_message_points);
	if (job->client->decoded_bytes + points * sizeof(float) > limit_bytes)
		return psprintf("Decoding it would take this call past gik.max_call_decoded_size (%d MB of values).",
						gik_max_call_decoded_mb);
	return NULL;
}

/*
 * Copy a job into a decoder's region and send it. Returns false when the decoder is gone;
 * when the region cannot grow, the job is finished with that error and true is returned.
 */
static bool
send_job(Decoder *d, GikDecodeJob *job)
{
	GikDecoderRequest req = {0};

	uint64		need;

	place_job(d, job);
	need = job->out_offset + job->capacity * sizeof(float);
	if (!gik_decoder_proc_grow(&d->proc, (size_t) need))
	{
		finish_job(job, GIK_DECODE_OUT_OF_MEMORY,
				   psprintf("The backend could not map %llu bytes of shared memory for the decoder.",
							(unsigned long long) need));
		return true;
	}
	memcpy(d->proc.shm + job->msg_offset, job->msg, (size_t) job->length);
	((GikDecoderShmHeader *) d->proc.shm)->alloc_failed = 0;
	req.magic = GIK_DECODER_MAGIC;
	req.op = job->op;
	req.id = d->request_id = next_request_id++;
	req.shm_size = d->proc.shm_size;
	req.msg_offset = job->msg_offset;
	req.msg_len = (uint64) job->length;
	req.out_offset = job->out_offset;
	req.out_capacity = job->capacity;
	req.opts = job->opts;
	if (!gik_decoder_proc_send(&d->proc, &req))
		return false;
	d->job = job;
	d->client = job->client;
	d->started = GetCurrentTimestamp();
	return true;
}

/* The next queued job of any client, taking clients in turn. */
static GikDecodeJob *
next_queued_job(void)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &clients)
	{
		GikDecoderClient *c = dlist_container(GikDecoderClient, node, it.cur);
		GikDecodeJob *job = ring_pop(&c->queued);

		if (job)
		{
			/* this client goes to the end, so the next job comes from another */
			dlist_delete(&c->node);
			dlist_push_tail(&clients, &c->node);
			return job;
		}
	}
	return NULL;
}

/* Give queued jobs to idle decoders, starting decoders as needed (up to gik.decode_threads). */
static void
dispatch(void)
{
	for (int i = 0; i < MAX_DECODERS; i++)
	{
		Decoder    *d = &decoders[i];
		GikDecodeJob *job;
		bool		sent;

		if (d->job)
			continue;
		if (i >= gik_decode_threads)
		{
			if (d->proc.pid > 0)
				stop_decoder(d, NULL);	/* gik.decode_threads went down */
			continue;
		}
		if (d->proc.pid > 0 && d->memory_limit_mb != gik_decoder_memory_limit_mb)
			stop_decoder(d, NULL);	/* gik.decoder_memory_limit changed */
		if ((job = next_queued_job()) == NULL)
			return;
		if (d->proc.pid == 0)
			start_decoder(d);
		sent = send_job(d, job);
		if (!sent)
		{
			/* it died while idle: once more with a new one */
			stop_decoder(d, NULL);
			start_decoder(d);
			sent = send_job(d, job);
		}
		if (!sent)
		{
			stop_decoder(d, NULL);
			finish_job(job, GIK_DECODE_CRASHED, "The decoder process died before it read the message.");
		}
		else if (d->job == job)
			job->client->running++;
	}
}

/*
 * Give the next queued job to a decoder whose last result is still in its region. If the send
 * fails the job goes back to its queue: the decoder is found dead, and replaced, once the result
 * is copied out.
 */
static void
dispatch_beside_result(Decoder *d)
{
	GikDecodeJob *job;

	if (d - decoders >= gik_decode_threads || d->memory_limit_mb != gik_decoder_memory_limit_mb ||
		(job = next_queued_job()) == NULL)
		return;
	if (!send_job(d, job))
		ring_unpop(&job->client->queued, job->client->cxt, job);
	else if (d->job == job)
		job->client->running++;
}

/* Finish a decoder's job with a failure, kill the decoder (it is replaced later). */
static void
fail_decoder(Decoder *d, GikDecodeStatus status, const char *why)
{
	GikDecodeJob *job = d->job;
	bool		alloc_failed = d->proc.shm && ((GikDecoderShmHeader *) d->proc.shm)->alloc_failed;
	int			wstatus = 0;
	char		how[96];

	stop_decoder(d, &wstatus);
	job->client->running--;
	if (status != GIK_DECODE_CRASHED)
	{
		finish_job(job, status, why);
		return;
	}
	gik_decoder_exit_text(wstatus, how, sizeof(how));
	if (alloc_failed)
		finish_job(job, GIK_DECODE_OUT_OF_MEMORY,
				   psprintf("The decoder process ran out of memory (gik.decoder_memory_limit is %d MB) and %s.",
							gik_decoder_memory_limit_mb, how));
	else
		finish_job(job, GIK_DECODE_CRASHED,
				   psprintf("The decoder process %s while %s the message%s; the message is probably corrupt. "
							"The server is unaffected and a new decoder is started for the next message.",
							how, job->op == GIK_DECODER_META ? "reading" : "decoding", why ? why : ""));
}

/* Check a decoder's layout of a decoded message against what was asked; NULL when sound. */
static const char *
layout_problem(const GikDecodeJob *job, const GikDecoded *dec)
{
	if (dec->nvalues > job->capacity)
		return " (it reported more values than it had room for)";
	if (dec->regular &&
		(dec->out.ni <= 0 || dec->out.nj <= 0 || (uint64) dec->out.ni * (uint64) dec->out.nj != dec->nvalues))
		return " (its grid does not match its values)";
	return NULL;
}

/* Terminate the strings of a reported metadata record. */
static void
terminate_meta(GikMeta *m)
{
	m->short_name[sizeof(m->short_name) - 1] = '\0';
	m->name[sizeof(m->name) - 1] = '\0';
	m->units[sizeof(m->units) - 1] = '\0';
	m->type_of_level[sizeof(m->type_of_level) - 1] = '\0';
	m->step_range[sizeof(m->step_range) - 1] = '\0';
	m->step_type[sizeof(m->step_type) - 1] = '\0';
	m->packing_type[sizeof(m->packing_type) - 1] = '\0';
	m->grid.grid_type[sizeof(m->grid.grid_type) - 1] = '\0';
}

/* A decoder answered that the values need more room: check the limits and ask again. */
static void
grow_and_resend(Decoder *d, uint64 nvalues)
{
	GikDecodeJob *job = d->job;
	const char *why;

	if (nvalues <= job->capacity)
	{
		fail_decoder(d, GIK_DECODE_CRASHED, " (it asked for room it had)");
		return;
	}
	if ((why = over_limits(job, nvalues)) != NULL)
	{
		d->job = NULL;
		d->client = NULL;
		job->client->running--;
		finish_job(job, GIK_DECODE_TOO_LARGE, why);
		return;
	}
	job->capacity = nvalues;
	d->job = NULL;
	d->client = NULL;
	if (!send_job(d, job))
	{
		d->job = job;
		fail_decoder(d, GIK_DECODE_CRASHED, NULL);
	}
	else if (d->job != job)
		job->client->running--;	/* finished: no room for it */
}

/* Act on a decoder's response. */
static void
take_response(Decoder *d, GikDecoderResponse *rsp, const char *log)
{
	GikDecodeJob *job = d->job;
	GikDecoderClient *client = job->client;
	const char *problem;
	MemoryContext old;

	rsp->errbuf[sizeof(rsp->errbuf) - 1] = '\0';
	if (log[0])
		elog(DEBUG1, "ecCodes on bytes " INT64_FORMAT "-" INT64_FORMAT " of \"%s\": %s",
			 job->offset, job->offset + job->length - 1, job->url, log);
	if (rsp->id != d->request_id || rsp->status > GIK_DECODE_TIMEOUT)
	{
		fail_decoder(d, GIK_DECODE_CRASHED, " (it broke the protocol)");
		return;
	}
	if (rsp->status == GIK_DECODE_NEED_SPACE && job->op == GIK_DECODER_DECODE)
	{
		grow_and_resend(d, rsp->dec.nvalues);
		return;
	}
	if (rsp->status == GIK_DECODE_OK && job->op == GIK_DECODER_DECODE &&
		(problem = layout_problem(job, &rsp->dec)) != NULL)
	{
		fail_decoder(d, GIK_DECODE_CRASHED, problem);
		return;
	}
	d->job = NULL;
	d->client = NULL;
	client->running--;
	if (rsp->status != GIK_DECODE_OK)
	{
		finish_job(job, (GikDecodeStatus) rsp->status,
				   rsp->errbuf[0] ? rsp->errbuf : "The decoder gave no reason.");
		return;
	}
	if (job->op == GIK_DECODER_META)
	{
		job->meta = rsp->meta;
		terminate_meta(&job->meta);
		finish_job(job, GIK_DECODE_OK, NULL);
		return;
	}
	job->dec = rsp->dec;
	terminate_meta(&job->dec.meta);
	/* give the decoder its next job first, beside this result, then copy the result out */
	d->held_from = job->out_offset;
	d->held_to = job->out_offset + job->dec.nvalues * sizeof(float);
	dispatch_beside_result(d);
	old = MemoryContextSwitchTo(client->cxt);
	job->values = gik_float_array((const float *) (d->proc.shm + job->out_offset), job->dec.nvalues,
								  job->dec.regular ? job->dec.out.nj : job->dec.meta.grid.nj,
								  job->dec.regular ? job->dec.out.ni : job->dec.meta.grid.ni);
	MemoryContextSwitchTo(old);
	d->held_from = d->held_to = 0;
	client->decoded_bytes += job->dec.nvalues * sizeof(float);
	finish_job(job, GIK_DECODE_OK, NULL);
}

/* Milliseconds a busy decoder has left before gik.decoder_timeout. */
static long
ms_left(const Decoder *d, TimestampTz now)
{
	return gik_decoder_timeout_ms - TimestampDifferenceMilliseconds(d->started, now);
}

/* Wait up to wait_ms for busy decoders to answer, and take what they say. */
static void
collect(long wait_ms)
{
	struct pollfd fds[MAX_DECODERS];
	int			which[MAX_DECODERS];
	int			n = 0;
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < MAX_DECODERS; i++)
		if (decoders[i].job)
		{
			fds[n].fd = decoders[i].proc.from_fd;
			fds[n].events = POLLIN;
			fds[n].revents = 0;
			which[n++] = i;
			wait_ms = Min(wait_ms, Max(0, ms_left(&decoders[i], now)));
		}
	if (n == 0)
		return;
	if (poll(fds, n, (int) Min(wait_ms, POLL_SLICE_MS)) < 0 && errno != EINTR)
		elog(ERROR, "poll on decoder pipes failed: %m");
	now = GetCurrentTimestamp();
	for (int k = 0; k < n; k++)
	{
		Decoder    *d = &decoders[which[k]];
		GikDecoderResponse rsp;
		char		log[GIK_DECODER_LOG_MAX + 1];
		int			r;

		if (fds[k].revents == 0)
		{
			if (ms_left(d, now) <= 0)
				fail_decoder(d, GIK_DECODE_TIMEOUT,
							 psprintf("The decoder took longer than gik.decoder_timeout (%d ms) and was stopped.",
									  gik_decoder_timeout_ms));
			continue;
		}
		r = gik_decoder_proc_receive(&d->proc, &rsp, log, sizeof(log));
		if (r > 0)
			take_response(d, &rsp, log);
		else if (r < 0)
			fail_decoder(d, GIK_DECODE_CRASHED, NULL);
	}
}

/* Release a client: decoders still busy with its jobs are killed, big regions trimmed. */
static void
client_cleanup(void *arg)
{
	GikDecoderClient *client = (GikDecoderClient *) arg;

	for (int i = 0; i < MAX_DECODERS; i++)
	{
		Decoder    *d = &decoders[i];

		if (d->client == client)
			stop_decoder(d, NULL);
		else if (!d->job && d->proc.pid > 0 && d->proc.shm_size > KEEP_REGION)
			gik_decoder_proc_trim(&d->proc, KEEP_REGION);
	}
	dlist_delete(&client->node);
}

/* A new client; see decoder_pool.h. */
GikDecoderClient *
gik_decoder_client_create(void)
{
	GikDecoderClient *client = palloc0(sizeof(GikDecoderClient));

	client->cxt = CurrentMemoryContext;
	client->cleanup.func = client_cleanup;
	client->cleanup.arg = client;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &client->cleanup);
	dlist_push_tail(&clients, &client->node);
	return client;
}

/* Queue a job; see decoder_pool.h. */
void
gik_decoder_submit(GikDecoderClient *client, GikDecodeJob *job)
{
	GikGribShape shape = {0};
	const char *why;

	job->client = client;
	job->done = false;
	job->values = NULL;
	job->errbuf[0] = '\0';
	switch (gik_grib_shape(job->msg, (size_t) job->length, &shape, job->errbuf, sizeof(job->errbuf)))
	{
		case GIK_SANE_OK:
			break;
		case GIK_SANE_UNSUPPORTED:
			finish_job(job, GIK_DECODE_UNSUPPORTED, job->errbuf);
			return;
		default:
			finish_job(job, GIK_DECODE_CORRUPT, job->errbuf);
			return;
	}
	job->points = shape.points;
	job->capacity = job->op == GIK_DECODER_DECODE ? shape.points : 0;
	if (job->op == GIK_DECODER_DECODE && (why = over_limits(job, shape.points)) != NULL)
	{
		finish_job(job, GIK_DECODE_TOO_LARGE, why);
		return;
	}
	ring_push(&client->queued, client->cxt, job);
}

/* The response pipes of busy decoders. */
int
gik_decoder_busy_fds(int *fds, int max)
{
	int			n = 0;

	for (int i = 0; i < MAX_DECODERS && n < max; i++)
		if (decoders[i].job)
			fds[n++] = decoders[i].proc.from_fd;
	return n;
}

/* Jobs of a client queued or running. */
int
gik_decoder_pending(GikDecoderClient *client)
{
	return client->queued.count + client->running;
}

/* Drive the decoders until a job of this client is done; see decoder_pool.h. */
GikDecodeJob *
gik_decoder_next(GikDecoderClient *client, long timeout_ms)
{
	TimestampTz deadline = timeout_ms < 0 ? 0 : TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		GikDecodeJob *job;
		long		wait_ms = POLL_SLICE_MS;

		CHECK_FOR_INTERRUPTS();
		if ((job = ring_pop(&client->done)) != NULL)
			return job;
		dispatch();
		if ((job = ring_pop(&client->done)) != NULL)
			return job;
		if (gik_decoder_pending(client) == 0)
			return NULL;
		if (timeout_ms >= 0)
		{
			wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (wait_ms <= 0)
			{
				/* no time to wait, but take what the decoders have already said */
				collect(0);
				dispatch();
				return ring_pop(&client->done);
			}
		}
		collect(wait_ms);
	}
}

/* Decode or describe one message and wait for it. */
void
gik_decoder_run(GikDecodeJob *job)
{
	GikDecoderClient *client = gik_decoder_client_create();

	gik_decoder_submit(client, job);
	while (!job->done)
		gik_decoder_next(client, -1);
}

/* Number of decoder slots. */
int
gik_decoder_slots(void)
{
	return MAX_DECODERS;
}

/* One slot's state. */
void
gik_decoder_slot_info(int slot, GikDecoderInfo *info)
{
	const Decoder *d = &decoders[slot];

	memset(info, 0, sizeof(*info));
	info->pid = (int) d->proc.pid;
	info->busy = d->job != NULL;
	info->memory_limit_mb = d->memory_limit_mb;
	info->region_bytes = d->proc.shm_size;
	info->hello = d->proc.hello;
}

/* Raise the error of a failed job; see decoder_pool.h. */
void
gik_raise_decode_error(const GikDecodeJob *job)
{
	int			code;

	switch (job->status)
	{
		case GIK_DECODE_UNSUPPORTED:
			code = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case GIK_DECODE_OUT_OF_MEMORY:
			code = ERRCODE_OUT_OF_MEMORY;
			break;
		case GIK_DECODE_BAD_REGION:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case GIK_DECODE_TOO_LARGE:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case GIK_DECODE_TIMEOUT:
			code = ERRCODE_QUERY_CANCELED;
			break;
		default:
			code = ERRCODE_DATA_CORRUPTED;	/* corrupt, or the decoder died on it */
			break;
	}
	ereport(ERROR, (errcode(code),
					job->op == GIK_DECODER_META ?
					errmsg("could not read GRIB message at bytes " INT64_FORMAT "-" INT64_FORMAT " of \"%s\"",
						   job->offset, job->offset + job->length - 1, job->url) :
					errmsg("could not decode bytes " INT64_FORMAT "-" INT64_FORMAT " of \"%s\"",
						   job->offset, job->offset + job->length - 1, job->url),
					errdetail("%s", job->errbuf),
					job->status == GIK_DECODE_OUT_OF_MEMORY ? errhint("A superuser can raise gik.decoder_memory_limit.") :
					job->status == GIK_DECODE_TOO_LARGE ? errhint("A superuser can raise the limit named above.") : 0));
	pg_unreachable();
}
