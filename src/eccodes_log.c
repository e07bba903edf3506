/* Route ecCodes' own messages to the server log at DEBUG1 instead of stderr. */
#include "postgres.h"

#include <eccodes.h>

#include "eccodes_log.h"

#define LOG_BUF_SIZE 2048

/* Messages of this thread since the last flush; ecCodes may call from decode threads. */
static __thread char log_buf[LOG_BUF_SIZE];
static __thread size_t log_len = 0;
static bool log_installed = false;

/* Append one message; never raises, as it runs inside ecCodes. */
static void
capture(const char *mesg)
{
	size_t		n = strlen(mesg);

	if (log_len + n + 2 >= LOG_BUF_SIZE)
		return;
	memcpy(log_buf + log_len, mesg, n);
	log_len += n;
	log_buf[log_len++] = '\n';
	log_buf[log_len] = '\0';
}

/* ecCodes logging procedure. */
static void
capture_log(const grib_context *c, int level, const char *mesg)
{
	capture(mesg);
}

/* ecCodes printing procedure (dumps, debug prints). */
static void
capture_print(const grib_context *c, void *descriptor, const char *mesg)
{
	capture(mesg);
}

/* Install the capturing procedures once. */
void
gik_eccodes_log_init(void)
{
	codes_context *ctx;

	if (log_installed)
		return;
	ctx = codes_context_get_default();
	codes_context_set_logging_proc(ctx, capture_log);
	codes_context_set_print_proc(ctx, capture_print);
	log_installed = true;
}

/* Emit captured messages at DEBUG1. */
void
gik_eccodes_log_flush(void)
{
	if (log_len == 0)
		return;
	log_len = 0;
	elog(DEBUG1, "ecCodes: %s", log_buf);
}
