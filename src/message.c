/* Fetching one referenced GRIB message and checking that the range is exactly that message. */
#include "postgres.h"

#include "utils/builtins.h"

#include "core/grib_frame.h"
#include "message.h"

void
gik_check_grib_range(const char *url, int64 offset, const unsigned char *buf, size_t len)
{
	uint64_t	total = 0;
	int			edition = 0;
	GikFrameStatus st = gik_grib_check(buf, len, &total, &edition);

	if (st != GIK_FRAME_OK)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("bytes " INT64_FORMAT "-" INT64_FORMAT " of \"%s\" are not one GRIB message",
							   offset, offset + (int64) len - 1, url),
						total > 0 ?
						errdetail("%s The GRIB header gives %llu bytes; the reference gives %zu.",
								  gik_frame_status_text(st), (unsigned long long) total, len) :
						errdetail("%s", gik_frame_status_text(st)),
						errhint("The index is stale or wrong: the file may have been replaced after it was indexed. Re-ingest the run.")));
}

void
gik_fetch_message_arg(FunctionCallInfo fcinfo, GikFetch *f)
{
	f->url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	f->mode = GIK_FETCH_RANGE;
	f->offset = PG_GETARG_INT64(1);
	f->length = PG_GETARG_INT64(2);
	gik_fetch_one(f);
	gik_check_grib_range(f->url, f->offset, (const unsigned char *) f->data, (size_t) f->size);
}
