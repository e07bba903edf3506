/* GRIB message metadata and grid description (what ecCodes reports of a message): types only, pure C. */
#ifndef GIK_CORE_GRIB_META_H
#define GIK_CORE_GRIB_META_H

#include <stdbool.h>
#include <stddef.h>

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
	double		di;				/* i increment, NaN if not defined */
	double		dj;
	long		scanning_mode;
	bool		i_scans_negatively;
	bool		j_scans_positively;
	bool		j_points_consecutive;
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

#endif
