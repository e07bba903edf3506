/* GRIB message metadata and grid description (what ecCodes reports of a message): types only, pure C. */
#ifndef GIK_CORE_GRIB_META_H
#define GIK_CORE_GRIB_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Map projection of a grid (spherical earth only). Angles in degrees. */
typedef enum GikProjKind
{
	GIK_PROJ_NONE = 0,			/* regular_ll, Gaussian and other grids on latitude/longitude */
	GIK_PROJ_LAMBERT,			/* Lambert conformal conic (lambert) */
	GIK_PROJ_POLAR,				/* polar stereographic (polar_stereographic) */
	GIK_PROJ_MERCATOR			/* Mercator (mercator) */
} GikProjKind;

typedef struct GikProj
{
	GikProjKind kind;
	double		lat_0;			/* Lambert: LaD; polar: +-90; Mercator: 0 */
	double		lon_0;			/* LoV (Lambert, polar); Mercator: 0 */
	double		lat_1;			/* Lambert: Latin1 */
	double		lat_2;			/* Lambert: Latin2 */
	double		lat_ts;			/* polar and Mercator: LaD, latitude of true scale */
	double		radius;			/* metres */
} GikProj;

/*
 * Most rows of a reduced Gaussian grid's northern half whose point counts (pl) a grid
 * carries: a decoder's response must fit one atomic pipe write. Octahedral grids need none.
 */
#define GIK_GAUSS_PL_MAX 96

/* Grid geometry as ecCodes describes it. Angles in degrees. */
typedef struct GikGrid
{
	char		grid_type[40];	/* regular_ll, lambert, reduced_gg, ... */
	long		ni;				/* points along a parallel (-1 if not defined) */
	long		nj;				/* points along a meridian (-1 if not defined) */
	long		num_points;		/* values in the message */
	double		lat_first;
	double		lon_first;
	double		lat_last;
	double		lon_last;
	double		di;				/* i increment (metres on a projected grid), NaN if not defined */
	double		dj;
	long		scanning_mode;
	bool		i_scans_negatively;
	bool		j_scans_positively;
	bool		j_points_consecutive;
	bool		alternate_rows;	/* scanning mode bit 0x10: odd rows run the other way */
	GikProj		proj;			/* projected grids */
	long		gauss_n;		/* Gaussian grids: parallels between a pole and the equator, else 0 */
	long		gauss_rows;		/* reduced_gg: rows in pl_step; -1 octahedral (20 + 4r); 0 not carried */
	uint8_t		pl_step[GIK_GAUSS_PL_MAX];	/* reduced_gg: points of northern row r = sum of pl_step[0..r] */
} GikGrid;

/* Metadata of one message, enough to serve as a field's template. */
typedef struct GikMeta
{
	long		edition;
	char		short_name[32];
	char		name[96];
	char		units[32];
	long		param_id;
	char		type_of_level[48];
	long		level;
	char		step_range[32];
	char		step_type[16];
	long		data_date;		/* YYYYMMDD */
	long		data_time;		/* HHMM */
	long		number;			/* ensemble member, -1 if not defined */
	char		packing_type[48];
	long		bits_per_value;
	bool		bitmap_present;
	long		missing_count;
	GikGrid		grid;
} GikMeta;

/* True when the grid is a regular latitude/longitude grid that rasters and regions support. */
extern bool gik_grid_is_regular_ll(const GikGrid *grid);

/* True when the grid is a Lambert, polar stereographic or Mercator grid with usable geometry. */
extern bool gik_grid_is_projected(const GikGrid *grid);

#endif
