/* Starting a decoder process and talking to it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/decoder_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Write a sentence naming the failed step and return the errno value. */
static int
fail(int code, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: %s.", what, strerror(code));
	return code;
}

/* Close a descriptor if open and mark it closed. */
static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The environment a decoder gets: the ECCODES_* variables of this process, nothing else. */
static char **
decoder_environment(void)
{
	size_t		n = 0;
	char	  **env;

	for (char **e = environ; e && *e; e++)
		n++;
	env = calloc(n + 1, sizeof(char *));
	if (!env)
		return NULL;
	n = 0;
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "ECCODES_", 8) == 0)
			env[n++] = *e;
	return env;
}

/* Milliseconds on a monotonic clock. */
static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Read exactly n bytes from a non-blocking descriptor within timeout_ms; false on EOF, error or time-out. */
static bool
read_within(int fd, void *buf, size_t n, int timeout_ms)
{
	unsigned char *p = buf;
	long		deadline = now_ms() + timeout_ms;

	while (n > 0)
	{
		struct pollfd pfd = {fd, POLLIN, 0};
		long		left = deadline - now_ms();
		ssize_t		r;

		if (left <= 0 || poll(&pfd, 1, (int) left) <= 0)
			return false;
		r = read(fd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t) r;
	}
	return true;
}

/* Map (or remap) the region at its current size. */
static bool
map_region(GikDecoderProc *p, size_t size)
{
	void	   *m;

	if (p->shm)
		munmap(p->shm, p->shm_size);
	p->shm = NULL;
	p->shm_size = 0;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, p->shm_fd, 0);
	if (m == MAP_FAILED)
		return false;
	p->shm = m;
	p->shm_size = size;
	return true;
}

/* Start a decoder; see decoder_proc.h. */
int
gik_decoder_proc_start(GikDecoderProc *p, const char *path, long memory_limit_mb,
					   size_t shm_size, int timeout_ms, char *err, size_t errlen)
{
	int			req[2] = {-1, -1};
	int			rsp[2] = {-1, -1};
	char		limit[32];
	char	   *argv[] = {(char *) path, "--memory-limit", limit, NULL};
	char	  **env = NULL;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t	none,
				all;
	int			rc;

	memset(p, 0, sizeof(*p));
	p->to_fd = p->from_fd = p->shm_fd = -1;
	snprintf(limit, sizeof(limit), "%ld", memory_limit_mb);
	if (access(path, X_OK) != 0)
		return fail(errno, err, errlen, "the decoder program cannot be run");
	p->shm_fd = memfd_create("pg_gik_decoder", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (p->shm_fd < 0)
		return fail(errno, err, errlen, "could not create the shared region");
	if (ftruncate(p->shm_fd, (off_t) shm_size) != 0 ||
		fcntl(p->shm_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0 || !map_region(p, shm_size))
	{
		rc = fail(errno, err, errlen, "could not size the shared region");
		goto failed;
	}
	if (pipe2(req, O_CLOEXEC) != 0 || pipe2(rsp, O_CLOEXEC) != 0)
	{
		rc = fail(errno, err, errlen, "could not create pipes");
		goto failed;
	}
	env = decoder_environment();
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, req[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&actions, rsp[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&actions, p->shm_fd, GIK_DECODER_SHM_FD);
	/* the server log may be a file, which the decoder may not write: codecs' chatter is dropped */
	posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&actions, GIK_DECODER_SHM_FD + 1);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = env ? posix_spawn(&p->pid, path, &actions, &attr, argv, env) : ENOMEM;
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	free(env);
	close_fd(&req[0]);
	close_fd(&rsp[1]);
	if (rc != 0)
	{
		p->pid = 0;
		fail(rc, err, errlen, "could not start the decoder program");
		goto failed;
	}
	p->to_fd = req[1];
	p->from_fd = rsp[0];
	req[1] = rsp[0] = -1;
	fcntl(p->from_fd, F_SETFL, O_NONBLOCK);
	if (!read_within(p->from_fd, &p->hello, sizeof(p->hello), timeout_ms) ||
		p->hello.magic != GIK_DECODER_MAGIC || p->hello.version != GIK_DECODER_VERSION)
	{
		int			status = 0;
		char		how[96];

		gik_decoder_proc_kill(p, &status);
		gik_decoder_exit_text(status, how, sizeof(how));
		snprintf(err, errlen, "The decoder program did not start: it %s before it said hello.", how);
		return ECHILD;
	}
	p->hello.detail[sizeof(p->hello.detail) - 1] = '\0';
	return 0;

failed:
	close_fd(&req[0]);
	close_fd(&req[1]);
	close_fd(&rsp[0]);
	close_fd(&rsp[1]);
	gik_decoder_proc_kill(p, NULL);
	return rc;
}

/* Grow the region; see decoder_proc.h. */
bool
gik_decoder_proc_grow(GikDecoderProc *p, size_t size)
{
	if (size <= p->shm_size)
		return true;
	size = (size + 1024 * 1024 - 1) & ~(size_t) (1024 * 1024 - 1);
	return ftruncate(p->shm_fd, (off_t) size) == 0 && map_region(p, size);
}

/* Release the region's pages past keep bytes. */
void
gik_decoder_proc_trim(GikDecoderProc *p, size_t keep)
{
	if (p->shm_fd >= 0 && p->shm_size > keep)
		fallocate(p->shm_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) keep,
				  (off_t) (p->shm_size - keep));
}

/* Send a request (smaller than PIPE_BUF, so one write). */
bool
gik_decoder_proc_send(GikDecoderProc *p, const GikDecoderRequest *req)
{
	ssize_t		w;

	p->rlen = 0;
	do
		w = write(p->to_fd, req, sizeof(*req));
	while (w < 0 && errno == EINTR);
	return w == (ssize_t) sizeof(*req);
}

/* Read what is there of a response; see decoder_proc.h. */
int
gik_decoder_proc_receive(GikDecoderProc *p, GikDecoderResponse *rsp, char *log, size_t logcap)
{
	for (;;)
	{
		size_t		want = sizeof(GikDecoderResponse);
		ssize_t		r;

		if (p->rlen >= want)
		{
			const GikDecoderResponse *head = (const GikDecoderResponse *) p->rbuf;

			if (head->magic != GIK_DECODER_MAGIC || head->log_len > GIK_DECODER_LOG_MAX)
				return -1;
			want += head->log_len;
			if (p->rlen == want)
			{
				size_t		n = head->log_len < logcap ? head->log_len : (logcap > 0 ? logcap - 1 : 0);

				memcpy(rsp, p->rbuf, sizeof(*rsp));
				if (logcap > 0)
				{
					memcpy(log, p->rbuf + sizeof(*rsp), n);
					log[n] = '\0';
				}
				p->rlen = 0;
				return 1;
			}
		}
		r = read(p->from_fd, p->rbuf + p->rlen, want - p->rlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0)
			return -1;
		p->rlen += (size_t) r;
	}
}

/* Kill and reap; see decoder_proc.h. */
void
gik_decoder_proc_kill(GikDecoderProc *p, int *wstatus)
{
	int			status = 0;

	if (p->pid > 0)
	{
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (wstatus)
		*wstatus = status;
	p->pid = 0;
	close_fd(&p->to_fd);
	close_fd(&p->from_fd);
	close_fd(&p->shm_fd);
	if (p->shm)
		munmap(p->shm, p->shm_size);
	p->shm = NULL;
	p->shm_size = 0;
	p->rlen = 0;
}

/* Describe a wait status. */
void
gik_decoder_exit_text(int wstatus, char *buf, size_t len)
{
	if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
	else if (WIFEXITED(wstatus))
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(wstatus));
	else
		snprintf(buf, len, "stopped");
}
