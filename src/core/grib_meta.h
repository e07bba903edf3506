/* GRIB message metadata and grid description read with ecCodes: pure C, no PostgreSQL headers. */
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

/*
 * Read metadata from a handle (codes_handle *). with_names reads the ecCodes concepts too
 * (short name, name, units, parameter, level, step, date, member): they cost several
 * milliseconds per message, more than decoding a small field, so decoding skips them and
 * leaves them empty (-1 for numbers). The message must have passed gik_grib_sane: ecCodes
 * reads some keys (numberOfMissing) without bounds checks.
 */
extern void gik_meta_read(void *handle, GikMeta *meta, bool with_names);

/*
 * Read metadata from one complete message in memory, after gik_grib_sane and under the
 * ecCodes assertion guard. Returns 0 or an ecCodes error code (CODES_INVALID_MESSAGE when
 * the message fails the checks); errbuf receives a full sentence on failure.
 */
extern int	gik_meta_from_message(const void *msg, size_t len, GikMeta *meta,
								  char *errbuf, size_t errlen);

/* Key readers over a handle (codes_handle *): the value, or dflt / NaN / "" when the key is not defined or is missing. */
extern long gik_key_long(void *handle, const char *key, long dflt);
extern double gik_key_double(void *handle, const char *key);
extern void gik_key_string(void *handle, const char *key, char *out, size_t outlen);

/* True when the grid is a regular latitude/longitude grid that rasters and regions support. */
extern bool gik_grid_is_regular_ll(const GikGrid *grid);

#endif
