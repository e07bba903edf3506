/* Datum builders shared by the backend glue. */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/memutils.h"

#include "datums.h"

/* A real[] from floats: 2-D [nj][ni] when both are given, else 1-D. */
ArrayType *
gik_float_array(const float *values, size_t n, long nj, long ni)
{
	int			ndims = (nj > 0 && ni > 0 && (size_t) (nj * ni) == n) ? 2 : 1;
	int			dims[2];
	int			lbs[2] = {1, 1};
	Size		nbytes;
	Size		size;
	ArrayType  *a;

	if (n > MaxAllocSize / sizeof(float))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a grid of %zu values is too large for one array", n)));
	nbytes = (Size) n * sizeof(float);
	size = ARR_OVERHEAD_NONULLS(ndims) + nbytes;
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
