/* The two per-step loops of the Elman recurrence, compiled: what is left of a scan once every
 * product that spans all steps has been taken out of it (see rnnkit/functional/recurrent.py).
 *
 *   forward:   h_t = act(a_t + h_{t-1} W_hh^T + b)       a_t given in states[t], in place
 *   backward:  g_t = (u_t + carried) * act'(h_t);  carried = g_t W_hh;  db += sum_b g_t
 *
 * And the transposes of the layer's weight copies (rnnkit_transpose_*); the gradient products
 * that accumulate in place are plain cblas_?gemm calls made from Python (beta = 1).
 *
 * Why C: from NumPy each step is a matrix product and two or three elementwise calls, about
 * 1.5 us of call overhead per step and one pass over memory per call. Here a step is one BLAS
 * call and one fused pass. The product is NumPy's own OpenBLAS (function pointers from NumPy's
 * bundled library, ILP64 CBLAS), with its own threads: there is one BLAS in the process and
 * nothing to link at build time. Splitting each step's product between threads of our own was
 * measured twice and dropped: OpenBLAS's workers keep spinning after each product, and with them
 * asleep two single-threaded halves were no faster than OpenBLAS's two-thread product (RESULTS.md).
 *
 * No Python API: the library is loaded with ctypes. Shapes, strides and dtypes are checked by the
 * Python side (rnnkit/_native/scans.py); strides here are in elements. Time strides may be
 * negative (a reverse scan walks its storage backwards); within a row the H values are contiguous.
 */
#include "kernels.h"

enum { ACT_TANH = 0, ACT_SIGMOID = 1, ACT_RELU = 2 };

sgemm_fn sgemm;
dgemm_fn dgemm;

#if defined(__GNUC__) && defined(__x86_64__)
/* AVX transposes are compiled in, and chosen at load time when the CPU has AVX. */
#define HAVE_AVX_TRANSPOSE 1
#endif
static int have_avx;

/* Called once by the loader with addresses from NumPy's OpenBLAS. */
void rnnkit_init(void *sgemm_address, void *dgemm_address) {
    sgemm = (sgemm_fn)sgemm_address;
    dgemm = (dgemm_fn)dgemm_address;
#ifdef HAVE_AVX_TRANSPOSE
    __builtin_cpu_init();
    have_avx = __builtin_cpu_supports("avx");
#endif
}

/* ---- transposes ---------------------------------------------------------------------------- */

/* dst[c * dst_ld + r] = src[r * src_ld + c], rows x cols, in 8 x 8 tiles so that both sides stay
 * in cache (NumPy's copy of a transposed view walks the source a whole row apart). */
#define DEFINE_TRANSPOSE(T, SUFFIX)                                                                \
    static void transpose_tiles_##SUFFIX(const T *src, int64_t src_ld, T *dst, int64_t dst_ld,    \
                                         int64_t rows, int64_t cols) {                            \
        for (int64_t r0 = 0; r0 < rows; r0 += 8)                                                  \
            for (int64_t c0 = 0; c0 < cols; c0 += 8)                                              \
                for (int64_t r = r0; r < r0 + 8 && r < rows; r++)                                 \
                    for (int64_t c = c0; c < c0 + 8 && c < cols; c++)                             \
                        dst[c * dst_ld + r] = src[r * src_ld + c];                                \
    }
DEFINE_TRANSPOSE(float, f32)
DEFINE_TRANSPOSE(double, f64)

#ifdef HAVE_AVX_TRANSPOSE
#include <immintrin.h>

/* One 8 x 8 float32 block in AVX registers: unpack, shuffle, permute, 24 instructions. */
__attribute__((target("avx"))) static inline void transpose_block_avx(const float *src, int64_t src_ld, float *dst,
                                                                      int64_t dst_ld) {
    __m256 a0 = _mm256_loadu_ps(src), a1 = _mm256_loadu_ps(src + src_ld),
           a2 = _mm256_loadu_ps(src + 2 * src_ld), a3 = _mm256_loadu_ps(src + 3 * src_ld),
           a4 = _mm256_loadu_ps(src + 4 * src_ld), a5 = _mm256_loadu_ps(src + 5 * src_ld),
           a6 = _mm256_loadu_ps(src + 6 * src_ld), a7 = _mm256_loadu_ps(src + 7 * src_ld);
    __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1),
           t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3),
           t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5),
           t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + dst_ld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dst_ld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dst_ld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dst_ld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dst_ld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dst_ld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dst_ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 8 x 8 blocks, the edges by the tiles above. */
__attribute__((target("avx"))) static void transpose_blocks_avx(const float *src, int64_t src_ld, float *dst,
                                                                int64_t dst_ld, int64_t rows, int64_t cols) {
    const int64_t rows8 = rows - rows % 8, cols8 = cols - cols % 8;
    for (int64_t c0 = 0; c0 < cols8; c0 += 8)
        for (int64_t r0 = 0; r0 < rows8; r0 += 8)
            transpose_block_avx(src + r0 * src_ld + c0, src_ld, dst + c0 * dst_ld + r0, dst_ld);
    if (cols8 < cols) transpose_tiles_f32(src + cols8, src_ld, dst + cols8 * dst_ld, dst_ld, rows8, cols - cols8);
    if (rows8 < rows) transpose_tiles_f32(src + rows8 * src_ld, src_ld, dst + rows8, dst_ld, rows - rows8, cols);
}

/* 16 x 16 squares of four blocks, so that every line of either side is read or written whole,
 * once, and walked along destination rows. In 8 x 8 blocks each line was touched half at a time
 * a sweep apart, and at power-of-two strides the halves fell in one cache set and were evicted
 * in between (128 x 1024: 36 -> 11 us here; 1024 x 1024: 1.0 -> 0.5 ms, against 0.1 ms for
 * 1000 x 1000: at 4 KiB row strides the 16 rows of a square still share cache sets). */
__attribute__((target("avx"))) static void transpose_avx_f32(const float *src, int64_t src_ld, float *dst,
                                                             int64_t dst_ld, int64_t rows, int64_t cols) {
    const int64_t rows16 = rows - rows % 16, cols16 = cols - cols % 16;
    for (int64_t c0 = 0; c0 < cols16; c0 += 16)
        for (int64_t r0 = 0; r0 < rows16; r0 += 16) {
            const float *s = src + r0 * src_ld + c0;
            float *d = dst + c0 * dst_ld + r0;
            transpose_block_avx(s, src_ld, d, dst_ld);
            transpose_block_avx(s + 8 * src_ld, src_ld, d + 8, dst_ld);
            transpose_block_avx(s + 8, src_ld, d + 8 * dst_ld, dst_ld);
            transpose_block_avx(s + 8 * src_ld + 8, src_ld, d + 8 * dst_ld + 8, dst_ld);
        }
    if (cols16 < cols)
        transpose_blocks_avx(src + cols16, src_ld, dst + cols16 * dst_ld, dst_ld, rows16, cols - cols16);
    if (rows16 < rows)
        transpose_blocks_avx(src + rows16 * src_ld, src_ld, dst + rows16, dst_ld, rows - rows16, cols);
}
#endif

void rnnkit_transpose_f32(const float *src, int64_t src_ld, float *dst, int64_t dst_ld, int64_t rows,
                          int64_t cols) {
#ifdef HAVE_AVX_TRANSPOSE
    if (have_avx) {
        transpose_avx_f32(src, src_ld, dst, dst_ld, rows, cols);
        return;
    }
#endif
    transpose_tiles_f32(src, src_ld, dst, dst_ld, rows, cols);
}

void rnnkit_transpose_f64(const double *src, int64_t src_ld, double *dst, int64_t dst_ld, int64_t rows,
                          int64_t cols) {
    transpose_tiles_f64(src, src_ld, dst, dst_ld, rows, cols);
}

/* ---- per-dtype kernels ----------------------------------------------------------------- */

#define DEFINE_KERNELS(T, SUFFIX, TANH)                                                      \
                                                                                                  \
    /* row = act(row + bias), bias (width,) contiguous. */                                       \
    VECTORISED static void activate_##SUFFIX(T *rows, const T *bias, int64_t batch, int64_t width, \
                                             int64_t ld, int activation) {                        \
        for (int64_t b = 0; b < batch; b++) {                                                     \
            T *row = rows + b * ld;                                                               \
            if (activation == ACT_TANH)                                                           \
                for (int64_t j = 0; j < width; j++) row[j] = TANH(row[j] + bias[j]);              \
            else if (activation == ACT_SIGMOID)                                                   \
                for (int64_t j = 0; j < width; j++)                                               \
                    row[j] = (T)0.5 * (TANH((T)0.5 * (row[j] + bias[j])) + 1);                    \
            else                                                                                  \
                for (int64_t j = 0; j < width; j++) {                                             \
                    const T v = row[j] + bias[j];                                                 \
                    row[j] = v < 0 ? (T)0 : v;                                                    \
                }                                                                                 \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* g = (u + carried) * act'(h), the derivative written through the output h; u the upstream \
       gradient (g itself when the caller copied it there); db += g where db is not NULL. */     \
    VECTORISED static void gate_##SUFFIX(T *grad, int64_t grad_ld, const T *upstream,             \
                                         int64_t upstream_ld, const T *carried,                   \
                                         const T *states, int64_t states_ld, int64_t batch,       \
                                         int64_t width, int activation, T *db) {                 \
        for (int64_t b = 0; b < batch; b++) {                                                     \
            T *g = grad + b * grad_ld;                                                            \
            const T *u = upstream + b * upstream_ld, *c = carried + b * width;                    \
            const T *y = states + b * states_ld;                                                  \
            if (activation == ACT_TANH)                                                           \
                for (int64_t j = 0; j < width; j++) g[j] = (u[j] + c[j]) * (((T)1 - y[j]) * ((T)1 + y[j])); \
            else if (activation == ACT_SIGMOID)                                                   \
                for (int64_t j = 0; j < width; j++) g[j] = (u[j] + c[j]) * (((T)1 - y[j]) * y[j]); \
            else                                                                                  \
                for (int64_t j = 0; j < width; j++) g[j] = (u[j] + c[j]) * (T)(y[j] > 0);         \
            if (db)                                                                               \
                for (int64_t j = 0; j < width; j++) db[j] += g[j];                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* states (steps, batch, hidden) at [t * time_stride + b * ld + j]: a_t in (without the      \
       bias), h_t out. h0 (batch, hidden), W_hh_T (hidden, hidden) and bias (hidden,) contiguous. \
       mask: (steps, batch) contiguous 0/1, applied from step first_padded on, or NULL. */        \
    void rnnkit_elman_forward_##SUFFIX(T *states, int64_t time_stride, int64_t ld, const T *h0,     \
                                      const T *W_hh_T, const T *packed, const T *bias,            \
                                      const T *mask,                                              \
                                      int64_t first_padded,                                       \
                                      int64_t steps, int64_t batch, int64_t hidden,                \
                                      int activation) {                                           \
        const unsigned int mode = subnormals_off();                                               \
        const T *previous = h0;                                                                   \
        int64_t previous_ld = hidden;                                                             \
        for (int64_t t = 0; t < steps; t++) {                                                     \
            T *h = states + t * time_stride;                                                      \
            product_##SUFFIX(batch, hidden, hidden, previous, previous_ld, W_hh_T, packed, 1, h, ld); \
            activate_##SUFFIX(h, bias, batch, hidden, ld, activation);                            \
            if (mask && t >= first_padded)                                                        \
                for (int64_t b = 0; b < batch; b++) {                                             \
                    const T keep = mask[t * batch + b];                                           \
                    for (int64_t j = 0; j < hidden; j++) h[b * ld + j] *= keep;                   \
                }                                                                                 \
            previous = h;                                                                         \
            previous_ld = ld;                                                                     \
        }                                                                                         \
        subnormals_restore(mode);                                                                 \
    }                                                                                             \
                                                                                                  \
    /* grad (steps, batch, hidden) at [t * time_stride + b * ld + j], upstream and states        \
       likewise with their own strides, all in scan order; steps run from the last to the first.  \
       upstream NULL: grad holds it on entry. W_hh (hidden, hidden), carried (batch, hidden) and  \
       db (hidden,) contiguous; carried is read and written; db, if not NULL, is added to.        \
       first_product 0: the first step's product (what flows on to h0) is skipped. */            \
    void rnnkit_elman_backward_##SUFFIX(T *grad, int64_t time_stride, int64_t ld,                  \
                                       const T *upstream, int64_t upstream_time_stride,           \
                                       int64_t upstream_ld, const T *states,                      \
                                       int64_t states_time_stride, int64_t states_ld,              \
                                       const T *W_hh, const T *packed, T *carried, T *db,          \
                                       int64_t steps,                                              \
                                       int64_t batch, int64_t hidden, int activation,             \
                                       int first_product) {                                       \
        const unsigned int mode = subnormals_off();                                               \
        if (!upstream) {                                                                          \
            upstream = grad;                                                                      \
            upstream_time_stride = time_stride;                                                   \
            upstream_ld = ld;                                                                     \
        }                                                                                         \
        for (int64_t t = steps - 1; t >= 0; t--) {                                                \
            T *g = grad + t * time_stride;                                                        \
            gate_##SUFFIX(g, ld, upstream + t * upstream_time_stride, upstream_ld, carried,       \
                          states + t * states_time_stride, states_ld, batch, hidden, activation,  \
                          db);                                                                    \
            if (t > 0 || first_product)                                                           \
                product_##SUFFIX(batch, hidden, hidden, g, ld, W_hh, packed, 0, carried, hidden);     \
        }                                                                                         \
        subnormals_restore(mode);                                                                 \
    }

DEFINE_KERNELS(float, f32, tanh_f32)
DEFINE_KERNELS(double, f64, tanh)

