/* ecCodes assertion guard: a failed assertion jumps out of the guarded call instead of aborting. */
#include "decoder/eccodes_guard.h"

#include <eccodes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static __thread jmp_buf *assert_jump = NULL;
static __thread char assert_text[200];
static pthread_once_t assert_once = PTHREAD_ONCE_INIT;

/* ecCodes assertion handler: leave the guarded call, or abort as ecCodes would outside one. */
static void
on_eccodes_assertion(const char *message)
{
	if (assert_jump != NULL)
	{
		snprintf(assert_text, sizeof(assert_text), "%s", message);
		longjmp(*assert_jump, 1);
	}
	fprintf(stderr, "%s\n", message);
	abort();
}

/* Install the assertion handler (once per process). */
static void
install_assertion_handler(void)
{
	codes_set_codes_assertion_failed_proc(on_eccodes_assertion);
}

/* Run fn(arg) under the guard; see eccodes_guard.h. */
bool
gik_eccodes_guarded(void (*fn) (void *arg), void *arg, char *what, size_t whatlen)
{
	jmp_buf    *volatile outer = assert_jump;
	jmp_buf		jump;

	pthread_once(&assert_once, install_assertion_handler);
	if (setjmp(jump) != 0)
	{
		/* ecCodes' scratch buffers of the interrupted call are lost */
		assert_jump = outer;
		snprintf(what, whatlen, "%s", assert_text);
		return false;
	}
	assert_jump = &jump;
	fn(arg);
	assert_jump = outer;
	return true;
}
