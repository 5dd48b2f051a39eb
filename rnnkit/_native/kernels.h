/* What the compiled kernels share (scan.c: the Elman cell's loops and the transposes; gated.c:
 * the LSTM's and GRU's loops): NumPy's BLAS as function pointers, the vectorising attribute and
 * the float32 tanh. */
#ifndef RNNKIT_KERNELS_H
#define RNNKIT_KERNELS_H

#include <math.h>
#include <stdint.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111 };

typedef void (*sgemm_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                         const float *, int64_t, float, float *, int64_t);
typedef void (*dgemm_fn)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                         const double *, int64_t, double, double *, int64_t);
/* NumPy's bundled OpenBLAS (ILP64 CBLAS), set once by rnnkit_init (scan.c) from the loader;
 * hidden, so that no other library in the process can bind to these names. */
#if defined(__GNUC__)
#define RNNKIT_HIDDEN __attribute__((visibility("hidden")))
#else
#define RNNKIT_HIDDEN
#endif
extern RNNKIT_HIDDEN sgemm_fn sgemm;
extern RNNKIT_HIDDEN dgemm_fn dgemm;

/* packed.c: C (+)= A B against a B packed by rnnkit_pack_f32 (also called from Python). */
void rnnkit_packed_product_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *packed, float *C, int64_t ldc, int accumulate);

/* The float32 kernels that run on the pool's threads (parallel.c), also called from Python with
 * ctypes. Their prototypes are here so that the compiler checks each definition against them;
 * rnnkit/_native/signatures.py gives ctypes the same argument lists and writes pool_kernels.h,
 * parallel.c's calls of them, from that table. */
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
void rnnkit_pack_blocks_f32(const float *, int64_t, int, int64_t, int64_t, float *, int64_t,
                            int64_t);
void rnnkit_elman_forward_f32(float *, int64_t, int64_t, const float *, const float *, const float *,
                             const float *, const float *, int64_t, int64_t, int64_t, int64_t, int);
void rnnkit_elman_backward_f32(float *, int64_t, int64_t, const float *, int64_t, int64_t,
                              const float *, int64_t, int64_t, const float *, const float *,
                              float *, float *, int64_t, int64_t, int64_t, int, int);

/* A step's product C (+)= A B, B (K, N) contiguous: against B packed once per scan when the
 * caller packed it (float32 on CPUs with packed.c's kernels), else one BLAS call. */
static inline void product_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *B, const float *packed, int accumulate, float *C,
                               int64_t ldc) {
    if (packed)
        rnnkit_packed_product_f32(M, N, K, A, lda, packed, C, ldc, accumulate);
    else
        sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, M, N, K, 1, A, lda, B, N, accumulate, C, ldc);
}
static inline void product_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda,
                               const double *B, const double *packed, int accumulate, double *C,
                               int64_t ldc) {
    (void)packed;
    dgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, M, N, K, 1, A, lda, B, N, accumulate, C, ldc);
}


/* One build, and the fused passes run with the widest vectors the CPU has. GCC contracts a * b + c
 * into a fused multiply-add wherever the clone's ISA has one, and "avx2" does not imply FMA: the
 * "arch=x86-64-v3" clone (AVX2 + FMA + BMI..., GCC >= 12) gives AVX2 CPUs with FMA (Haswell on,
 * Zen) fused multiply-adds as the avx512f clone has them; "avx2" is left for AVX2 without the rest
 * of v3 (a VM hiding some of it), "default" is SSE2; those two round tanh_f32 twice per step.
 * Predefined (-DVECTORISED=...), one clone's arithmetic is compiled alone: tests/_native does
 * that for each clone listed here. */
#ifndef VECTORISED
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#if __GNUC__ >= 12
#define VECTORISED __attribute__((target_clones("avx512f", "arch=x86-64-v3", "avx2", "default")))
#else
#define VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#else
#define VECTORISED
#endif
#endif

/* tanh for float32 as a rational function (Eigen's and XLA's fast tanh), vectorisable where tanhf
 * is not. Measured over every float32 in [0, 20]: max abs error 2.9e-7 where the clone fuses the
 * Horner steps (avx512f, x86-64-v3), 4.1e-7 where it does not (avx2, default);
 * the formula itself, in float64, is off by 2.35e-7 at most (past the clamp). tests/_native bounds
 * it per x by the formula's error plus Horner's worst-case rounding, fused or not (at most 9.2e-7),
 * for every clone this CPU can run. float64 uses libm's tanh. */
static inline float tanh_f32(float x) {
    const float clamp = 7.90531110763549805f;
    /* Vectorised as two selects; on CPUs without AVX-512 only with -fno-trapping-math (setup.py). */
    x = x > clamp ? clamp : x;
    x = x < -clamp ? -clamp : x;
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
    return x * (p / q); /* p / q first: x * p would leave the normal range for |x| < 2e-36 */
}

/* Subnormal numbers (below 1.2e-38 in float32) cost a microcode assist per operation on x86, and
 * BPTT makes them wherever the gradient vanishes: a float32 training step at T = 200, H = 64 with
 * the loss on its last step took 28 -> 3.1 ms (Elman), 73 -> 22 (LSTM), 87 -> 14 (GRU) with them
 * flushed. Every loop runs between these two calls, which flush them to zero (FTZ and DAZ) for
 * the calling thread, the BLAS calls it makes included, and restore the caller's mode after. */
#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
static inline unsigned int subnormals_off(void) {
    const unsigned int mode = _mm_getcsr();
    _mm_setcsr(mode | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
    return mode;
}
static inline void subnormals_restore(unsigned int mode) { _mm_setcsr(mode); }
#else
static inline unsigned int subnormals_off(void) { return 0; }
static inline void subnormals_restore(unsigned int mode) { (void)mode; }
#endif

#endif
