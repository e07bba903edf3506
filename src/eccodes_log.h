/* Route ecCodes' own messages to the server log at DEBUG1 instead of stderr. */
#ifndef GIK_ECCODES_LOG_H
#define GIK_ECCODES_LOG_H

/* Install the capturing log procedures in ecCodes' default context (once per backend). */
extern void gik_eccodes_log_init(void);

/* Emit, at DEBUG1, what ecCodes said since the last flush (main thread only). */
extern void gik_eccodes_log_flush(void);

#endif
