/* The decoder's sandbox: resource limits, Landlock and a seccomp system call filter. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "decoder/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

/* Landlock rights newer than Debian 12's headers (the kernel ABI is stable). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define GIK_LANDLOCK_NET_BIND_TCP (1ULL << 0)
#define GIK_LANDLOCK_NET_CONNECT_TCP (1ULL << 1)
#define GIK_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define GIK_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)

/* landlock_ruleset_attr as of ABI 6; older kernels take a prefix of it. */
typedef struct RulesetAttr
{
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net;
	uint64_t	scoped;
} RulesetAttr;

/* Write a sentence into the report and return false. */
static bool
refuse(GikSandboxReport *report, const char *what)
{
	snprintf(report->detail, sizeof(report->detail), "%s: %s.", what, strerror(errno));
	return false;
}

/* Resource limits: address space, no core files, no file writes, few descriptors. */
static bool
set_limits(size_t memory_limit, GikSandboxReport *report)
{
	struct rlimit zero = {0, 0};
	struct rlimit files = {16, 16};

	if (memory_limit > 0)
	{
		struct rlimit as = {memory_limit, memory_limit};

		if (setrlimit(RLIMIT_AS, &as) != 0)
			return refuse(report, "could not limit the address space");
	}
	if (setrlimit(RLIMIT_CORE, &zero) != 0 || setrlimit(RLIMIT_FSIZE, &zero) != 0 ||
		setrlimit(RLIMIT_NOFILE, &files) != 0)
		return refuse(report, "could not set resource limits");
	return true;
}

/* Rights Landlock handles at an ABI: all of them, so whatever is not granted is denied. */
static uint64_t
landlock_fs_rights(int abi)
{
	uint64_t	rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;	/* ABI 1 */

	if (abi >= 2)
		rights |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return rights;
}

/* Landlock: read-only access beneath read_paths, no TCP, no signals or abstract sockets outside. */
static bool
enter_landlock(const char *read_paths, GikSandboxReport *report)
{
	RulesetAttr attr = {0};
	size_t		attr_size;
	int			abi = (int) syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int			ruleset;
	char	   *paths;

	if (abi <= 0)
	{
		report->landlock_abi = 0;
		return true;			/* no Landlock in this kernel: seccomp alone */
	}
	attr.handled_access_fs = landlock_fs_rights(abi);
	attr_size = sizeof(uint64_t);
	if (abi >= 4)
	{
		attr.handled_access_net = GIK_LANDLOCK_NET_BIND_TCP | GIK_LANDLOCK_NET_CONNECT_TCP;
		attr_size = 2 * sizeof(uint64_t);
	}
	if (abi >= 6)
	{
		attr.scoped = GIK_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | GIK_LANDLOCK_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	ruleset = (int) syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset < 0)
		return refuse(report, "could not create a Landlock ruleset");
	paths = strdup(read_paths ? read_paths : "");
	for (char *save = NULL, *dir = strtok_r(paths, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
	{
		struct landlock_path_beneath_attr rule = {
			.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR,
		};

		rule.parent_fd = open(dir, O_PATH | O_CLOEXEC);
		if (rule.parent_fd < 0)
			continue;			/* a definitions directory that does not exist gives nothing to read */
		if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
		{
			close(rule.parent_fd);
			free(paths);
			close(ruleset);
			return refuse(report, "could not add a Landlock rule");
		}
		close(rule.parent_fd);
	}
	free(paths);
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
	{
		close(ruleset);
		return refuse(report, "could not enter the Landlock ruleset");
	}
	close(ruleset);
	report->landlock_abi = abi;
	return true;
}

/* Add one rule; false when libseccomp refuses it. */
#define RULE(action, name, ...) \
	(seccomp_rule_add(ctx, (action), SCMP_SYS(name), __VA_ARGS__) == 0)

/* seccomp: what decoding needs, nothing else. Forbidden calls fail with EPERM; the dangerous ones kill. */
static bool
enter_seccomp(GikSandboxReport *report)
{
	/* system calls ecCodes, the codecs and glibc make while decoding from memory */
	static const int allowed[] = {
		SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(readv), SCMP_SYS(close), SCMP_SYS(lseek),
		SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx),
		SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(getdents64),
		SCMP_SYS(fcntl), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
		SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
		SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
		SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack),
		SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
		SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(sched_yield),
		SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
		SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getrandom), SCMP_SYS(uname),
		SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(sysinfo),
		SCMP_SYS(exit), SCMP_SYS(exit_group),
	};
	/* system calls that only an attacker makes: the process dies at once */
	static const int fatal[] = {
		SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen),
		SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom),
		SCMP_SYS(recvmsg), SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork),
		SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
		SCMP_SYS(process_vm_writev), SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(pidfd_open),
		SCMP_SYS(pidfd_send_signal), SCMP_SYS(ioperm), SCMP_SYS(iopl), SCMP_SYS(bpf),
		SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
		SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(unshare),
		SCMP_SYS(setns), SCMP_SYS(userfaultfd), SCMP_SYS(memfd_create), SCMP_SYS(io_uring_setup),
		SCMP_SYS(seccomp), SCMP_SYS(prctl), SCMP_SYS(setrlimit),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	pid_t		self = getpid();
	bool		ok = ctx != NULL;

	for (size_t i = 0; ok && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ok = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0) == 0;
	for (size_t i = 0; ok && i < sizeof(fatal) / sizeof(fatal[0]); i++)
		ok = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, fatal[i], 0) == 0;
	ok = ok &&
	/* writes go to the response pipe and stderr only */
		RULE(SCMP_ACT_ALLOW, write, 1, SCMP_A0(SCMP_CMP_EQ, STDOUT_FILENO)) &&
		RULE(SCMP_ACT_ALLOW, write, 1, SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO)) &&
		RULE(SCMP_ACT_ALLOW, writev, 1, SCMP_A0(SCMP_CMP_EQ, STDOUT_FILENO)) &&
		RULE(SCMP_ACT_ALLOW, writev, 1, SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO)) &&
	/* files open for reading only */
		RULE(SCMP_ACT_ALLOW, openat, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE, O_RDONLY)) &&
		RULE(SCMP_ACT_ALLOW, open, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE, O_RDONLY)) &&
	/* memory that is never executable */
		RULE(SCMP_ACT_ALLOW, mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) &&
		RULE(SCMP_ACT_ALLOW, mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) &&
		RULE(SCMP_ACT_KILL_PROCESS, mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)) &&
		RULE(SCMP_ACT_KILL_PROCESS, mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)) &&
	/* abort() signals this process only */
		RULE(SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) self)) &&
		RULE(SCMP_ACT_KILL_PROCESS, tgkill, 1, SCMP_A0(SCMP_CMP_NE, (scmp_datum_t) self)) &&
		seccomp_load(ctx) == 0;
	if (ctx)
		seccomp_release(ctx);
	if (!ok)
		return refuse(report, "could not install the seccomp filter");
	report->seccomp = true;
	return true;
}

/* Enter the sandbox; see sandbox.h. */
bool
gik_sandbox_enter(size_t memory_limit, const char *read_paths, GikSandboxReport *report)
{
	memset(report, 0, sizeof(*report));
	if (syscall(SYS_close_range, 4, ~0U, 0) != 0)
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
	if (!set_limits(memory_limit, report))
		return false;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return refuse(report, "could not drop privileges");
	if (!enter_landlock(read_paths, report) || !enter_seccomp(report))
		return false;
	snprintf(report->detail, sizeof(report->detail),
			 "seccomp filter on; %s; address space %zu MB; no file writes, sockets, programs or processes.",
			 report->landlock_abi > 0 ? "Landlock on (files readable only under the ecCodes definitions)" :
			 "no Landlock in this kernel (files stay readable)",
			 memory_limit / (1024 * 1024));
	return true;
}

/* Say what a self-test attempt gave; 0 when it was refused. */
static int
verdict(const char *what, bool went_through)
{
	printf("%s: %s (%s)\n", what, went_through ? "allowed" : "refused", went_through ? "ok" : strerror(errno));
	fflush(stdout);
	return went_through ? 1 : 0;
}

/* Try one forbidden thing; see sandbox.h. */
int
gik_sandbox_selftest(const char *what, const char *arg)
{
	if (strcmp(what, "write-file") == 0)
	{
		int			fd = open(arg, O_WRONLY | O_CREAT, 0600);

		return verdict(what, fd >= 0);
	}
	if (strcmp(what, "read-file") == 0)
	{
		int			fd = open(arg, O_RDONLY);
		char		c;

		return verdict(what, fd >= 0 && read(fd, &c, 1) >= 0);
	}
	if (strcmp(what, "alloc") == 0)
	{
		size_t		n = (size_t) atol(arg) * 1024 * 1024;
		char	   *p = malloc(n);

		if (p)
			memset(p, 1, n);
		return verdict(what, p != NULL);
	}
	if (strcmp(what, "kill-parent") == 0)
		return verdict(what, kill(getppid(), 0) == 0);
	if (strcmp(what, "socket") == 0)
		return verdict(what, socket(AF_INET, SOCK_STREAM, 0) >= 0);
	if (strcmp(what, "exec") == 0)
	{
		char	   *argv[] = {"/bin/true", NULL};

		execv(argv[0], argv);
		return verdict(what, false);
	}
	if (strcmp(what, "fork") == 0)
	{
		pid_t		pid = fork();

		if (pid == 0)
			_exit(0);
		return verdict(what, pid > 0);
	}
	if (strcmp(what, "mmap-exec") == 0)
		return verdict(what, mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED);
	printf("unknown self-test %s\n", what);
	return 2;
}
