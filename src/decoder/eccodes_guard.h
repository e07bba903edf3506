/* Run ecCodes calls with its failed assertions turned into errors: decoder program only. */
#ifndef GIK_DECODER_ECCODES_GUARD_H
#define GIK_DECODER_ECCODES_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Run fn(arg) on this thread. ecCodes reacts to some malformed messages with a failed
 * assertion, which by default calls abort() and takes the whole server down; inside fn a
 * failed assertion instead leaves fn and makes this return false with ecCodes' text in
 * what. Whatever fn allocated must be reachable from arg so the caller can free it.
 * Returns true when fn ran to its end.
 */
extern bool gik_eccodes_guarded(void (*fn) (void *arg), void *arg, char *what, size_t whatlen);

#endif
