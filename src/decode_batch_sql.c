/*
 * gik.decode_batch: decode many referenced messages in one call. Ranges are
 * de-duplicated and adjacent ones in a file merged, fetched concurrently, decoded
 * by the backend's decoder processes, and streamed out one row per reference.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "args.h"
#include "datums.h"
#include "decoder_pool.h"
#include "fetch.h"
#include "message.h"
#include "pg_gik.h"

PG_FUNCTION_INFO_V1(gik_decode_batch);

/*
 * Largest merged request. Nothing of a request is decoded before all of it has arrived, so a
 * large merge holds the decoders back (one ECMWF step file's 51 members are one 38 MB range),
 * while over S3 parallel requests beat one long one anyway: merge small messages only.
 */
#define MAX_MERGED_BYTES (4 * 1024 * 1024)

/* One distinct (url, offset, length) and the references that asked for it. */
typedef struct BatchMsg
{
	const char *url;
	int64		offset;
	int64		length;
	int			fetch_index;
	int64		offset_in_fetch;
	int		   *ords;			/* 1-based positions in the input array */
	int			nords;
	int			emitted;
	GikDecodeJob job;
} BatchMsg;

typedef struct BatchState
{
	BatchMsg   *msgs;
	int			nmsgs;
	GikFetch   *fetches;
	int			nfetches;
	int		   *fetch_first_msg;	/* messages of fetch f: [first[f], first[f+1]) */
	int		   *fetch_unfinished;	/* messages of a fetch not yet fully emitted */
	GikFetchSession *session;
	bool		fetching_done;
	GikDecoderClient *decoders;
	GikDecodeOptions opts;
	BatchMsg  **ready;			/* decoded, rows still to emit */
	int			ready_head;
	int			ready_tail;
	int			msgs_done;
	TupleDesc	grid_tupdesc;
} BatchState;

/* Order messages by url, then offset, then length. */
static int
msg_cmp(const void *a, const void *b)
{
	const BatchMsg *x = (const BatchMsg *) a;
	const BatchMsg *y = (const BatchMsg *) b;
	int			c = strcmp(x->url, y->url);

	if (c)
		return c;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->length != y->length)
		return x->length < y->length ? -1 : 1;
	return 0;
}

/* Read the gik.ref[] argument into one message per reference, sorted. */
static BatchMsg *
read_refs(ArrayType *refs, int *nrefs)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	BatchMsg   *msgs;

	get_typlenbyvalalign(ARR_ELEMTYPE(refs), &typlen, &typbyval, &typalign);
	deconstruct_array(refs, ARR_ELEMTYPE(refs), typlen, typbyval, typalign, &elems, &nulls, &n);
	msgs = palloc0(sizeof(BatchMsg) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader ref;
		bool		isnull[3];
		Datum		url,
					off,
					len;

		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("reference %d of the batch is NULL", i + 1)));
		ref = DatumGetHeapTupleHeader(elems[i]);
		url = GetAttributeByNum(ref, 1, &isnull[0]);
		off = GetAttributeByNum(ref, 2, &isnull[1]);
		len = GetAttributeByNum(ref, 3, &isnull[2]);
		if (isnull[0] || isnull[1] || isnull[2])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("reference %d of the batch has a NULL url, offset or length", i + 1)));
		msgs[i].url = TextDatumGetCString(url);
		msgs[i].offset = DatumGetInt64(off);
		msgs[i].length = DatumGetInt64(len);
		if (msgs[i].offset < 0 || msgs[i].length <= 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("reference %d of the batch has an invalid byte range: offset " INT64_FORMAT
								   ", length " INT64_FORMAT, i + 1, msgs[i].offset, msgs[i].length),
							errdetail("The offset must be zero or more and the length more than zero.")));
		msgs[i].ords = palloc(sizeof(int));
		msgs[i].ords[0] = i + 1;
		msgs[i].nords = 1;
	}
	qsort(msgs, n, sizeof(BatchMsg), msg_cmp);
	*nrefs = n;
	return msgs;
}

/* Fold references to the same message into one (fetched and decoded once). */
static int
dedupe_msgs(BatchMsg *msgs, int n)
{
	int			out = 0;

	for (int i = 0; i < n; i++)
	{
		if (out > 0 && msg_cmp(&msgs[out - 1], &msgs[i]) == 0)
		{
			BatchMsg   *m = &msgs[out - 1];

			m->ords = repalloc(m->ords, sizeof(int) * (m->nords + 1));
			m->ords[m->nords++] = msgs[i].ords[0];
			continue;
		}
		msgs[out++] = msgs[i];
	}
	return out;
}

/* Merge ranges of the same file that touch (or are within gik.merge_gap) into single requests. */
static void
plan_fetches(BatchState *st)
{
	int			f = -1;
	int64		end = 0;

	st->fetches = palloc0(sizeof(GikFetch) * Max(st->nmsgs, 1));
	st->fetch_first_msg = palloc(sizeof(int) * (st->nmsgs + 1));
	for (int i = 0; i < st->nmsgs; i++)
	{
		BatchMsg   *m = &st->msgs[i];
		GikFetch   *cur = f >= 0 ? &st->fetches[f] : NULL;
		int64		new_end = Max(end, m->offset + m->length);

		if (!cur || strcmp(cur->url, m->url) != 0 || m->offset > end + gik_merge_gap_bytes ||
			new_end - cur->offset > MAX_MERGED_BYTES)
		{
			cur = &st->fetches[++f];
			cur->url = m->url;
			cur->mode = GIK_FETCH_RANGE;
			cur->offset = m->offset;
			st->fetch_first_msg[f] = i;
			new_end = m->offset + m->length;
		}
		end = new_end;
		cur->length = end - cur->offset;
		m->fetch_index = f;
		m->offset_in_fetch = m->offset - cur->offset;
	}
	st->nfetches = f + 1;
	st->fetch_first_msg[st->nfetches] = st->nmsgs;
	st->fetch_unfinished = palloc(sizeof(int) * Max(st->nfetches, 1));
	for (f = 0; f < st->nfetches; f++)
		st->fetch_unfinished[f] = st->fetch_first_msg[f + 1] - st->fetch_first_msg[f];
}

/* Check each message of a completed fetch and queue it for decoding. */
static void
submit_fetch(BatchState *st, int f)
{
	GikFetch   *fetch = &st->fetches[f];

	for (int i = st->fetch_first_msg[f]; i < st->fetch_first_msg[f + 1]; i++)
	{
		BatchMsg   *m = &st->msgs[i];
		GikDecodeJob *job = &m->job;

		job->url = m->url;
		job->offset = m->offset;
		job->length = m->length;
		job->msg = (const unsigned char *) fetch->data + m->offset_in_fetch;
		job->op = GIK_DECODER_DECODE;
		job->opts = st->opts;
		job->arg = m;
		gik_check_grib_range(m->url, m->offset, job->msg, (size_t) job->length);
		gik_decoder_submit(st->decoders, job);
	}
}

/* Move finished decodes to the ready queue, waiting up to wait_ms for one; raises decode errors. */
static void
collect_decoded(BatchState *st, long wait_ms)
{
	GikDecodeJob *job;

	while ((job = gik_decoder_next(st->decoders, wait_ms)) != NULL)
	{
		wait_ms = 0;
		if (job->status != GIK_DECODE_OK)
			gik_raise_decode_error(job);
		st->ready[st->ready_tail++] = (BatchMsg *) job->arg;
	}
}

/* Set up the batch: read references, plan requests, start fetching and the threads. */
static BatchState *
batch_begin(FunctionCallInfo fcinfo)
{
	BatchState *st = palloc0(sizeof(BatchState));
	int			nrefs;
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	st->grid_tupdesc = lookup_rowtype_tupdesc_copy(TupleDescAttr(tupdesc, 1)->atttypid, -1);
	gik_decode_options_from_args(fcinfo, 1, &st->opts);
	if (PG_ARGISNULL(0))
	{
		st->msgs = palloc0(sizeof(BatchMsg));
		nrefs = 0;
	}
	else
		st->msgs = read_refs(PG_GETARG_ARRAYTYPE_P(0), &nrefs);
	st->nmsgs = dedupe_msgs(st->msgs, nrefs);
	st->ready = palloc(sizeof(BatchMsg *) * Max(st->nmsgs, 1));
	plan_fetches(st);
	st->decoders = gik_decoder_client_create();
	if (st->nmsgs > 0)
	{
		st->session = gik_fetch_begin(st->fetches, st->nfetches);
		gik_fetch_set_hold_limit(st->session, gik_max_connections + 2 * gik_decode_threads);
	}
	return st;
}

/* Emit the next row of the first ready message; frees it and its fetch once all its rows are out. */
static HeapTuple
emit_row(BatchState *st, TupleDesc tupdesc)
{
	BatchMsg   *m = st->ready[st->ready_head];
	GikDecodeJob *job = &m->job;
	Datum		values[3];
	bool		nulls[3] = {0};
	HeapTuple	tuple;

	values[0] = Int32GetDatum(m->ords[m->emitted++]);
	values[1] = gik_grid_desc_datum(st->grid_tupdesc, &job->dec);
	values[2] = PointerGetDatum(job->values);
	tuple = heap_form_tuple(tupdesc, values, nulls);
	if (m->emitted == m->nords)
	{
		pfree(job->values);
		job->values = NULL;
		st->ready_head++;
		st->msgs_done++;
		if (--st->fetch_unfinished[m->fetch_index] == 0)
			gik_fetch_release(st->session, m->fetch_index);
	}
	return tuple;
}

/* gik.decode_batch(refs gik.ref[], lon, region): one row (ord, grid, vals) per reference, in completion order. */
Datum
gik_decode_batch(PG_FUNCTION_ARGS)
{
	FuncCallContext *fctx;
	BatchState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TupleDesc	tupdesc;

		fctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(fctx->multi_call_memory_ctx);
		fctx->user_fctx = batch_begin(fcinfo);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		fctx->tuple_desc = BlessTupleDesc(tupdesc);
		MemoryContextSwitchTo(old);
	}
	fctx = SRF_PERCALL_SETUP();
	st = (BatchState *) fctx->user_fctx;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (st->ready_head < st->ready_tail)
			SRF_RETURN_NEXT(fctx, HeapTupleGetDatum(emit_row(st, fctx->tuple_desc)));
		if (st->msgs_done == st->nmsgs)
			SRF_RETURN_DONE(fctx);
		if (gik_decoder_pending(st->decoders) > 0)
			collect_decoded(st, 0);
		if (st->ready_head < st->ready_tail)
			continue;
		if (!st->fetching_done)
		{
			/* wait for a transfer or a decoder, whichever comes first */
			MemoryContext old = MemoryContextSwitchTo(fctx->multi_call_memory_ctx);
			int			fds[64];
			int			nfds = gik_decoder_busy_fds(fds, lengthof(fds));
			int			f = gik_fetch_next_or(st->session, 100, fds, nfds);

			if (f >= 0)
				submit_fetch(st, f);
			else if (f == -1)
				st->fetching_done = true;
			else if (gik_decoder_pending(st->decoders) > 0)
				collect_decoded(st, 0);
			MemoryContextSwitchTo(old);
		}
		else
		{
			MemoryContext old = MemoryContextSwitchTo(fctx->multi_call_memory_ctx);

			collect_decoded(st, 50);
			MemoryContextSwitchTo(old);
		}
	}
}
