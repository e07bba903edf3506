/* Locking the decoder process down before it reads a message (decoder program only). */
#ifndef GIK_DECODER_SANDBOX_H
#define GIK_DECODER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct GikSandboxReport
{
	int			landlock_abi;	/* 0 when the kernel has no Landlock */
	bool		seccomp;
	char		detail[200];	/* what is in force, or why entering failed */
} GikSandboxReport;

/*
 * Enter the sandbox, for good: every descriptor above 3 closed; no core dumps, no file
 * writes, few descriptors and memory_limit bytes of address space (0: no limit); no new
 * privileges; with Landlock (where the kernel has it) no file access but reading under the
 * colon-separated read_paths (ecCodes' definitions), no TCP and no signals outside the
 * process; and a seccomp filter that allows the system calls decoding needs, writes only to
 * stdout and stderr, opens only for reading, and nothing that makes sockets, runs programs,
 * starts processes or signals another process. Returns false with the reason in report.
 */
extern bool gik_sandbox_enter(size_t memory_limit, const char *read_paths, GikSandboxReport *report);

/*
 * After gik_sandbox_enter: try one forbidden thing (socket, connect, write-file PATH,
 * read-file PATH, exec, fork, kill-parent, mmap-exec, alloc MB) and say on stdout what happened.
 * Exits 0 when it was refused (or, for alloc, failed), 1 when it went through; the seccomp
 * filter may also kill the process, which the caller sees as SIGSYS.
 */
extern int	gik_sandbox_selftest(const char *what, const char *arg);

#endif
