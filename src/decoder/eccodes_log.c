/* Capture ecCodes' log and print output instead of letting it reach stderr. */
#include "decoder/eccodes_log.h"

#include <eccodes.h>
#include <string.h>

#define LOG_BUF_SIZE 2048

static char log_buf[LOG_BUF_SIZE];
static size_t log_len = 0;

/* Append one message, dropping what does not fit. */
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

/* Install the capturing procedures. */
void
gik_eccodes_log_init(void)
{
	codes_context *ctx = codes_context_get_default();

	codes_context_set_logging_proc(ctx, capture_log);
	codes_context_set_print_proc(ctx, capture_print);
}

/* Hand over and clear the captured text. */
size_t
gik_eccodes_log_take(char *out, size_t cap)
{
	size_t		n = log_len < cap ? log_len : (cap > 0 ? cap - 1 : 0);

	if (cap > 0)
	{
		memcpy(out, log_buf, n);
		out[n] = '\0';
	}
	log_len = 0;
	return n;
}
