/* Datum builders shared by the backend glue. */
#ifndef GIK_DATUMS_H
#define GIK_DATUMS_H

#include "postgres.h"

#include "utils/array.h"

/* real[] from floats, copied once: 2-D [nj][ni] when nj*ni == n, else 1-D. */
extern ArrayType *gik_float_array(const float *values, size_t n, long nj, long ni);

#endif
