/* Slices of one call on OpenBLAS's own threads.
 *
 * A scan's batch rows are independent sequences, so each thread can run the whole scan for its
 * slice of the batch, no step waiting for another thread (an OpenBLAS product split across
 * threads waits at every step). Threads of rnnkit's own were tried and lost: after each call,
 * OpenBLAS's idle threads spin for ~0.1 s and took the cores from them (an LSTM scan at B = 64,
 * H = 512: 33.0 ms on two threads of rnnkit's, 57.8 ms right after a NumPy product), and telling
 * them to sleep sooner made every later OpenBLAS call wait ~0.3 ms to wake one
 * (benchmarks/RESULTS.md). So the slices run on OpenBLAS's threads themselves: its
 * blas_level1_thread hands a function to its pool (and the calling thread) as it does its own
 * level-1 kernels, and calls it once per thread through its legacy interface, f(m, n, k, alpha,
 * a, lda, b, ldb, c, ldc, sb), with c passed as given. Here c is the call's description; each
 * invocation takes slices from a shared counter until none is left (a thread that starts late
 * finds the work done). The slices' arguments are prepared by the caller
 * (rnnkit/_native/__init__.py); only float32 kernels with a packed product run here: nothing run
 * on OpenBLAS's threads may call OpenBLAS.
 */
#include <stdatomic.h>

#include "kernels.h"

/* OpenBLAS's blas_level1_thread(mode, m, n, k, alpha, a, lda, b, ldb, c, ldc, function, threads):
 * splits m over `threads` and queues function on its pool; NULL where the loader did not find it. */
typedef int (*level1_thread_fn)(int, long, long, long, void *, void *, long, void *, long, void *,
                                long, int (*)(void), int);
static level1_thread_fn level1_thread;

/* The mode that makes OpenBLAS (0.3.10 on, BLAS_SINGLE = 2) call a function through the legacy
 * interface's single-precision signature; with another value it may call nothing (0 does not, in
 * 0.3.31). Checked once by a probe, below, since the value is OpenBLAS's internal. */
enum { BLAS_SINGLE_MODE = 2 };

static const float probe_alpha = 1.5f;

static int probe(long m, long n, long k, float alpha, float *a, long lda, float *b, long ldb,
                 float *c, long ldc, void *sb) {
    (void)a, (void)lda, (void)b, (void)ldb, (void)sb;
    atomic_int *calls = (atomic_int *)c;
    if (m == 1 && n == 2 && k == 3 && alpha == probe_alpha && ldc == 4) atomic_fetch_add(calls, 1);
    return 0;
}

/* Takes OpenBLAS's blas_level1_thread (or NULL) and keeps it only if it calls a function as
 * parallel.c expects; returns whether it does. */
int rnnkit_set_level1_thread(void *address) {
    level1_thread = (level1_thread_fn)address;
    if (!level1_thread) return 0;
    atomic_int calls = 0;
    float alpha = probe_alpha;
    level1_thread(BLAS_SINGLE_MODE, 1, 2, 3, &alpha, 0, 0, 0, 0, &calls, 4,
                  (int (*)(void))(void (*)(void))probe, 1);
    if (calls != 1) level1_thread = 0;
    return level1_thread != 0;
}

enum {
    LSTM_FORWARD = 0,
    LSTM_BACKWARD = 1,
    GRU_FORWARD = 2,
    GRU_BACKWARD = 3,
    PRODUCT = 4,
    ELMAN_FORWARD = 5,
    ELMAN_BACKWARD = 6,
    PACK = 7
};

void rnnkit_lstm_forward_f32(float *, int64_t, int64_t, float *, int64_t, int64_t, float *, int64_t,
                             int64_t, const float *, const float *, const float *, const float *,
                             const float *, const float *, int64_t, int64_t, int64_t, int64_t);
void rnnkit_lstm_backward_f32(float *, int64_t, int64_t, const float *, int64_t, int64_t,
                              const float *, int64_t, int64_t, const float *, int64_t, int64_t,
                              const float *, int64_t, int64_t, const float *, int64_t,
                              const float *, const float *, float *, float *, float *, int64_t,
                              int64_t, int64_t, int);
void rnnkit_gru_forward_f32(float *, int64_t, int64_t, float *, int64_t, int64_t, float *, int64_t,
                            int64_t, const float *, const float *, const float *, const float *,
                            const float *, float *, const float *, int64_t, int64_t, int64_t,
                            int64_t);
void rnnkit_gru_backward_f32(float *, int64_t, int64_t, float *, int64_t, int64_t, const float *,
                             int64_t, int64_t, const float *, int64_t, int64_t, const float *,
                             int64_t, int64_t, const float *, int64_t, int64_t, const float *,
                             int64_t, const float *, const float *, float *, float *, float *,
                             int64_t, int64_t, int64_t, int);
void rnnkit_pack_blocks_f32(const float *, int64_t, int, int64_t, int64_t, float *, int64_t, int64_t);
void rnnkit_scan_forward_f32(float *, int64_t, int64_t, const float *, const float *, const float *,
                             const float *, const float *, int64_t, int64_t, int64_t, int64_t, int);
void rnnkit_scan_backward_f32(float *, int64_t, int64_t, const float *, int64_t, int64_t,
                              const float *, int64_t, int64_t, const float *, const float *, float *,
                              float *, int64_t, int64_t, int64_t, int, int);

/* Arguments per kernel, each an int64 (pointers as integers). */
static const int64_t argument_counts[] = {19, 26, 20, 29, 9, 13, 18, 8};

typedef struct {
    int kind;
    int64_t slices;
    const int64_t *arguments; /* slices x argument_counts[kind] */
    atomic_long next;         /* the next slice nobody has taken */
} parallel_call;

#define P(i) ((void *)(intptr_t)a[i])
static void run_slice(int kind, const int64_t *a) {
    switch (kind) {
    case LSTM_FORWARD:
        rnnkit_lstm_forward_f32(P(0), a[1], a[2], P(3), a[4], a[5], P(6), a[7], a[8], P(9), P(10),
                                P(11), P(12), P(13), P(14), a[15], a[16], a[17], a[18]);
        break;
    case LSTM_BACKWARD:
        rnnkit_lstm_backward_f32(P(0), a[1], a[2], P(3), a[4], a[5], P(6), a[7], a[8], P(9), a[10],
                                 a[11], P(12), a[13], a[14], P(15), a[16], P(17), P(18), P(19),
                                 P(20), P(21), a[22], a[23], a[24], (int)a[25]);
        break;
    case GRU_FORWARD:
        rnnkit_gru_forward_f32(P(0), a[1], a[2], P(3), a[4], a[5], P(6), a[7], a[8], P(9), P(10),
                               P(11), P(12), P(13), P(14), P(15), a[16], a[17], a[18], a[19]);
        break;
    case GRU_BACKWARD:
        rnnkit_gru_backward_f32(P(0), a[1], a[2], P(3), a[4], a[5], P(6), a[7], a[8], P(9), a[10],
                                a[11], P(12), a[13], a[14], P(15), a[16], a[17], P(18), a[19],
                                P(20), P(21), P(22), P(23), P(24), a[25], a[26], a[27], (int)a[28]);
        break;
    case PRODUCT:
        rnnkit_packed_product_f32(a[0], a[1], a[2], P(3), a[4], P(5), P(6), a[7], (int)a[8]);
        break;
    case ELMAN_FORWARD:
        rnnkit_scan_forward_f32(P(0), a[1], a[2], P(3), P(4), P(5), P(6), P(7), a[8], a[9], a[10],
                                a[11], (int)a[12]);
        break;
    case PACK:
        rnnkit_pack_blocks_f32(P(0), a[1], (int)a[2], a[3], a[4], P(5), a[6], a[7]);
        break;
    case ELMAN_BACKWARD:
        rnnkit_scan_backward_f32(P(0), a[1], a[2], P(3), a[4], a[5], P(6), a[7], a[8], P(9), P(10),
                                 P(11), P(12), a[13], a[14], a[15], (int)a[16], (int)a[17]);
        break;
    }
}
#undef P

/* The legacy interface's single-precision signature (OpenBLAS's BLASLONG is a long). */
static int take_slices(long m, long n, long k, float alpha, float *a, long lda, float *b, long ldb,
                       float *c, long ldc, void *sb) {
    (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)ldc,
        (void)sb;
    parallel_call *call = (parallel_call *)c;
    const int64_t count = argument_counts[call->kind];
    for (long slice; (slice = atomic_fetch_add(&call->next, 1)) < call->slices;)
        run_slice(call->kind, call->arguments + slice * count);
    return 0;
}

/* Run `slices` calls of kernel `kind`, argument lists one after the other in `arguments`, on up
 * to `threads` of OpenBLAS's threads (this one included); on this thread alone where OpenBLAS's
 * blas_level1_thread was not found or one thread is asked for. */
void rnnkit_parallel(int kind, int64_t slices, const int64_t *arguments, int threads) {
    parallel_call call = {kind, slices, arguments, 0};
    if (level1_thread && threads > 1 && slices > 1) {
        const float one = 1;
        /* m = threads rows of width 1: one invocation per thread; lda = ldb = 0: a and b unused. */
        level1_thread(BLAS_SINGLE_MODE, threads, 0, 0, (void *)&one, 0, 0, 0, 0, &call, 0,
                      (int (*)(void))(void (*)(void))take_slices, threads);
    } else {
        take_slices(0, 0, 0, 1, 0, 0, 0, 0, (float *)&call, 0, 0);
    }
}

int64_t rnnkit_argument_count(int kind) { return argument_counts[kind]; }
