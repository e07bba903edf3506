/* A small thread pool for pure computation. */
#include "core/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

typedef struct PoolTask
{
	GikTaskFn	fn;
	void	   *arg;
	struct PoolTask *next;
} PoolTask;

struct GikPool
{
	pthread_mutex_t lock;
	pthread_cond_t work_ready;	/* a task was queued, or stopping */
	pthread_cond_t work_done;	/* a task finished */
	PoolTask   *queue_head;
	PoolTask   *queue_tail;
	PoolTask   *done_head;
	PoolTask   *done_tail;
	int			outstanding;
	bool		stopping;
	int			nthreads;
	pthread_t  *threads;
};

/* Append a task to a list. */
static void
list_push(PoolTask **head, PoolTask **tail, PoolTask *t)
{
	t->next = NULL;
	if (*tail)
		(*tail)->next = t;
	else
		*head = t;
	*tail = t;
}

/* Remove the first task of a list (NULL if empty). */
static PoolTask *
list_pop(PoolTask **head, PoolTask **tail)
{
	PoolTask   *t = *head;

	if (t)
	{
		*head = t->next;
		if (!*head)
			*tail = NULL;
	}
	return t;
}

/* Thread body: run queued tasks until stopping. */
static void *
worker_main(void *arg)
{
	GikPool    *pool = (GikPool *) arg;

	pthread_mutex_lock(&pool->lock);
	for (;;)
	{
		PoolTask   *t;

		while (!pool->stopping && !pool->queue_head)
			pthread_cond_wait(&pool->work_ready, &pool->lock);
		if (pool->stopping)
			break;
		t = list_pop(&pool->queue_head, &pool->queue_tail);
		pthread_mutex_unlock(&pool->lock);
		t->fn(t->arg);
		pthread_mutex_lock(&pool->lock);
		list_push(&pool->done_head, &pool->done_tail, t);
		pthread_cond_signal(&pool->work_done);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Start the threads with all signals blocked. */
GikPool *
gik_pool_create(int nthreads)
{
	GikPool    *pool = calloc(1, sizeof(GikPool));
	sigset_t	all,
				old;

	if (!pool)
		return NULL;
	pool->threads = calloc((size_t) (nthreads > 0 ? nthreads : 1), sizeof(pthread_t));
	if (!pool->threads)
	{
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work_ready, NULL);
	pthread_cond_init(&pool->work_done, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < nthreads; i++)
	{
		if (pthread_create(&pool->threads[pool->nthreads], NULL, worker_main, pool) != 0)
			break;
		pool->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pool->nthreads == 0)
	{
		gik_pool_destroy(pool, NULL);
		return NULL;
	}
	return pool;
}

/* Queue a task. */
bool
gik_pool_submit(GikPool *pool, GikTaskFn fn, void *task)
{
	PoolTask   *t = malloc(sizeof(PoolTask));

	if (!t)
		return false;
	t->fn = fn;
	t->arg = task;
	pthread_mutex_lock(&pool->lock);
	list_push(&pool->queue_head, &pool->queue_tail, t);
	pool->outstanding++;
	pthread_cond_signal(&pool->work_ready);
	pthread_mutex_unlock(&pool->lock);
	return true;
}

/* Take a finished task, waiting at most timeout_ms. */
void *
gik_pool_take(GikPool *pool, long timeout_ms)
{
	PoolTask   *t;
	void	   *arg = NULL;
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L)
	{
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool->lock);
	while (!pool->done_head && timeout_ms > 0)
		if (pthread_cond_timedwait(&pool->work_done, &pool->lock, &deadline) == ETIMEDOUT)
			break;
	t = list_pop(&pool->done_head, &pool->done_tail);
	if (t)
		pool->outstanding--;
	pthread_mutex_unlock(&pool->lock);
	if (t)
	{
		arg = t->arg;
		free(t);
	}
	return arg;
}

/* Tasks submitted and not yet taken. */
int
gik_pool_outstanding(GikPool *pool)
{
	int			n;

	pthread_mutex_lock(&pool->lock);
	n = pool->outstanding;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

/* Stop and free the pool; queued tasks are dropped without running, finished ones discarded. */
void
gik_pool_destroy(GikPool *pool, GikTaskFn discard)
{
	PoolTask   *t;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	while ((t = list_pop(&pool->queue_head, &pool->queue_tail)) != NULL)
		free(t);
	pthread_cond_broadcast(&pool->work_ready);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	while ((t = list_pop(&pool->done_head, &pool->done_tail)) != NULL)
	{
		if (discard)
			discard(t->arg);
		free(t);
	}
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->work_ready);
	pthread_cond_destroy(&pool->work_done);
	free(pool->threads);
	free(pool);
}
