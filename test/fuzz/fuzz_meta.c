/*
 * Message metadata: each input is framed as one GRIB message (fuzz_grib.h) and described with
 * gik_meta_from_message, as gik.scan_grib, gik.message_info and template learning do.
 * Invariants: a failure comes with a sentence; every string field is NUL-terminated.
 */
#include "decoder/eccodes_meta.h"
#include "fuzz_grib.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FzGrib		g;
	GikMeta		m;
	char		errbuf[512] = "";

	if (!fz_grib_frame(data, size, &g))
		return 0;
	if (gik_meta_from_message(g.msg, g.size, &m, errbuf, sizeof(errbuf)) == 0)
	{
		FZ_CHECK(m.edition == 1 || m.edition == 2);
		FZ_CHECK(memchr(m.short_name, 0, sizeof(m.short_name)) && memchr(m.name, 0, sizeof(m.name)) &&
				 memchr(m.units, 0, sizeof(m.units)) && memchr(m.type_of_level, 0, sizeof(m.type_of_level)) &&
				 memchr(m.step_range, 0, sizeof(m.step_range)) && memchr(m.step_type, 0, sizeof(m.step_type)) &&
				 memchr(m.packing_type, 0, sizeof(m.packing_type)) &&
				 memchr(m.grid.grid_type, 0, sizeof(m.grid.grid_type)));
		if (gik_grid_is_regular_ll(&m.grid))
			FZ_CHECK(m.grid.ni > 0 && m.grid.nj > 0);
	}
	else
		FZ_CHECK(errbuf[0] != '\0');
	fz_grib_free(&g);
	return 0;
}
