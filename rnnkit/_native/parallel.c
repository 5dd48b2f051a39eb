/* Slices of one call on several threads, built so that a call can never hang.
 *
 * A scan's batch rows are independent sequences, so each thread can run the whole scan for its
 * slice of the batch, no step waiting for another thread. The caller describes the call (which
 * kernel, how many slices, one argument list per slice) in the pool's one slot and opens it; it
 * then takes slices from a shared counter itself, as any helper that has joined does. Progress
 * never depends on a helper: the caller alone works through every slice nobody else took, then
 * closes the call and waits only for the helpers that joined, which are running a slice. A helper
 * that arrives after the close finds nothing and touches nothing. While another thread's call
 * holds the slot, a call runs its slices on its own thread instead of waiting.
 *
 * The helpers: rnnkit's own worker threads, and OpenBLAS's. After each threaded product OpenBLAS's
 * idle workers poll for ~0.1 s (a busy loop, not yielding), and a thread of rnnkit's sharing a core
 * with one gets half of it at best: a scan right after a NumPy product ran 1.8x slower on rnnkit's
 * threads than on OpenBLAS's (benchmarks/RESULTS.md, issue 25). So while an OpenBLAS worker is
 * awake (its state in /proc is R), the call is handed to it through OpenBLAS's blas_level1_thread,
 * whose items do nothing but join the call; while they sleep, rnnkit's own workers join instead.
 * Never more items than awake workers. Handing work to a *sleeping* OpenBLAS worker is what the
 * old design did, and under tests/_native/stress_threads.py it hung (the caller waits inside
 * OpenBLAS until a worker has run every item, and the worker never did). Where
 * blas_level1_thread is missing, or the process has no /proc, only rnnkit's own threads help.
 *
 * Idle own workers first poll for the next call, yielding the core to any other runnable thread
 * (sched_yield), then sleep on a condition variable; a call wakes sleepers only if there are any.
 * Nothing run here calls BLAS (only float32 kernels with a packed product run on helpers).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "kernels.h"
#include "pool_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 63 };
/* How long an idle worker polls before it sleeps. Calls come in bursts (a layer's scans, BPTT's
 * blocks, the next layer), tens of microseconds apart; waking a sleeping thread costs ~10-50 us. */
#define POLL_NANOSECONDS 500000L
/* A sleeping worker rechecks this often even if no wake-up came (none is ever lost; this bounds
 * the cost of a mistake). */
#define SLEEP_NANOSECONDS 100000000L

/* The pool's state word: the call is open while OPEN is set; the low bits count joined workers. */
#define OPEN (1u << 30)

typedef struct {
    atomic_uint state;           /* OPEN | workers that joined the current call */
    atomic_ulong generation;     /* bumped by every published call */
    atomic_long next;            /* the next slice nobody has taken */
    int kind;
    int64_t slices, count;       /* slices; arguments per slice */
    const int64_t *arguments;    /* slices x count */
    atomic_int wanted;           /* workers that may join this call */
    int started;                 /* workers created */
    atomic_int held;             /* tests: workers see calls but join none */
    atomic_int sleepers;
    pthread_mutex_t caller;      /* held by the call that owns the pool (try-locked: never waited on) */
    pthread_mutex_t lock;        /* for the condition variable */
    pthread_cond_t wake;
} pool_t;

static pool_t pool = {.caller = PTHREAD_MUTEX_INITIALIZER,
                      .lock = PTHREAD_MUTEX_INITIALIZER,
                      .wake = PTHREAD_COND_INITIALIZER};

static const int64_t argument_counts[] = {
#define COUNT(kind, symbol, count) [kind] = count,
    RNNKIT_POOL_KERNELS(COUNT)
#undef COUNT
};
static const char *const kernel_names[] = {
#define NAME(kind, symbol, count) [kind] = #symbol,
    RNNKIT_POOL_KERNELS(NAME)
#undef NAME
};

/* Slices of the open call until none is left. Only the caller, or a worker that joined the call
 * (and has not left it), may call this: the call's description stays valid until they are done. */
static void take_slices(void) {
    for (long slice; (slice = atomic_fetch_add(&pool.next, 1)) < pool.slices;)
        run_slice(pool.kind, pool.arguments + slice * pool.count);
}

/* Join the open call if it still wants workers (an invited helper, one of OpenBLAS's, whenever it
 * is open); 0 if it is closed or full. */
static int join(int invited) {
    if (atomic_load(&pool.held)) return 0;
    unsigned state = atomic_load(&pool.state);
    while ((state & OPEN) && (invited || (int)(state & ~OPEN) < atomic_load(&pool.wanted)))
        if (atomic_compare_exchange_weak(&pool.state, &state, state + 1)) return 1;
    return 0;
}

static void leave(void) { atomic_fetch_sub(&pool.state, 1); /* release: the caller sees the results */ }

/* The caller, once it has taken every slice: close the call (no helper joins from now on) and
 * wait for those that joined, which are running (a slice, or the empty counter): at most one
 * slice's time. */
static void close_call(void) {
    unsigned state = atomic_fetch_and(&pool.state, ~OPEN) & ~OPEN;
    for (int polls = 0; state != 0; polls++) {
        if (polls < 256)
            CPU_RELAX();
        else
            sched_yield(); /* a joined helper may share this core */
        state = atomic_load(&pool.state);
    }
}

static long elapsed_nanoseconds(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

/* Until the generation moves past `seen`: poll, yielding the core, then sleep. */
static unsigned long wait_for_call(unsigned long seen) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int polls = 0;; polls++) {
        const unsigned long generation = atomic_load(&pool.generation);
        if (generation != seen) return generation;
        if (polls < 64) {
            CPU_RELAX();
            continue;
        }
        if (elapsed_nanoseconds(&start) < POLL_NANOSECONDS) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&pool.lock);
        atomic_fetch_add(&pool.sleepers, 1);
        /* Sequentially consistent with the caller's bump of the generation and its read of
           sleepers: either this read sees the new generation, or the caller sees a sleeper and
           broadcasts under the lock, after this thread waits. */
        if (atomic_load(&pool.generation) == seen) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += SLEEP_NANOSECONDS;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&pool.wake, &pool.lock, &until);
        }
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.lock);
        clock_gettime(CLOCK_MONOTONIC, &start);
        polls = 0;
    }
}

static void *worker(void *unused) {
    (void)unused;
    unsigned long seen = atomic_load(&pool.generation);
    for (;;) {
        seen = wait_for_call(seen);
        if (!join(0)) continue;
        take_slices();
        leave();
    }
    return 0;
}

/* ---- OpenBLAS's workers as helpers --------------------------------------------------------- */

/* OpenBLAS's blas_level1_thread(mode, m, n, k, alpha, a, lda, b, ldb, c, ldc, function, threads):
 * splits m over `threads`, runs one share on the calling thread and queues the others on its
 * workers, then waits for them; each share calls function through OpenBLAS's legacy interface,
 * f(m, n, k, alpha, a, lda, b, ldb, c, ldc, sb), with c passed as given. NULL where not found. */
typedef int (*level1_thread_fn)(int, long, long, long, void *, void *, long, void *, long, void *,
                                long, int (*)(void), int);
static level1_thread_fn level1_thread;
static int (*openblas_threads)(void); /* the threads OpenBLAS is set to use (it has at least as many) */

/* The mode that makes OpenBLAS (0.3.10 on, BLAS_SINGLE = 2) call a function through the legacy
 * interface's single-precision signature; with another value it may call nothing (0 does not, in
 * 0.3.31). Checked by the probe, below, since the value is OpenBLAS's internal. */
enum { BLAS_SINGLE_MODE = 2, MAX_OPENBLAS_WORKERS = 64 };
static const float probe_alpha = 1.5f;

static struct {
    int count;                      /* workers found */
    int fds[MAX_OPENBLAS_WORKERS];  /* their /proc/self/task/TID/stat, open */
    int threads;                    /* openblas_threads() when they were found */
    pid_t pid;                      /* the process that found them (a fork's child looks again) */
} openblas_workers;

typedef struct {
    atomic_int calls;
    long tids[MAX_OPENBLAS_WORKERS + 1];
} probe_record;

static long thread_id(void) {
#if defined(__linux__)
    return (long)syscall(SYS_gettid);
#else
    return 0;
#endif
}

static int probe(long m, long n, long k, float alpha, float *a, long lda, float *b, long ldb,
                 float *c, long ldc, void *sb) {
    (void)m, (void)a, (void)lda, (void)b, (void)ldb, (void)sb;
    probe_record *record = (probe_record *)c;
    if (n == 2 && k == 3 && alpha == probe_alpha && ldc == 4) {
        const int call = atomic_fetch_add(&record->calls, 1);
        if (call <= MAX_OPENBLAS_WORKERS) record->tids[call] = thread_id();
    }
    return 0;
}

static void forget_openblas_workers(void) {
    for (int i = 0; i < openblas_workers.count; i++) close(openblas_workers.fds[i]);
    openblas_workers.count = 0;
}

/* Run the probe on as many threads as OpenBLAS is set to use (never more than it has: see the top
 * of this file) and keep each worker's /proc entry; 0 if OpenBLAS did not call it as expected. */
static int find_openblas_workers(void) {
    forget_openblas_workers();
    openblas_workers.pid = getpid();
    int threads = openblas_threads ? openblas_threads() : 1;
    if (threads > MAX_OPENBLAS_WORKERS + 1) threads = MAX_OPENBLAS_WORKERS + 1;
    openblas_workers.threads = openblas_threads ? openblas_threads() : 1;
    probe_record record = {0};
    float alpha = probe_alpha;
    level1_thread(BLAS_SINGLE_MODE, threads, 2, 3, &alpha, 0, 0, 0, 0, &record, 4,
                  (int (*)(void))(void (*)(void))probe, threads);
    if (atomic_load(&record.calls) != threads) return 0;
    const long self = thread_id();
    for (int i = 0; i < threads && self; i++) {
        if (record.tids[i] == self) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%ld/stat", record.tids[i]);
        const int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) openblas_workers.fds[openblas_workers.count++] = fd;
    }
    return 1;
}

/* OpenBLAS workers now awake (state R: polling for work, or working), up to `enough` of them
 * (each is a read of /proc, ~2 us); looked up again after a fork or a change of OpenBLAS's
 * thread count. */
static int openblas_awake(int enough) {
    if (!level1_thread) return 0;
    if (openblas_workers.pid != getpid() ||
        openblas_workers.threads != (openblas_threads ? openblas_threads() : 1))
        if (!find_openblas_workers()) level1_thread = 0;
    int awake = 0;
    for (int i = 0; i < openblas_workers.count && awake < enough; i++) {
        char line[256];
        const ssize_t length = pread(openblas_workers.fds[i], line, sizeof line - 1, 0);
        if (length <= 0) continue;
        line[length] = 0;
        const char *end = strrchr(line, ')'); /* "tid (name) S ...": the name may hold anything */
        if (end && end[1] == ' ' && end[2] == 'R') awake++;
    }
    return awake;
}

/* Called once by the loader: OpenBLAS's blas_level1_thread and thread count (NULL where not
 * found); returns whether its workers can help (it called the probe as expected). */
int rnnkit_set_openblas_threads(void *level1_thread_address, void *threads_address) {
    level1_thread = (level1_thread_fn)level1_thread_address;
    openblas_threads = (int (*)(void))threads_address;
    if (level1_thread && !find_openblas_workers()) level1_thread = 0;
    return level1_thread != 0;
}

/* OpenBLAS workers that can help (awake now: the loader's check, and tests). */
int rnnkit_openblas_awake(void) { return openblas_awake(MAX_OPENBLAS_WORKERS); }

static _Thread_local int owns_call; /* on the calling thread, during its blas_level1_thread */

/* A share of blas_level1_thread: the caller's works through the call and closes it; a worker's
 * joins if the call is still open. */
static int help(long m, long n, long k, float alpha, float *a, long lda, float *b, long ldb,
                float *c, long ldc, void *sb) {
    (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)c,
        (void)ldc, (void)sb;
    if (owns_call) {
        take_slices();
        close_call();
    } else if (join(1)) {
        take_slices();
        leave();
    }
    return 0;
}

/* Workers up to `wanted` (fewer if the system refuses threads: the caller does their share). */
static void start_workers(int wanted) {
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    while (pool.started < wanted) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&thread, &attributes, worker, 0);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        pool.started++;
    }
}

/* In a child of fork() only the forking thread exists: the pool starts again from nothing. */
static void after_fork_in_child(void) {
    pthread_mutex_init(&pool.caller, 0);
    pthread_mutex_init(&pool.lock, 0);
    pthread_cond_init(&pool.wake, 0);
    atomic_store(&pool.state, 0);
    atomic_store(&pool.sleepers, 0);
    pool.started = 0;
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
static void register_fork_handler(void) { pthread_atfork(0, 0, after_fork_in_child); }

/* Run `slices` calls of kernel `kind`, argument lists one after the other in `arguments`, on up
 * to `threads` threads, this one included. Returns when every slice has run. */
void rnnkit_parallel(int kind, int64_t slices, const int64_t *arguments, int threads) {
    const int64_t count = argument_counts[kind];
    if (threads < 2 || slices < 2 || pthread_mutex_trylock(&pool.caller) != 0) {
        for (int64_t slice = 0; slice < slices; slice++) run_slice(kind, arguments + slice * count);
        return;
    }
    pthread_once(&fork_handler_once, register_fork_handler);
    const int64_t helpers = (threads < slices ? threads : slices) - 1;
    const int awake = openblas_awake((int)helpers);
    const int from_openblas = (int)(awake < helpers ? awake : helpers);
    const int own = (int)helpers - from_openblas;
    if (own > 0) start_workers(own);
    pool.kind = kind;
    pool.slices = slices;
    pool.count = count;
    pool.arguments = arguments;
    atomic_store(&pool.wanted, own < pool.started ? own : pool.started);
    atomic_store(&pool.next, 0);
    atomic_store(&pool.state, OPEN); /* release: a helper that joins sees the description above */
    if (own > 0) {
        atomic_fetch_add(&pool.generation, 1);
        if (atomic_load(&pool.sleepers) > 0) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    if (from_openblas > 0) {
        const float one = 1;
        owns_call = 1;
        /* m = threads rows of width 1: one share per thread; lda = ldb = 0: a and b unused. */
        level1_thread(BLAS_SINGLE_MODE, from_openblas + 1, 0, 0, (void *)&one, 0, 0, 0, 0, 0, 0,
                      (int (*)(void))(void (*)(void))help, from_openblas + 1);
        owns_call = 0;
    } else {
        take_slices();
        close_call();
    }
    pthread_mutex_unlock(&pool.caller);
}

int64_t rnnkit_argument_count(int kind) {
    return kind >= 0 && kind < KERNEL_KINDS ? argument_counts[kind] : -1;
}

const char *rnnkit_kernel_name(int kind) {
    return kind >= 0 && kind < KERNEL_KINDS ? kernel_names[kind] : 0;
}

/* Workers created so far (tests: a call never needs one to finish). */
int rnnkit_pool_workers(void) { return pool.started; }

/* Tests: with held set, workers see calls but never join one, as if they never started. */
void rnnkit_pool_hold_workers(int held) { atomic_store(&pool.held, held); }
