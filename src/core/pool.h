/* A small thread pool for pure computation (no PostgreSQL calls): submit tasks, collect finished ones. */
#ifndef GIK_CORE_POOL_H
#define GIK_CORE_POOL_H

#include <stdbool.h>

typedef struct GikPool GikPool;

/* Work done on a pool thread; must not call into PostgreSQL. */
typedef void (*GikTaskFn) (void *task);

/*
 * Start nthreads threads with every signal blocked, so signals keep going to the
 * calling thread. Returns NULL when no thread could be started.
 */
extern GikPool *gik_pool_create(int nthreads);

/* Queue a task; returns false when out of memory. */
extern bool gik_pool_submit(GikPool *pool, GikTaskFn fn, void *task);

/* A finished task, or NULL when none finished within timeout_ms (0: do not wait). */
extern void *gik_pool_take(GikPool *pool, long timeout_ms);

/* Tasks submitted and not yet taken. */
extern int	gik_pool_outstanding(GikPool *pool);

/*
 * Drop queued tasks, wait for running ones, join the threads and free the pool.
 * discard (may be NULL) is called, on the calling thread, for every task that
 * finished but was not taken, so its results can be freed.
 */
extern void gik_pool_destroy(GikPool *pool, GikTaskFn discard);

#endif
