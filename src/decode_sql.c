/* Decoding one referenced GRIB message from SQL (values or raster WKB), and the session's decoders. */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "args.h"
#include "datums.h"
#include "decoder_pool.h"
#include "fetch.h"
#include "message.h"

PG_FUNCTION_INFO_V1(gik_decode);
PG_FUNCTION_INFO_V1(gik_decode_raster_wkb);
PG_FUNCTION_INFO_V1(gik_decode_raster_parts);
PG_FUNCTION_INFO_V1(gik_decoders);

/*
 * Fetch one referenced message, check its framing and decode it in a decoder process; raises on
 * any failure. False (nothing done) when url, byte_offset or byte_length is NULL.
 */
static bool
fetch_and_decode(FunctionCallInfo fcinfo, GikDecodeJob *job)
{
	GikFetch	f = {0};

	if (gik_required_null(fcinfo, 3))
		return false;
	gik_decode_options_from_args(fcinfo, 3, &job->opts);
	gik_fetch_message_arg(fcinfo, &f);
	job->url = f.url;
	job->offset = f.offset;
	job->length = f.length;
	job->msg = (const unsigned char *) f.data;
	job->op = GIK_DECODER_DECODE;
	gik_decoder_run(job);
	pfree(f.data);
	if (job->status != GIK_DECODE_OK)
		gik_raise_decode_error(job);
	return true;
}

/* gik.decode(url, byte_offset, byte_length, lon, region): one message as real[] [nj][ni], north-up. */
Datum
gik_decode(PG_FUNCTION_ARGS)
{
	GikDecodeJob job = {0};

	if (!fetch_and_decode(fcinfo, &job))
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(job.values);
}

/* Raise unless a decode came out as a north-up grid a raster can hold. */
static void
raster_check(const GikDecodeJob *job)
{
	if (!job->dec.regular)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("grid type %s is not supported for rasters", job->dec.meta.grid.grid_type),
						errdetail("Rasters are made from regular latitude/longitude and projected (Lambert, polar stereographic, Mercator) grids; a %s grid needs regridding to one of them first.",
								  job->dec.meta.grid.grid_type),
						errhint("Use gik.decode() to get the values in scanning order, and gik.grid_lats() and gik.grid_lons() for their coordinates.")));
}

/* gik.decode_raster_wkb(url, byte_offset, byte_length, lon, region, srid): one message as raster WKB. */
Datum
gik_decode_raster_wkb(PG_FUNCTION_ARGS)
{
	GikDecodeJob job = {0};

	if (!fetch_and_decode(fcinfo, &job))
		PG_RETURN_NULL();
	raster_check(&job);
	PG_RETURN_BYTEA_P(gik_raster_bytea(&job.dec.out, (const float *) ARR_DATA_PTR(job.values), 1,
									   gik_arg_int32(fcinfo, 5, 4326)));
}

/*
 * gik.decode_raster_parts(url, byte_offset, byte_length, lon, region): raster WKB (SRID 0 for a
 * projected grid) and the grid's PROJ string (NULL for lat/lon), for pg_gik_postgis to give the
 * raster its projection's SRID.
 */
Datum
gik_decode_raster_parts(PG_FUNCTION_ARGS)
{
	GikDecodeJob job = {0};
	TupleDesc	tupdesc;
	Datum		v[2];
	bool		n[2] = {0};
	bool		projected;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!fetch_and_decode(fcinfo, &job))
		PG_RETURN_NULL();
	raster_check(&job);
	projected = gik_outgrid_projected(&job.dec.out);
	v[0] = PointerGetDatum(gik_raster_bytea(&job.dec.out, (const float *) ARR_DATA_PTR(job.values), 1,
											projected ? 0 : 4326));
	n[1] = true;
	if (projected)
	{
		GikGrid		pg = {.proj = job.dec.out.proj};

		gik_grid_proj_datum(&pg, &v[1], &n[1]);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n)));
}

/* gik.decoders(): this session's decoder processes and what their sandbox allows. */
Datum
gik_decoders(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int slot = 0; slot < gik_decoder_slots(); slot++)
	{
		GikDecoderInfo info;
		Datum		v[7];
		bool		n[7] = {0};

		gik_decoder_slot_info(slot, &info);
		if (info.pid == 0)
			continue;
		v[0] = Int32GetDatum(slot + 1);
		v[1] = Int32GetDatum(info.pid);
		v[2] = BoolGetDatum(info.busy);
		v[3] = Int32GetDatum(info.memory_limit_mb);
		v[4] = Int64GetDatum((int64) info.region_bytes);
		v[5] = Int32GetDatum(info.hello.landlock_abi);
		v[6] = CStringGetTextDatum(info.hello.detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
