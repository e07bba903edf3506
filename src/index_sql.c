/* SQL set-returning functions over the index parsers: gik.parse_idx and gik.parse_ecmwf_index. */
#include "postgres.h"

#include "access/htup_details.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "core/ecmwf_index.h"
#include "core/idx.h"
#include "core/url.h"
#include "datums.h"
#include "pg_gik.h"

PG_FUNCTION_INFO_V1(gik_parse_idx);
PG_FUNCTION_INFO_V1(gik_parse_ecmwf_index);

/*
 * Raise the error for a parse failure, naming the source URL when known. The line is quoted
 * only from URLs anyone may read: a server file's content stays out of messages (and so out of
 * gik.ingest_log, which readers see).
 */
static void
raise_parse_error(FunctionCallInfo fcinfo, int url_arg, const char *what, const GikParseError *err)
{
	const char *url = (PG_NARGS() > url_arg && !PG_ARGISNULL(url_arg)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(url_arg)) : NULL;

	if (url && gik_url_is_server_file(url))
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("invalid %s line %d of \"%s\"", what, err->lineno, url),
						errdetail("%s The line is not quoted: it comes from a file on the server.", err->message)));
	if (url)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("invalid %s line %d of \"%s\": \"%s\"", what, err->lineno, url, err->excerpt),
						errdetail("%s", err->message)));
	ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					errmsg("invalid %s line %d: \"%s\"", what, err->lineno, err->excerpt),
					errdetail("%s", err->message)));
}

/* Between lines of a long parse: cancel and statement_timeout act here. */
static void
check_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

/* The index text (argument 0), refused when larger than gik.max_index_size. */
static text *
index_arg(FunctionCallInfo fcinfo, int url_arg, const char *what)
{
	text	   *input = PG_GETARG_TEXT_PP(0);
	size_t		len = VARSIZE_ANY_EXHDR(input);

	if (len > (size_t) gik_max_index_mb * 1024 * 1024)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("%s of %zu bytes%s%s%s is larger than gik.max_index_size (%d MB)", what, len,
							   PG_NARGS() > url_arg && !PG_ARGISNULL(url_arg) ? " at \"" : "",
							   PG_NARGS() > url_arg && !PG_ARGISNULL(url_arg) ? text_to_cstring(PG_GETARG_TEXT_PP(url_arg)) : "",
							   PG_NARGS() > url_arg && !PG_ARGISNULL(url_arg) ? "\"" : "",
							   gik_max_index_mb),
						errhint("A superuser can raise gik.max_index_size.")));
	return input;
}

/* Datum for a span of the input as text. */
static Datum
span_text(GikSpan span)
{
	return PointerGetDatum(cstring_to_text_with_len(span.ptr, span.len));
}

/* Fill the normalised window and member columns shared by both parsers. */
static void
fill_normalised(Datum *values, bool *nulls, const GikTimeWindow *w, const GikMember *m)
{
	if (w->valid)
	{
		values[0] = Float8GetDatum(w->start_min / 60.0);
		values[1] = Float8GetDatum(w->end_min / 60.0);
		if (w->stat != GIK_STAT_NONE)
			values[2] = CStringGetTextDatum(gik_stat_name(w->stat));
		else
			nulls[2] = true;
	}
	else
		nulls[0] = nulls[1] = nulls[2] = true;
	if (m->number >= 0)
		values[3] = Int32GetDatum(m->number);
	else
		nulls[3] = true;
	if (m->kind != GIK_MEMBER_NONE)
		values[4] = CStringGetTextDatum(gik_member_kind_name(m->kind));
	else
		nulls[4] = true;
}

#define PARSE_IDX_COLS 15

/* Store one parsed inventory line as a row of the SRF's tuplestore. */
static void
store_idx_row(const GikIdxLine *l, void *arg)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;
	Datum		values[PARSE_IDX_COLS];
	bool		nulls[PARSE_IDX_COLS] = {0};
	TimestampTz ref;
	int			ymdh = l->ref_ymdh;

	if ((l->lineno & 1023) == 0)
		CHECK_FOR_INTERRUPTS();	/* the core parser allocates with palloc only: leaving it here is safe */
	values[0] = Int32GetDatum(l->lineno);
	values[1] = Int32GetDatum(l->msg_num);
	values[2] = Int32GetDatum(l->sub_num);
	values[3] = Int64GetDatum(l->offset);
	values[4] = Int64GetDatum(l->length);
	nulls[4] = l->length < 0;
	if (gik_timestamp_from_parts(ymdh / 1000000, (ymdh / 10000) % 100, (ymdh / 100) % 100,
								 ymdh % 100, 0, &ref))
		values[5] = TimestampTzGetDatum(ref);
	else
		nulls[5] = true;
	values[6] = span_text(l->var);
	values[7] = span_text(l->level);
	values[8] = span_text(l->ftime);
	values[9] = span_text(l->extra);
	fill_normalised(values + 10, nulls + 10, &l->window, &l->member);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	for (int i = 6; i <= 9; i++)
		pfree(DatumGetPointer(values[i]));
}

/* gik.parse_idx(idx text, file_size int8, url text): one row per inventory line, streamed as parsed. */
Datum
gik_parse_idx(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *input;
	int64		file_size = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT64(1);
	GikParseError err;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	input = index_arg(fcinfo, 2, "idx");
	if (!gik_idx_parse_stream(VARDATA_ANY(input), VARSIZE_ANY_EXHDR(input), file_size,
							  gik_core_alloc, store_idx_row, rsinfo, &err))
		raise_parse_error(fcinfo, 2, "idx", &err);
	return (Datum) 0;
}

#define PARSE_EC_COLS 19

/* Reference time from ECMWF "date" (YYYYMMDD) and "time" (HHMM or H). */
static bool
ecmwf_ref_time(const char *date, const char *time, TimestampTz *out)
{
	int			ymd,
				hhmm;

	if (!date || !time || strlen(date) != 8 || strspn(date, "0123456789") != 8 ||
		strlen(time) == 0 || strlen(time) > 4 || strspn(time, "0123456789") != strlen(time))
		return false;
	ymd = atoi(date);
	hhmm = atoi(time);
	if (strlen(time) <= 2)
		hhmm *= 100;
	return gik_timestamp_from_parts(ymd / 10000, (ymd / 100) % 100, ymd % 100,
									hhmm / 100, hhmm % 100, out);
}

/* gik.parse_ecmwf_index(index text, url text): one row per JSON line, sorted by offset. */
Datum
gik_parse_ecmwf_index(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *input;
	GikEcIndexLine *lines;
	size_t		nlines;
	GikParseError err;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	input = index_arg(fcinfo, 1, "ECMWF index");
	if (!gik_ecindex_parse(VARDATA_ANY(input), VARSIZE_ANY_EXHDR(input), gik_core_alloc, check_interrupts,
						   &lines, &nlines, &err))
		raise_parse_error(fcinfo, 1, "ECMWF index", &err);

	for (size_t i = 0; i < nlines; i++)
	{
		GikEcIndexLine *l = &lines[i];
		Datum		values[PARSE_EC_COLS];
		bool		nulls[PARSE_EC_COLS] = {0};
		TimestampTz ref;

		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();

		values[0] = Int32GetDatum(l->lineno);
		values[1] = Int64GetDatum(l->offset);
		values[2] = Int64GetDatum(l->length);
		gik_put_text(&values[3], &nulls[3], l->param);
		gik_put_text(&values[4], &nulls[4], l->levtype);
		gik_put_text(&values[5], &nulls[5], l->levelist);
		if (ecmwf_ref_time(l->date, l->time, &ref))
			values[6] = TimestampTzGetDatum(ref);
		else
			nulls[6] = true;
		gik_put_text(&values[7], &nulls[7], l->step);
		fill_normalised(values + 8, nulls + 8, &l->window, &l->member);
		gik_put_text(&values[13], &nulls[13], l->type);
		gik_put_text(&values[14], &nulls[14], l->stream);
		gik_put_text(&values[15], &nulls[15], l->klass);
		gik_put_text(&values[16], &nulls[16], l->expver);
		gik_put_text(&values[17], &nulls[17], l->domain);
		if (l->number >= 0)
			values[18] = Int32GetDatum(l->number);
		else
			nulls[18] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
