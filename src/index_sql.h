/* Helpers shared by the SQL glue of the index parsers. */
#ifndef GIK_INDEX_SQL_H
#define GIK_INDEX_SQL_H

#include "postgres.h"
#include "datatype/timestamp.h"

/* UTC timestamp from calendar fields; false when out of range. */
extern bool gik_timestamp_from_parts(int year, int month, int day, int hour, int minute,
									 TimestampTz *out);

#endif
