/* Decoding referenced GRIB messages from SQL: single decodes, grids, coordinates and raster WKB. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "core/raster_wkb.h"
#include "args.h"
#include "datums.h"
#include "decode_sql.h"
#include "decoder_pool.h"
#include "fetch.h"
#include "regrid_sql.h"
#include "scan_sql.h"

PG_FUNCTION_INFO_V1(gik_decode);
PG_FUNCTION_INFO_V1(gik_decode_raster_wkb);
PG_FUNCTION_INFO_V1(gik_decode_raster_parts);
PG_FUNCTION_INFO_V1(gik_output_grid);
PG_FUNCTION_INFO_V1(gik_grid_lats);
PG_FUNCTION_INFO_V1(gik_grid_lons);
PG_FUNCTION_INFO_V1(gik_grid_wkb);
PG_FUNCTION_INFO_V1(gik_decoders);

/* palloc with the core's allocator signature. */
static void *
decode_alloc(size_t size)
{
	return palloc(size);
}

/* Decode options from the (lon text, region gik.bbox) arguments at positions lon_arg and lon_arg+1. */
void
gik_decode_options_from_args(FunctionCallInfo fcinfo, int lon_arg, GikDecodeOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->lon = GIK_LON_SOURCE;
	if (PG_NARGS() > lon_arg && !PG_ARGISNULL(lon_arg))
	{
		char	   *lon = text_to_cstring(PG_GETARG_TEXT_PP(lon_arg));

		if (!gik_lon_convention_parse(lon, &opts->lon))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid longitude convention \"%s\"", lon),
							errhint("Use 'source', '-180..180' or '0..360'.")));
	}
	if (PG_NARGS() > lon_arg + 1 && !PG_ARGISNULL(lon_arg + 1))
	{
		HeapTupleHeader box = PG_GETARG_HEAPTUPLEHEADER(lon_arg + 1);
		double	   *fields[4] = {&opts->box.lon_min, &opts->box.lat_min, &opts->box.lon_max, &opts->box.lat_max};

		for (int i = 0; i < 4; i++)
		{
			bool		isnull;
			Datum		d = GetAttributeByNum(box, i + 1, &isnull);

			if (isnull)
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								errmsg("region has a NULL bound"),
								errdetail("A region is gik.bbox(lon_min, lat_min, lon_max, lat_max) with no NULL.")));
			*fields[i] = DatumGetFloat8(d);
		}
		opts->has_box = true;
	}
}

/* A gik.grid_desc row for a decoded message: the output grid when regular or projected, else the message's own. */
Datum
gik_grid_desc_datum(TupleDesc tupdesc, const GikDecoded *dec)
{
	Datum		v[11];
	bool		n[11] = {0};
	const GikGrid *src = &dec->meta.grid;

	v[0] = CStringGetTextDatum(src->grid_type[0] ? src->grid_type : "unknown");
	if (dec->regular)
	{
		const GikOutGrid *g = &dec->out;

		v[1] = Int32GetDatum((int32) g->ni);
		v[2] = Int32GetDatum((int32) g->nj);
		v[3] = Float8GetDatum(g->lat_first);
		v[4] = Float8GetDatum(g->lon_first);
		v[5] = Float8GetDatum(g->lat_last);
		v[6] = Float8GetDatum(g->lon_last);
		v[7] = Float8GetDatum(g->di);
		v[8] = Float8GetDatum(g->dj);
		v[9] = Int32GetDatum(0);
		n[10] = true;
		if (gik_outgrid_projected(g))
		{
			GikGrid		pg = {.proj = g->proj};

			gik_grid_proj_datum(&pg, &v[10], &n[10]);
		}
	}
	else
	{
		double		f[6] = {src->lat_first, src->lon_first, src->lat_last, src->lon_last, src->di, src->dj};

		v[1] = Int32GetDatum((int32) src->ni);
		n[1] = src->ni < 0;
		v[2] = Int32GetDatum((int32) src->nj);
		n[2] = src->nj < 0;
		for (int i = 0; i < 6; i++)
		{
			v[3 + i] = Float8GetDatum(f[i]);
			n[3 + i] = isnan(f[i]);
		}
		v[9] = Int32GetDatum((int32) src->scanning_mode);
		gik_grid_proj_datum(src, &v[10], &n[10]);
	}
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n));
}

/* Fetch one referenced message, check its framing and decode it in a decoder process; raises on any failure. */
static void
fetch_and_decode(FunctionCallInfo fcinfo, GikDecodeJob *job)
{
	GikFetch	f = {0};

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
		gik_raise_decode_error(job->url, job->offset, job->length, job->status, job->errbuf);
}

/* gik.decode(url, byte_offset, byte_length, lon, region): one message as real[] [nj][ni], north-up. */
Datum
gik_decode(PG_FUNCTION_ARGS)
{
	GikDecodeJob job = {0};

	if (gik_required_null(fcinfo, 3))
		PG_RETURN_NULL();
	fetch_and_decode(fcinfo, &job);
	PG_RETURN_ARRAYTYPE_P(job.values);
}

/* bytea holding an RFC2 raster of nbands bands; raises when the grid is too large for a raster. */
static bytea *
raster_bytea(const GikOutGrid *g, const float *values, int nbands, int srid)
{
	size_t		size;
	bytea	   *out;

	if (g->ni > 65535 || g->nj > 65535)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a raster of %ld x %ld pixels is too large", g->ni, g->nj),
						errdetail("PostGIS rasters have at most 65535 pixels per side.")));
	size = gik_raster_wkb_size(g->ni, g->nj, nbands);
	if (!AllocSizeIsValid(size + VARHDRSZ))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a raster of %zu bytes is too large", size)));
	out = palloc(size + VARHDRSZ);
	SET_VARSIZE(out, size + VARHDRSZ);
	gik_raster_wkb_write(g, values, nbands, srid, (unsigned char *) VARDATA(out));
	return out;
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

	if (gik_required_null(fcinfo, 3))
		PG_RETURN_NULL();
	fetch_and_decode(fcinfo, &job);
	raster_check(&job);
	PG_RETURN_BYTEA_P(raster_bytea(&job.dec.out, (const float *) ARR_DATA_PTR(job.values), 1,
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

	if (gik_required_null(fcinfo, 3))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	fetch_and_decode(fcinfo, &job);
	raster_check(&job);
	projected = gik_outgrid_projected(&job.dec.out);
	v[0] = PointerGetDatum(raster_bytea(&job.dec.out, (const float *) ARR_DATA_PTR(job.values), 1,
										projected ? 0 : 4326));
	n[1] = true;
	if (projected)
	{
		GikGrid		pg = {.proj = job.dec.out.proj};

		gik_grid_proj_datum(&pg, &v[1], &n[1]);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n)));
}

/* Source grid from a gik.grid_desc argument. */
void
gik_grid_from_desc(HeapTupleHeader desc, GikGrid *g)
{
	bool		isnull;
	Datum		d;
	double	   *dst[6] = {&g->lat_first, &g->lon_first, &g->lat_last, &g->lon_last, &g->di, &g->dj};

	memset(g, 0, sizeof(*g));
	d = GetAttributeByNum(desc, 1, &isnull);
	strlcpy(g->grid_type, isnull ? "unknown" : TextDatumGetCString(d), sizeof(g->grid_type));
	d = GetAttributeByNum(desc, 2, &isnull);
	g->ni = isnull ? -1 : DatumGetInt32(d);
	d = GetAttributeByNum(desc, 3, &isnull);
	g->nj = isnull ? -1 : DatumGetInt32(d);
	for (int i = 0; i < 6; i++)
	{
		d = GetAttributeByNum(desc, 4 + i, &isnull);
		*dst[i] = isnull ? NAN : DatumGetFloat8(d);
	}
	d = GetAttributeByNum(desc, 10, &isnull);
	g->scanning_mode = isnull ? 0 : DatumGetInt32(d);
	g->i_scans_negatively = (g->scanning_mode & 0x80) != 0;
	g->j_scans_positively = (g->scanning_mode & 0x40) != 0;
	g->j_points_consecutive = (g->scanning_mode & 0x20) != 0;
	g->alternate_rows = (g->scanning_mode & 0x10) != 0;
	g->num_points = g->ni > 0 && g->nj > 0 ? g->ni * g->nj : -1;
	d = GetAttributeByNum(desc, 11, &isnull);
	if (!isnull)
		gik_grid_proj_from_text(TextDatumGetCString(d), g);
}

/* Plan a source grid description for a convention and region; raises when unsupported. */
static void
plan_from_desc(FunctionCallInfo fcinfo, GikGridPlan *plan, GikDecoded *as_decoded)
{
	GikDecodeOptions opts;
	char		errbuf[256];

	gik_decode_options_from_args(fcinfo, 1, &opts);
	memset(as_decoded, 0, sizeof(*as_decoded));
	gik_grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(0), &as_decoded->meta.grid);
	if (!gik_grid_is_regular_ll(&as_decoded->meta.grid) && as_decoded->meta.grid.proj.kind == GIK_PROJ_NONE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("grid type %s is not supported for regions, longitude conventions or coordinates",
							   as_decoded->meta.grid.grid_type),
						errdetail("Regular latitude/longitude and projected grids (with their proj) are supported; Gaussian grids have coordinates only, without lon or region.")));
	if (!gik_grid_plan(&as_decoded->meta.grid, opts.lon, opts.has_box ? &opts.box : NULL,
					   decode_alloc, plan, errbuf, sizeof(errbuf)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cannot lay out this grid as asked"),
						errdetail("%s", errbuf)));
	as_decoded->regular = true;
	as_decoded->out = plan->out;
}

/* gik.output_grid(grid gik.grid_desc, lon, region): the grid a decode with these options returns, without fetching. */
Datum
gik_output_grid(PG_FUNCTION_ARGS)
{
	GikGridPlan plan;
	GikDecoded	as_decoded;
	TupleDesc	tupdesc;

	if (gik_required_null(fcinfo, 1))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	plan_from_desc(fcinfo, &plan, &as_decoded);
	PG_RETURN_DATUM(gik_grid_desc_datum(tupdesc, &as_decoded));
}

/* float8[] from doubles. */
static ArrayType *
double_array(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * Coordinates of a Gaussian grid (rows or points, without lon or region) or of a projected
 * grid (float8[nj][ni], north-up, after the region); NULL for a regular lat/lon grid.
 */
static ArrayType *
gaussian_or_projected_coords(FunctionCallInfo fcinfo, bool want_lats)
{
	GikGrid		g;
	GikGridPlan plan;
	GikDecoded	as_decoded;
	Datum	   *d;
	int			dims[2];
	int			lbs[2] = {1, 1};
	size_t		k = 0;

	gik_grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(0), &g);
	if (gik_grid_is_gaussian(&g))
	{
		if ((PG_NARGS() > 1 && !PG_ARGISNULL(1) && strcmp(text_to_cstring(PG_GETARG_TEXT_PP(1)), "source") != 0) ||
			(PG_NARGS() > 2 && !PG_ARGISNULL(2)))
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("a %s grid takes no longitude convention or region", g.grid_type),
							errdetail("Regrid it to a regular grid first.")));
		return gik_gaussian_coords(&g, want_lats);
	}
	if (g.proj.kind == GIK_PROJ_NONE)
		return NULL;
	plan_from_desc(fcinfo, &plan, &as_decoded);
	if ((size_t) plan.out.ni * (size_t) plan.out.nj > MaxAllocSize / sizeof(Datum))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("the grid is too large for coordinates")));
	d = palloc(sizeof(Datum) * (size_t) plan.out.ni * (size_t) plan.out.nj);
	for (long r = 0; r < plan.out.nj; r++)
	{
		CHECK_FOR_INTERRUPTS();
		for (long c = 0; c < plan.out.ni; c++)
		{
			double		lon,
						lat;

			gik_outgrid_cell_lonlat(&plan.out, r, c, &lon, &lat);
			d[k++] = Float8GetDatum(want_lats ? lat : lon);
		}
	}
	dims[0] = (int) plan.out.nj;
	dims[1] = (int) plan.out.ni;
	return construct_md_array(d, NULL, 2, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* gik.grid_lats(grid, lon, region): latitudes of the rows, north to south. */
Datum
gik_grid_lats(PG_FUNCTION_ARGS)
{
	GikGridPlan plan;
	GikDecoded	as_decoded;
	double	   *lats;
	ArrayType  *coords;

	if (gik_required_null(fcinfo, 1))
		PG_RETURN_NULL();
	if ((coords = gaussian_or_projected_coords(fcinfo, true)) != NULL)
		PG_RETURN_ARRAYTYPE_P(coords);
	plan_from_desc(fcinfo, &plan, &as_decoded);
	lats = palloc(sizeof(double) * plan.out.nj);
	gik_outgrid_lats(&plan.out, lats);
	PG_RETURN_ARRAYTYPE_P(double_array(lats, (int) plan.out.nj));
}

/* gik.grid_lons(grid, lon, region): longitudes of the columns, west to east. */
Datum
gik_grid_lons(PG_FUNCTION_ARGS)
{
	GikGridPlan plan;
	GikDecoded	as_decoded;
	double	   *lons;
	ArrayType  *coords;

	if (gik_required_null(fcinfo, 1))
		PG_RETURN_NULL();
	if ((coords = gaussian_or_projected_coords(fcinfo, false)) != NULL)
		PG_RETURN_ARRAYTYPE_P(coords);
	plan_from_desc(fcinfo, &plan, &as_decoded);
	lons = palloc(sizeof(double) * plan.out.ni);
	gik_outgrid_lons(&plan.out, lons);
	PG_RETURN_ARRAYTYPE_P(double_array(lons, (int) plan.out.ni));
}

/* gik.grid_wkb(vals real[], grid gik.grid_desc, srid): any north-up grid (or stack of grids) as raster WKB. */
Datum
gik_grid_wkb(PG_FUNCTION_ARGS)
{
	ArrayType  *vals = PG_GETARG_ARRAYTYPE_P(0);
	GikGrid		g;
	GikOutGrid	out;
	int			nbands;
	int			ndim = ARR_NDIM(vals);
	int		   *dims = ARR_DIMS(vals);
	float	   *data;
	int			n;

	if (ARR_ELEMTYPE(vals) != FLOAT4OID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("grid values must be real[]")));
	gik_grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(1), &g);
	if ((!gik_grid_is_regular_ll(&g) && g.proj.kind == GIK_PROJ_NONE) || g.scanning_mode != 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("only north-up regular latitude/longitude and projected grids become rasters"),
						errdetail("The grid is %s with scanning mode %ld.", g.grid_type, g.scanning_mode)));
	if (ndim < 2 || ndim > 3 || dims[ndim - 1] != g.ni || dims[ndim - 2] != g.nj)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("grid values do not match the grid description"),
						errdetail("Expected [%ld][%ld] or [bands][%ld][%ld] values for a %ld x %ld grid.",
								  g.nj, g.ni, g.nj, g.ni, g.ni, g.nj)));
	nbands = ndim == 3 ? dims[0] : 1;
	n = ArrayGetNItems(ndim, dims);
	if (ARR_HASNULL(vals))
	{
		bits8	   *bitmap = ARR_NULLBITMAP(vals);
		float	   *src = (float *) ARR_DATA_PTR(vals);

		data = palloc(sizeof(float) * n);
		for (int i = 0; i < n; i++)
			data[i] = (bitmap[i / 8] & (1 << (i % 8))) ? *src++ : NAN;
	}
	else
		data = (float *) ARR_DATA_PTR(vals);
	memset(&out, 0, sizeof(out));
	if (g.proj.kind != GIK_PROJ_NONE)
	{
		GikGridPlan plan;
		char		errbuf[256];

		if (!gik_grid_plan(&g, GIK_LON_SOURCE, NULL, decode_alloc, &plan, errbuf, sizeof(errbuf)))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("cannot lay out this grid as asked"), errdetail("%s", errbuf)));
		if (PG_GETARG_INT32(2) == 4326)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("a %s grid's raster is in metres, not in SRID 4326", g.grid_type),
							errhint("Pass srid => gik.proj_srid((grid).proj) (pg_gik_postgis).")));
		PG_RETURN_BYTEA_P(raster_bytea(&plan.out, data, nbands, PG_GETARG_INT32(2)));
	}
	out.ni = g.ni;
	out.nj = g.nj;
	out.lat_first = g.lat_first;
	out.lon_first = g.lon_first;
	out.lat_last = g.lat_last;
	out.lon_last = g.lon_last;
	out.di = g.di;
	out.dj = g.dj;
	PG_RETURN_BYTEA_P(raster_bytea(&out, data, nbands, PG_GETARG_INT32(2)));
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
