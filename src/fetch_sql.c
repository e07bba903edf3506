/* SQL functions over the fetch layer: gik.fetch_text, gik.fetch_bytes, gik.file_info, gik.fetch_many. */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "args.h"
#include "core/url.h"
#include "datums.h"
#include "fetch.h"
#include "pg_gik.h"

PG_FUNCTION_INFO_V1(gik_fetch_text);
PG_FUNCTION_INFO_V1(gik_fetch_bytes);
PG_FUNCTION_INFO_V1(gik_file_info);
PG_FUNCTION_INFO_V1(gik_url_allowed);
PG_FUNCTION_INFO_V1(gik_fetch_many);
PG_FUNCTION_INFO_V1(gik_resolve_url);

/* Text datum from a fetched body, checked for the database encoding. */
static text *
body_as_text(GikFetch *f)
{
	if (!pg_verifymbstr(f->data, (int) f->size, true))
		ereport(ERROR, (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
						errmsg("\"%s\" is not valid text in the database encoding", f->url),
						errdetail("Index files are expected to be ASCII or UTF-8 text.")));
	return cstring_to_text_with_len(f->data, (int) f->size);
}

/* gik.fetch_text(url): the whole object as text. */
Datum
gik_fetch_text(PG_FUNCTION_ARGS)
{
	GikFetch	f = {0};

	f.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	f.mode = GIK_FETCH_WHOLE;
	gik_fetch_one(&f);
	PG_RETURN_TEXT_P(body_as_text(&f));
}

/* gik.fetch_bytes(url, byte_offset, byte_length): a byte range (or the whole object when both are NULL). */
Datum
gik_fetch_bytes(PG_FUNCTION_ARGS)
{
	GikFetch	f = {0};
	bytea	   *result;

	if (gik_required_null(fcinfo, 1))
		PG_RETURN_NULL();
	f.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1) && PG_ARGISNULL(2))
		f.mode = GIK_FETCH_WHOLE;
	else if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("byte_offset and byte_length must both be given or both be NULL")));
	else
	{
		f.mode = GIK_FETCH_RANGE;
		f.offset = PG_GETARG_INT64(1);
		f.length = PG_GETARG_INT64(2);
	}
	gik_fetch_one(&f);
	result = palloc(VARHDRSZ + f.size);
	SET_VARSIZE(result, VARHDRSZ + f.size);
	memcpy(VARDATA(result), f.data, f.size);
	PG_RETURN_BYTEA_P(result);
}

/* gik.file_info(url): size, etag and Last-Modified from a HEAD request (or stat), found=false when missing. */
Datum
gik_file_info(PG_FUNCTION_ARGS)
{
	GikFetch	f = {0};
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	f.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	f.mode = GIK_FETCH_HEAD;
	f.missing_ok = true;
	gik_fetch_one(&f);
	values[0] = BoolGetDatum(!f.missing);
	values[1] = Int64GetDatum(f.file_size);
	nulls[1] = f.missing || f.file_size < 0;
	gik_put_text(&values[2], &nulls[2], f.etag);
	values[3] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) f.last_modified));
	nulls[3] = f.missing || f.last_modified < 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* State for streaming fetch_many results into the tuplestore as they complete. */
typedef struct FetchManyState
{
	ReturnSetInfo *rsinfo;
	bool		head;
} FetchManyState;

#define FETCH_MANY_COLS 11

/* Store one completed request as a row, then free its body. */
static void
store_fetch_row(GikFetch *f, int index, void *arg)
{
	FetchManyState *st = (FetchManyState *) arg;
	Datum		values[FETCH_MANY_COLS];
	bool		nulls[FETCH_MANY_COLS] = {0};

	values[0] = Int32GetDatum(index + 1);
	values[1] = CStringGetTextDatum(f->url);
	values[2] = BoolGetDatum(!f->missing && !f->unavailable);
	if (f->missing || f->unavailable || st->head)
		nulls[3] = true;
	else
		values[3] = PointerGetDatum(body_as_text(f));
	values[4] = Int64GetDatum(f->size);
	values[5] = Int64GetDatum(f->file_size);
	nulls[5] = f->missing || f->unavailable || f->file_size < 0;
	gik_put_text(&values[6], &nulls[6], f->etag);
	values[7] = Int32GetDatum(f->attempts);
	values[8] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) f->last_modified));
	nulls[8] = f->missing || f->unavailable || f->last_modified < 0;
	values[9] = BoolGetDatum(f->unavailable);
	gik_put_text(&values[10], &nulls[10], f->failure);
	/* a result type without the last two columns (0.1.0's declaration) takes the first nine */
	tuplestore_putvalues(st->rsinfo->setResult, st->rsinfo->setDesc, values, nulls);
	if (f->data)
	{
		pfree(f->data);
		f->data = NULL;
	}
}

/*
 * gik.fetch_many(urls text[], missing_ok bool, head bool, unavailable_ok bool): fetch many objects
 * concurrently; with missing_ok (404) or unavailable_ok (5xx, no connection) a failed object is a row
 * with found false and its failure.
 */
Datum
gik_fetch_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *urls;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	GikFetch   *fetches;
	FetchManyState st;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	urls = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(urls, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
	fetches = palloc0(sizeof(GikFetch) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (elem_nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("URL %d of the array is NULL", i + 1)));
		fetches[i].url = TextDatumGetCString(elems[i]);
		fetches[i].mode = gik_arg_bool(fcinfo, 2, false) ? GIK_FETCH_HEAD : GIK_FETCH_WHOLE;
		fetches[i].missing_ok = gik_arg_bool(fcinfo, 1, false);
		fetches[i].unavailable_ok = gik_arg_bool(fcinfo, 3, false);
	}
	st.rsinfo = rsinfo;
	st.head = gik_arg_bool(fcinfo, 2, false);
	gik_fetch_all(fetches, n, store_fetch_row, &st);
	return (Datum) 0;
}

/* gik.url_allowed(url): whether gik.allowed_url_prefixes lets url be fetched. */
Datum
gik_url_allowed(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(gik_fetch_url_allowed(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/* gik.resolve_url(url): what a URL is fetched as under the current settings (an http(s) URL or a local path). */
Datum
gik_resolve_url(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *resolved;

	if (gik_url_resolve(url, gik_s3_endpoint, gik_gs_endpoint, gik_core_alloc, &resolved) == GIK_URL_INVALID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid URL \"%s\"", url),
						errdetail("%s", resolved)));
	PG_RETURN_TEXT_P(cstring_to_text(resolved));
}
