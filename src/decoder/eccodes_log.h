/* ecCodes' own messages, captured so the backend can log them at DEBUG1 (decoder program only). */
#ifndef GIK_DECODER_ECCODES_LOG_H
#define GIK_DECODER_ECCODES_LOG_H

#include <stddef.h>

/* Install the capturing log and print procedures in ecCodes' default context. */
extern void gik_eccodes_log_init(void);

/* Copy what ecCodes said since the last call into out (NUL-terminated, truncated to cap) and forget it; returns its length. */
extern size_t gik_eccodes_log_take(char *out, size_t cap);

#endif
