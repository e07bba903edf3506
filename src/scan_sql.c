/* Full-file GRIB scans and one-message metadata: gik.scan_grib and gik.message_info. */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/timestamp.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "core/grib_frame.h"
#include "core/grib_meta.h"
#include "datums.h"
#include "decoder_pool.h"
#include "fetch.h"
#include "message.h"

PG_FUNCTION_INFO_V1(gik_scan_grib);
PG_FUNCTION_INFO_V1(gik_message_info);

#define META_COLS 30

/* A metadata string, NULL when ecCodes had none (GikMeta leaves it empty). */
static const char *
meta_text(const char *s)
{
	return s[0] ? s : NULL;
}

/* Float datum, NULL for NaN. */
static void
put_float(Datum *v, bool *isnull, double d)
{
	if (isnan(d))
		*isnull = true;
	else
		*v = Float8GetDatum(d);
}

/* Fill a gik.message_meta row. */
static void
meta_to_row(int msg_num, int64 offset, int64 length, const GikMeta *m, Datum *v, bool *n)
{
	TimestampTz ref;

	memset(n, 0, sizeof(bool) * META_COLS);
	v[0] = Int32GetDatum(msg_num);
	v[1] = Int64GetDatum(offset);
	v[2] = Int64GetDatum(length);
	v[3] = Int32GetDatum((int32) m->edition);
	gik_put_text(&v[4], &n[4], meta_text(m->short_name));
	gik_put_text(&v[5], &n[5], meta_text(m->name));
	gik_put_text(&v[6], &n[6], meta_text(m->units));
	v[7] = Int32GetDatum((int32) m->param_id);
	n[7] = m->param_id < 0;
	gik_put_text(&v[8], &n[8], meta_text(m->type_of_level));
	v[9] = Int64GetDatum(m->level);
	n[9] = m->level < 0;
	gik_put_text(&v[10], &n[10], meta_text(m->step_range));
	gik_put_text(&v[11], &n[11], meta_text(m->step_type));
	if (m->data_date > 0 &&
		gik_timestamp_from_parts((int) (m->data_date / 10000), (int) (m->data_date / 100 % 100),
								 (int) (m->data_date % 100), (int) (m->data_time / 100),
								 (int) (m->data_time % 100), &ref))
		v[12] = TimestampTzGetDatum(ref);
	else
		n[12] = true;
	v[13] = Int32GetDatum((int32) m->number);
	n[13] = m->number < 0;
	gik_put_text(&v[14], &n[14], meta_text(m->packing_type));
	v[15] = Int32GetDatum((int32) m->bits_per_value);
	v[16] = BoolGetDatum(m->bitmap_present);
	v[17] = Int64GetDatum(m->missing_count);
	gik_put_text(&v[18], &n[18], meta_text(m->grid.grid_type));
	v[19] = Int32GetDatum((int32) m->grid.ni);
	n[19] = m->grid.ni < 0;
	v[20] = Int32GetDatum((int32) m->grid.nj);
	n[20] = m->grid.nj < 0;
	v[21] = Int64GetDatum(m->grid.num_points);
	put_float(&v[22], &n[22], m->grid.lat_first);
	put_float(&v[23], &n[23], m->grid.lon_first);
	put_float(&v[24], &n[24], m->grid.lat_last);
	put_float(&v[25], &n[25], m->grid.lon_last);
	put_float(&v[26], &n[26], m->grid.di);
	put_float(&v[27], &n[27], m->grid.dj);
	v[28] = Int32GetDatum((int32) m->grid.scanning_mode);
	gik_grid_proj_datum(&m->grid, &v[29], &n[29]);
}

/* A metadata job for one message of a fetched buffer. */
static void
meta_job(GikDecodeJob *job, const char *url, int64 offset, const unsigned char *msg, size_t len)
{
	memset(job, 0, sizeof(*job));
	job->url = url;
	job->offset = offset;
	job->length = (int64) len;
	job->msg = msg;
	job->op = GIK_DECODER_META;
}

/* gik.scan_grib(url): read the whole file and describe every message with ecCodes, in the decoder processes. */
Datum
gik_scan_grib(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GikFetch	f = {0};
	GikDecoderClient *client;
	GikDecodeJob *jobs;
	int			njobs = 0;
	int			cap = 64;
	size_t		pos = 0;
	uint64_t	off,
				len;

	InitMaterializedSRF(fcinfo, 0);
	f.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	f.mode = GIK_FETCH_WHOLE;
	gik_fetch_one(&f);

	client = gik_decoder_client_create();
	jobs = palloc(sizeof(GikDecodeJob) * cap);
	while (gik_grib_next((const unsigned char *) f.data, (size_t) f.size, pos, &off, &len))
	{
		CHECK_FOR_INTERRUPTS();
		if (njobs == cap)
		{
			cap *= 2;
			jobs = repalloc_huge(jobs, sizeof(GikDecodeJob) * cap);
		}
		meta_job(&jobs[njobs++], f.url, (int64) off, (const unsigned char *) f.data + off, (size_t) len);
		pos = (size_t) (off + len);
	}
	for (int i = 0; i < njobs; i++)
		gik_decoder_submit(client, &jobs[i]);
	while (gik_decoder_next(client, -1) != NULL)
		;
	for (int i = 0; i < njobs; i++)
	{
		Datum		values[META_COLS];
		bool		nulls[META_COLS];

		if (jobs[i].status != GIK_DECODE_OK)
			gik_raise_decode_error(&jobs[i]);
		meta_to_row(i + 1, jobs[i].offset, jobs[i].length, &jobs[i].meta, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* gik.message_info(url, byte_offset, byte_length): fetch one referenced message and describe it. */
Datum
gik_message_info(PG_FUNCTION_ARGS)
{
	GikFetch	f = {0};
	TupleDesc	tupdesc;
	GikDecodeJob job;
	Datum		values[META_COLS];
	bool		nulls[META_COLS];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	gik_fetch_message_arg(fcinfo, &f);
	meta_job(&job, f.url, f.offset, (const unsigned char *) f.data, (size_t) f.size);
	gik_decoder_run(&job);
	if (job.status != GIK_DECODE_OK)
		gik_raise_decode_error(&job);
	meta_to_row(0, f.offset, f.length, &job.meta, values, nulls);
	nulls[0] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
