/* Composite and option arguments shared by the SQL areas: decode options and grid descriptions. */
#include "postgres.h"

#include <math.h>

#include "executor/executor.h"
#include "utils/builtins.h"

#include "args.h"
#include "core/proj.h"

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

/* Read a grid description's proj text into grid (raises naming the text when it is not valid). */
void
gik_grid_proj_from_text(const char *text, GikGrid *grid)
{
	char		errbuf[256];

	if (!gik_proj_parse(text, grid, errbuf, sizeof(errbuf)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("grid description has an invalid proj"),
						errdetail("%s", errbuf)));
}

/* True when the grid is a Gaussian grid (regular_gg, reduced_gg) that has coordinates. */
bool
gik_grid_is_gaussian(const GikGrid *grid)
{
	return grid->gauss_n > 0 &&
		(strcmp(grid->grid_type, "regular_gg") == 0 || strcmp(grid->grid_type, "reduced_gg") == 0);
}
