/* The two per-step loops of the Elman recurrence, compiled: what is left of a scan once every
 * product that spans all steps has been taken out of it (see rnnkit/functional/recurrent.py).
 *
 *   forward:   h_t = act(a_t + h_{t-1} W_hh^T)            a_t given in states[t], in place
 *   backward:  g_t = (g_t + carried) * act'(h_t);  carried = g_t W_hh
 *
 * Why C: from NumPy each step is a matrix product and two or three elementwise calls, about
 * 1.5 us of call overhead per step and one pass over memory per call. Here a step is one BLAS
 * call and one fused pass. The product is NumPy's own OpenBLAS (function pointers from NumPy's
 * bundled library, ILP64 CBLAS), with its own threads: there is one BLAS in the process and
 * nothing to link at build time. Splitting each step's product between threads of our own was
 * measured and dropped: OpenBLAS's workers keep spinning after each product, and a scan that
 * stops them gained under 10% over letting OpenBLAS thread the product (RESULTS.md).
 *
 * No Python API: the library is loaded with ctypes. Shapes, strides and dtypes are checked by the
 * Python side (rnnkit/_native/__init__.py); strides here are in elements. Time strides may be
 * negative (a reverse scan walks its storage backwards); within a row the H values are contiguous.
 */
#include <math.h>
#include <stdint.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111 };
enum { ACT_TANH = 0, ACT_SIGMOID = 1, ACT_RELU = 2 };

typedef void (*sgemm_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                         const float *, int64_t, float, float *, int64_t);
typedef void (*dgemm_fn)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                         const double *, int64_t, double, double *, int64_t);
static sgemm_fn sgemm;
static dgemm_fn dgemm;

/* Called once by the loader with addresses from NumPy's OpenBLAS. */
void rnnkit_init(void *sgemm_address, void *dgemm_address) {
    sgemm = (sgemm_fn)sgemm_address;
    dgemm = (dgemm_fn)dgemm_address;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build, and the fused passes run with the widest vectors the CPU has. */
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
                for (int64_t j = 0; j < width; j++) row[j] = row[j] < 0 ? (T)0 : row[j];          \
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
                for (int64_t j = 0; j < width; j++) g[j] = (g[j] + c[j]) * (T)(y[j] > 0);         \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* states (steps, batch, hidden) at [t * time_stride + b * ld + j]: a_t in, h_t out. h0       \
       (batch, hidden) and W_hh_T (hidden, hidden) contiguous. mask: (steps, batch) contiguous    \
       0/1, applied from step first_padded on, or NULL. */                                        \
    void rnnkit_scan_forward_##SUFFIX(T *states, int64_t time_stride, int64_t ld, const T *h0,     \
                                      const T *W_hh_T, const T *mask, int64_t first_padded,        \
                                      int64_t steps, int64_t batch, int64_t hidden,                \
                                      int activation) {                                           \
        const T *previous = h0;                                                                   \
        int64_t previous_ld = hidden;                                                             \
        for (int64_t t = 0; t < steps; t++) {                                                     \
            T *h = states + t * time_stride;                                                      \
            GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, batch, hidden, hidden, 1, previous, previous_ld,  \
                 W_hh_T, hidden, 1, h, ld);                                                       \
            activate_##SUFFIX(h, batch, hidden, ld, activation);                                  \
            if (mask && t >= first_padded)                                                        \
                for (int64_t b = 0; b < batch; b++) {                                             \
                    const T keep = mask[t * batch + b];                                           \
                    for (int64_t j = 0; j < hidden; j++) h[b * ld + j] *= keep;                   \
                }                                                                                 \
            previous = h;                                                                         \
            previous_ld = ld;                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* grad (steps, batch, hidden) at [t * time_stride + b * ld + j], states likewise with their  \
       own strides, both in scan order; steps run from the last to the first. W_hh (hidden,       \
       hidden) and carried (batch, hidden) contiguous; carried is read and written. */            \
    void rnnkit_scan_backward_##SUFFIX(T *grad, int64_t time_stride, int64_t ld, const T *states,  \
                                       int64_t states_time_stride, int64_t states_ld,              \
                                       const T *W_hh, T *carried, int64_t steps, int64_t batch,    \
                                       int64_t hidden, int activation) {                          \
        for (int64_t t = steps - 1; t >= 0; t--) {                                                \
            T *g = grad + t * time_stride;                                                        \
            gate_##SUFFIX(g, ld, carried, states + t * states_time_stride, states_ld, batch,      \
                          hidden, hidden, activation);                                            \
            GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, batch, hidden, hidden, 1, g, ld, W_hh, hidden, 0, \
                 carried, hidden);                                                                \
        }                                                                                         \
    }

DEFINE_KERNELS(float, f32, sgemm, tanh_f32)
DEFINE_KERNELS(double, f64, dgemm, tanh)

