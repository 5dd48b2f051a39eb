/* The two per-step loops of the Elman recurrence, compiled: what is left of a scan once every
 * product that spans all steps has been taken out of it (see rnnkit/functional/recurrent.py).
 *
 *   forward:   h_t = act(a_t + h_{t-1} W_hh^T)            a_t given in states[t], in place
 *   backward:  g_t = (g_t + carried) * act'(h_t);  carried = g_t W_hh
 *
 * Why C: each step is one small matrix product and an elementwise pass. From NumPy that costs
 * about 1.5 us of calls per step, and NumPy's OpenBLAS parallelises a (B, H) x (H, H) product
 * poorly at small B (2 threads: 44 -> 40 us at B=32, H=256). Here the step is split between
 * threads by columns: each runs a single-threaded product for its columns and its share of the
 * elementwise work, then all meet at a barrier, since step t + 1 reads every column of step t.
 *
 * No Python API: the library is loaded with ctypes and handed NumPy's own BLAS (function pointers
 * from NumPy's bundled OpenBLAS, ILP64 CBLAS), so there is one BLAS in the process and nothing to
 * link at build time. Shapes, strides and dtypes are checked by the Python side
 * (rnnkit/_native/__init__.py); strides here are in elements. Time strides may be negative
 * (a reverse scan walks its storage backwards); within a row the H values are contiguous.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111 };
enum { ACT_TANH = 0, ACT_SIGMOID = 1, ACT_RELU = 2 };
enum { MAX_THREADS = 16 };

typedef void (*sgemm_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                         const float *, int64_t, float, float *, int64_t);
typedef void (*dgemm_fn)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                         const double *, int64_t, double, double *, int64_t);
typedef int (*set_threads_local_fn)(int);
typedef int (*shutdown_fn)(void);

static sgemm_fn sgemm;
static dgemm_fn dgemm;
static set_threads_local_fn set_threads_local;
static shutdown_fn blas_pool_shutdown;

/* Called once by the loader with addresses from NumPy's OpenBLAS. */
void rnnkit_init(void *sgemm_address, void *dgemm_address, void *set_threads_local_address,
                 void *shutdown_address) {
    sgemm = (sgemm_fn)sgemm_address;
    dgemm = (dgemm_fn)dgemm_address;
    set_threads_local = (set_threads_local_fn)set_threads_local_address;
    blas_pool_shutdown = (shutdown_fn)shutdown_address;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build, the widest vectors the CPU has: the elementwise passes are a third of a step. */
#define VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTORISED
#endif

/* tanh for float32 as a rational function (Eigen's and XLA's fast tanh): max abs error 2e-7
 * against float64 tanh over [-10, 10] (tests/_native), vectorisable where tanhf is not.
 * float64 uses libm's tanh, so the float64 tests compare against NumPy at 1e-10. */
static inline float tanh_f32(float x) {
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : (x < -clamp ? -clamp : x);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}

/* ---- a barrier for the threads of one scan --------------------------------------------- */

typedef struct {
    atomic_int arrived;
    atomic_int generation;
    int threads;
} Barrier;

static void barrier_wait(Barrier *barrier) {
    if (barrier->threads == 1) return;
    const int generation = atomic_load_explicit(&barrier->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&barrier->arrived, 1, memory_order_acq_rel) == barrier->threads - 1) {
        atomic_store_explicit(&barrier->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&barrier->generation, generation + 1, memory_order_release);
        return;
    }
    /* Steps take microseconds, so spin; yield now and then in case the CPUs are oversubscribed. */
    for (unsigned spins = 1; atomic_load_explicit(&barrier->generation, memory_order_acquire) == generation; spins++) {
        if ((spins & 1023) == 0) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* ---- per-dtype kernels ----------------------------------------------------------------- */

#define DEFINE_KERNELS(T, SUFFIX, GEMM, TANH)                                                      \
                                                                                                  \
    VECTORISED static void activate_##SUFFIX(T *rows, int64_t batch, int64_t width, int64_t ld,  \
                                             int activation) {                                    \
        for (int64_t b = 0; b < batch; b++) {                                                     \
            T *row = rows + b * ld;                                                               \
            if (activation == ACT_TANH)                                                           \
                for (int64_t j = 0; j < width; j++) row[j] = TANH(row[j]);                        \
            else if (activation == ACT_SIGMOID)                                                   \
                for (int64_t j = 0; j < width; j++) row[j] = (T)0.5 * (TANH((T)0.5 * row[j]) + 1); \
            else                                                                                  \
                for (int64_t j = 0; j < width; j++) row[j] = row[j] > 0 ? row[j] : (T)0;          \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* g = (g + carried) * act'(h), the derivative written through the output h. */               \
    VECTORISED static void gate_##SUFFIX(T *grad, int64_t grad_ld, const T *carried,              \
                                         const T *states, int64_t states_ld, int64_t batch,       \
                                         int64_t width, int64_t carried_ld, int activation) {     \
        for (int64_t b = 0; b < batch; b++) {                                                     \
            T *g = grad + b * grad_ld;                                                            \
            const T *c = carried + b * carried_ld, *y = states + b * states_ld;                   \
            if (activation == ACT_TANH)                                                           \
                for (int64_t j = 0; j < width; j++) g[j] = (g[j] + c[j]) * (((T)1 - y[j]) * ((T)1 + y[j])); \
            else if (activation == ACT_SIGMOID)                                                   \
                for (int64_t j = 0; j < width; j++) g[j] = (g[j] + c[j]) * (((T)1 - y[j]) * y[j]); \
            else                                                                                  \
                for (int64_t j = 0; j < width; j++) g[j] = y[j] > 0 ? g[j] + c[j] : (T)0;         \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    typedef struct {                                                                              \
        T *states; /* (steps, batch, hidden): pre-activations in, states out / grads in place */  \
        int64_t time_stride, ld;                                                                  \
        const T *other; /* forward: h0 (batch, hidden); backward: states (same layout)  */        \
        int64_t other_time_stride, other_ld;                                                      \
        const T *weights; /* (hidden, hidden) contiguous: W_hh^T forward, W_hh backward */        \
        T *carried;       /* backward: (batch, hidden) contiguous, in and out */                  \
        const T *mask;    /* forward: (steps, batch) 0/1 or NULL */                               \
        int64_t first_padded, steps, batch, hidden;                                               \
        int activation;                                                                           \
        Barrier barrier;                                                                          \
    } Scan_##SUFFIX;                                                                              \
                                                                                                  \
    static void forward_part_##SUFFIX(Scan_##SUFFIX *s, int part) {                               \
        const int64_t lo = s->hidden * part / s->barrier.threads;                                 \
        const int64_t hi = s->hidden * (part + 1) / s->barrier.threads;                           \
        const T *previous = s->other;                                                             \
        int64_t previous_ld = s->hidden;                                                          \
        for (int64_t t = 0; t < s->steps; t++) {                                                  \
            T *h = s->states + t * s->time_stride;                                                \
            if (hi > lo) {                                                                        \
                GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, s->batch, hi - lo, s->hidden, 1, previous,    \
                     previous_ld, s->weights + lo, s->hidden, 1, h + lo, s->ld);                  \
                activate_##SUFFIX(h + lo, s->batch, hi - lo, s->ld, s->activation);               \
                if (s->mask && t >= s->first_padded)                                              \
                    for (int64_t b = 0; b < s->batch; b++) {                                      \
                        const T keep = s->mask[t * s->batch + b];                                 \
                        for (int64_t j = lo; j < hi; j++) h[b * s->ld + j] *= keep;               \
                    }                                                                             \
            }                                                                                     \
            barrier_wait(&s->barrier);                                                            \
            previous = h;                                                                         \
            previous_ld = s->ld;                                                                  \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* Steps run from the last to the first; only the barrier couples the parts (see top). */    \
    static void backward_part_##SUFFIX(Scan_##SUFFIX *s, int part) {                              \
        const int64_t lo = s->hidden * part / s->barrier.threads;                                 \
        const int64_t hi = s->hidden * (part + 1) / s->barrier.threads;                           \
        for (int64_t t = s->steps - 1; t >= 0; t--) {                                             \
            T *g = s->states + t * s->time_stride;                                                \
            if (hi > lo)                                                                          \
                gate_##SUFFIX(g + lo, s->ld, s->carried + lo, s->other + t * s->other_time_stride + lo, \
                              s->other_ld, s->batch, hi - lo, s->hidden, s->activation);          \
            barrier_wait(&s->barrier);                                                            \
            if (hi > lo)                                                                          \
                GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, s->batch, hi - lo, s->hidden, 1, g, s->ld,    \
                     s->weights + lo, s->hidden, 0, s->carried + lo, s->hidden);                  \
            /* No barrier here: the next gate reads only this part's columns of carried, and   \
               the next product reads g_{t-1}, behind the next barrier. */                        \
        }                                                                                         \
    }

DEFINE_KERNELS(float, f32, sgemm, tanh_f32)
DEFINE_KERNELS(double, f64, dgemm, tanh)

/* ---- threads ----------------------------------------------------------------------------- */

typedef struct {
    void (*run)(void *, int);
    void *scan;
    int part;
    atomic_int *go; /* 0: wait, 1: run, -1: every thread could not be started, return */
} Part;

static void *part_main(void *argument) {
    Part *part = (Part *)argument;
    int go;
    while ((go = atomic_load_explicit(part->go, memory_order_acquire)) == 0) sched_yield();
    if (go > 0) {
        set_threads_local(1); /* this thread's products stay on this thread */
        part->run(part->scan, part->part);
    }
    return NULL;
}

/* Run parts 1..threads-1 on new threads and part 0 here; returns the threads used. Threads are
 * made per scan (tens of microseconds against scans of milliseconds) so that none spins between
 * scans. */
static int run_parts(void (*run)(void *, int), void *scan, int *threads) {
    if (*threads <= 1 || !set_threads_local) {
        *threads = 1;
        run(scan, 0);
        return 1;
    }
    pthread_t handles[MAX_THREADS];
    Part parts[MAX_THREADS];
    atomic_int go = 0;
    int started = 1;
    for (; started < *threads; started++) {
        parts[started] = (Part){run, scan, started, &go};
        if (pthread_create(&handles[started], NULL, part_main, &parts[started]) != 0) break;
    }
    const int all = started == *threads;
    if (all && blas_pool_shutdown) {
        /* OpenBLAS's own workers spin for a while after each product; with ours on the same
         * CPUs a step would wait for time slices. The pool restarts at its next threaded product. */
        blas_pool_shutdown();
    }
    atomic_store_explicit(&go, all ? 1 : -1, memory_order_release);
    if (all) {
        const int previous = set_threads_local(1);
        run(scan, 0);
        set_threads_local(previous);
    }
    for (int i = 1; i < started; i++) pthread_join(handles[i], NULL);
    if (!all) {
        *threads = 1;
        run(scan, 0);
    }
    return *threads;
}

#define DEFINE_ENTRY_POINTS(T, SUFFIX)                                                             \
    static void forward_run_##SUFFIX(void *scan, int part) { forward_part_##SUFFIX(scan, part); }  \
    static void backward_run_##SUFFIX(void *scan, int part) { backward_part_##SUFFIX(scan, part); }\
                                                                                                  \
    /* states (steps, batch, hidden) at [t * time_stride + b * ld + j]: a_t in, h_t out.         \
       mask: (steps, batch) contiguous 0/1, applied from step first_padded on, or NULL. */       \
    int rnnkit_scan_forward_##SUFFIX(T *states, int64_t time_stride, int64_t ld, const T *h0,      \
                                     const T *W_hh_T, const T *mask, int64_t first_padded,         \
                                     int64_t steps, int64_t batch, int64_t hidden, int activation, \
                                     int threads) {                                               \
        if (threads > MAX_THREADS) threads = MAX_THREADS;                                         \
        Scan_##SUFFIX scan = {states, time_stride, ld, h0, 0, hidden, W_hh_T, NULL, mask,          \
                              first_padded, steps, batch, hidden, activation, {0, 0, threads}};    \
        run_parts(forward_run_##SUFFIX, &scan, &scan.barrier.threads);                             \
        return scan.barrier.threads;                                                              \
    }                                                                                             \
                                                                                                  \
    /* grad (steps, batch, hidden) at [t * time_stride + b * ld + j], states likewise with their  \
       own strides; carried (batch, hidden) contiguous. */                                        \
    int rnnkit_scan_backward_##SUFFIX(T *grad, int64_t time_stride, int64_t ld, const T *states,   \
                                      int64_t states_time_stride, int64_t states_ld,               \
                                      const T *W_hh, T *carried, int64_t steps, int64_t batch,     \
                                      int64_t hidden, int activation, int threads) {              \
        if (threads > MAX_THREADS) threads = MAX_THREADS;                                         \
        Scan_##SUFFIX scan = {grad, time_stride, ld, states, states_time_stride, states_ld,        \
                              W_hh, carried, NULL, steps, steps, batch, hidden, activation,        \
                              {0, 0, threads}};                                                    \
        run_parts(backward_run_##SUFFIX, &scan, &scan.barrier.threads);                            \
        return scan.barrier.threads;                                                              \
    }

DEFINE_ENTRY_POINTS(float, f32)
DEFINE_ENTRY_POINTS(double, f64)
