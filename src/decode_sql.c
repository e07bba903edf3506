/* Decoding referenced GRIB messages from SQL: single decodes, grids, coordinates and raster WKB. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "core/decode.h"
#include "core/raster_wkb.h"
#include "decode_sql.h"
#include "eccodes_log.h"
#include "fetch.h"
#include "scan_sql.h"

PG_FUNCTION_INFO_V1(gik_decode);
PG_FUNCTION_INFO_V1(gik_decode_raster_wkb);
PG_FUNCTION_INFO_V1(gik_output_grid);
PG_FUNCTION_INFO_V1(gik_grid_lats);
PG_FUNCTION_INFO_V1(gik_grid_lons);
PG_FUNCTION_INFO_V1(gik_grid_wkb);

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

/* A real[] from floats: 2-D [nj][ni] when both are given, else 1-D. */
ArrayType *
gik_float_array(const float *values, size_t n, long nj, long ni)
{
	int			ndims = (nj > 0 && ni > 0 && (size_t) (nj * ni) == n) ? 2 : 1;
	int			dims[2];
	int			lbs[2] = {1, 1};
	Size		nbytes = (Size) n * sizeof(float);
	Size		size = ARR_OVERHEAD_NONULLS(ndims) + nbytes;
	ArrayType  *a;

	if (ndims == 2)
	{
		dims[0] = (int) nj;
		dims[1] = (int) ni;
	}
	else
		dims[0] = (int) n;
	if (!AllocSizeIsValid(size))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a grid of %zu values is too large for one array", n)));
	a = (ArrayType *) palloc(size);
	SET_VARSIZE(a, size);
	a->ndim = ndims;
	a->dataoffset = 0;
	a->elemtype = FLOAT4OID;
	memcpy(ARR_DIMS(a), dims, sizeof(int) * ndims);
	memcpy(ARR_LBOUND(a), lbs, sizeof(int) * ndims);
	memcpy(ARR_DATA_PTR(a), values, nbytes);
	return a;
}

/* A gik.grid_desc row for a decoded message: the output grid when regular, else the message's own. */
Datum
gik_grid_desc_datum(TupleDesc tupdesc, const GikDecoded *dec)
{
	Datum		v[10];
	bool		n[10] = {0};
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
	}
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n));
}

/*
 * Raise the error of a failed decode, naming the URL and byte range. The one place that maps
 * decode statuses to SQLSTATEs: corrupt data XX001, an unsupported grid 0A000, memory 53200.
 */
void
gik_raise_decode_error(const char *url, int64 offset, int64 length, GikDecodeStatus status, const char *why)
{
	int			code;

	switch (status)
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
		default:
			code = ERRCODE_DATA_CORRUPTED;
			break;
	}
	ereport(ERROR, (errcode(code),
					errmsg("could not decode bytes " INT64_FORMAT "-" INT64_FORMAT " of \"%s\"",
						   offset, offset + length - 1, url),
					errdetail("%s", why)));
	pg_unreachable();
}

/* Fetch one referenced message, check its framing and decode it; raises on any failure. */
static void
fetch_and_decode(FunctionCallInfo fcinfo, const GikDecodeOptions *opts, GikDecoded *dec)
{
	GikFetch	f = {0};
	char		errbuf[256];
	GikDecodeStatus status;

	gik_fetch_message_arg(fcinfo, &f);
	status = gik_decode_message(f.data, (size_t) f.size, opts, dec, errbuf, sizeof(errbuf));
	gik_eccodes_log_flush();
	pfree(f.data);
	if (status != GIK_DECODE_OK)
		gik_raise_decode_error(f.url, f.offset, f.length, status, errbuf);
}

/* gik.decode(url, byte_offset, byte_length, lon, region): one message as real[] [nj][ni], north-up. */
Datum
gik_decode(PG_FUNCTION_ARGS)
{
	GikDecodeOptions opts;
	GikDecoded	dec;
	ArrayType  *result;

	gik_decode_options_from_args(fcinfo, 3, &opts);
	fetch_and_decode(fcinfo, &opts, &dec);
	result = gik_float_array(dec.values, dec.nvalues,
							 dec.regular ? dec.out.nj : dec.meta.grid.nj,
							 dec.regular ? dec.out.ni : dec.meta.grid.ni);
	gik_decoded_free(&dec);
	PG_RETURN_ARRAYTYPE_P(result);
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

/* gik.decode_raster_wkb(url, byte_offset, byte_length, lon, region, srid): one message as raster WKB. */
Datum
gik_decode_raster_wkb(PG_FUNCTION_ARGS)
{
	GikDecodeOptions opts;
	GikDecoded	dec;
	bytea	   *out;

	gik_decode_options_from_args(fcinfo, 3, &opts);
	fetch_and_decode(fcinfo, &opts, &dec);
	if (!dec.regular)
	{
		gik_decoded_free(&dec);
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("grid type %s is not supported for rasters", dec.meta.grid.grid_type),
						errdetail("Rasters are made from regular latitude/longitude grids."),
						errhint("Use gik.decode() to get the values in scanning order.")));
	}
	out = raster_bytea(&dec.out, dec.values, 1, PG_GETARG_INT32(5));
	gik_decoded_free(&dec);
	PG_RETURN_BYTEA_P(out);
}

/* Source grid from a gik.grid_desc argument. */
static void
grid_from_desc(HeapTupleHeader desc, GikGrid *g)
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
	g->num_points = g->ni > 0 && g->nj > 0 ? g->ni * g->nj : -1;
}

/* Plan a source grid description for a convention and region; raises when unsupported. */
static void
plan_from_desc(FunctionCallInfo fcinfo, GikGridPlan *plan, GikDecoded *as_decoded)
{
	GikDecodeOptions opts;
	char		errbuf[256];

	gik_decode_options_from_args(fcinfo, 1, &opts);
	memset(as_decoded, 0, sizeof(*as_decoded));
	grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(0), &as_decoded->meta.grid);
	if (!gik_grid_is_regular_ll(&as_decoded->meta.grid))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("grid type %s is not supported for regions, longitude conventions or coordinates",
							   as_decoded->meta.grid.grid_type),
						errdetail("Only regular latitude/longitude grids are supported.")));
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

/* gik.grid_lats(grid, lon, region): latitudes of the rows, north to south. */
Datum
gik_grid_lats(PG_FUNCTION_ARGS)
{
	GikGridPlan plan;
	GikDecoded	as_decoded;
	double	   *lats;

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
	grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(1), &g);
	if (!gik_grid_is_regular_ll(&g) || g.scanning_mode != 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("only north-up regular latitude/longitude grids become rasters"),
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
