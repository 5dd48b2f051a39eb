/* The loops of the minimal cells (minGRU and minLSTM, Feng et al. 2024; rnnkit/functional/mingru.py
 * and minlstm.py, whose NumPy passes compute the same and are what these are tested against),
 * compiled. Their gates read the input alone, so there is no matrix product here: per step and
 * row, one fused pass evaluates the gates, the candidate g and the elementwise recurrence
 * h_t = a_t h_{t-1} + b_t (forward), or the states' gradient chain, every gate gradient and the
 * bias gradient (BPTT). From NumPy the same is a dozen passes over (T, B, H) arrays, each streaming
 * memory; here each value is touched once, in cache.
 *
 *   minGRU:   z = sigmoid(k_z), c = g(k_c), h = (1 - z) h_prev + z c;  gates out: z, c
 *   minLSTM:  f = sigmoid(k_f), i = sigmoid(k_i), c = g(k_c), f' = f / (f + i),
 *             h = f' h_prev + (1 - f') c;  gates out: f', f, i; the candidates c apart
 *
 * g(x) = x + 1/2 for x >= 0, sigmoid(x) below. Conventions as in gated.c: strides in elements,
 * time strides may be negative (a reverse scan walks its storage backwards), rows contiguous; the
 * Python side (rnnkit/_native/scans.py) checks shapes, strides and dtypes. Masked rows (keep 0,
 * padding past first_padded) are zeroed, which changes nothing before each sequence's end. */
#include "kernels.h"

#define DEFINE_MINIMAL(T, SUFFIX, TANH)                                                             \
                                                                                                    \
    static inline T min_sigmoid_##SUFFIX(T v) { return (T)0.5 * TANH((T)0.5 * v) + (T)0.5; }        \
    static inline T candidate_##SUFFIX(T v) {                                                        \
        return v >= 0 ? v + (T)0.5 : min_sigmoid_##SUFFIX(v);                                        \
    }                                                                                               \
    /* g' from g's output: 1 where c >= 1/2 (x >= 0), else c (1 - c) */                              \
    static inline T candidate_grad_##SUFFIX(T c) { return c >= (T)0.5 ? (T)1 : c * ((T)1 - c); }    \
                                                                                                    \
    VECTORISED __attribute__((noinline)) static void mingru_row_##SUFFIX(                           \
        T *restrict g, const T *restrict bias, const T *restrict h_prev, T *restrict h, T keep,     \
        int64_t hidden) {                                                                           \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T k = g[j] + bias[j];                                                             \
            const T z = min_sigmoid_##SUFFIX(k), a = min_sigmoid_##SUFFIX(-k);                      \
            const T c = candidate_##SUFFIX(g[hidden + j] + bias[hidden + j]);                       \
            g[j] = z;                                                                               \
            g[hidden + j] = c;                                                                      \
            h[j] = (a * h_prev[j] + z * c) * keep;                                                  \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* gates (steps, batch, 2H) and states (steps, batch, H), each [t * ts + b * ld + j], in scan   \
       order; h0 (batch, H), bias (2H,) contiguous; mask (steps, batch) contiguous 0/1 from step    \
       first_padded on, or NULL. */                                                                 \
    void rnnkit_mingru_forward_##SUFFIX(T *gates, int64_t gates_ts, int64_t gates_ld, T *states,    \
                                        int64_t states_ts, int64_t states_ld, const T *h0,          \
                                        const T *bias, const T *mask, int64_t first_padded,         \
                                        int64_t steps, int64_t batch, int64_t hidden) {             \
        const unsigned int mode = subnormals_off();                                                 \
        for (int64_t t = 0; t < steps; t++)                                                         \
            for (int64_t b = 0; b < batch; b++)                                                     \
                mingru_row_##SUFFIX(gates + t * gates_ts + b * gates_ld, bias,                      \
                                    t > 0 ? states + (t - 1) * states_ts + b * states_ld            \
                                          : h0 + b * hidden,                                        \
                                    states + t * states_ts + b * states_ld,                         \
                                    mask && t >= first_padded ? mask[t * batch + b] : (T)1, hidden);\
        subnormals_restore(mode);                                                                   \
    }                                                                                               \
                                                                                                    \
    VECTORISED __attribute__((noinline)) static void mingru_row_backward_##SUFFIX(                  \
        T *restrict grad, const T *restrict up, const T *restrict g, const T *restrict h_prev,      \
        T *restrict carried, T *restrict db, int64_t hidden) {                                      \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T z = g[j], c = g[hidden + j], a = (T)1 - z;                                      \
            const T dh = up[j] + carried[j];                                                        \
            const T grad_z = dh * (c - h_prev[j]) * z * a;                                          \
            const T grad_c = dh * z * candidate_grad_##SUFFIX(c);                                   \
            grad[j] = grad_z;                                                                       \
            grad[hidden + j] = grad_c;                                                              \
            db[j] += grad_z;                                                                        \
            db[hidden + j] += grad_c;                                                               \
            carried[j] = a * dh;                                                                    \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* BPTT through steps [0, steps) of a block, last first: grad (steps, batch, 2H) receives       \
       dL/dk; up (steps, batch, H) the gradient from above; gates as the forward left them; states  \
       the block's h_t and h_before the state before its first step; carried (batch, H) contiguous, \
       in: what arrives from after the block, out: what flows on before it; db (2H,) += . */        \
    void rnnkit_mingru_backward_##SUFFIX(T *grad, int64_t grad_ts, int64_t grad_ld, const T *up,    \
                                         int64_t up_ts, int64_t up_ld, const T *gates,              \
                                         int64_t gates_ts, int64_t gates_ld, const T *states,       \
                                         int64_t states_ts, int64_t states_ld, const T *h_before,   \
                                         int64_t h_before_ld, T *carried, T *db, int64_t steps,     \
                                         int64_t batch, int64_t hidden) {                           \
        const unsigned int mode = subnormals_off();                                                 \
        for (int64_t k = steps - 1; k >= 0; k--)                                                    \
            for (int64_t b = 0; b < batch; b++)                                                     \
                mingru_row_backward_##SUFFIX(                                                       \
                    grad + k * grad_ts + b * grad_ld, up + k * up_ts + b * up_ld,                   \
                    gates + k * gates_ts + b * gates_ld,                                            \
                    k > 0 ? states + (k - 1) * states_ts + b * states_ld : h_before + b * h_before_ld,\
                    carried + b * hidden, db, hidden);                                              \
        subnormals_restore(mode);                                                                   \
    }                                                                                               \
                                                                                                    \
    VECTORISED __attribute__((noinline)) static void minlstm_row_##SUFFIX(                          \
        T *restrict g, T *restrict candidate, const T *restrict bias, const T *restrict h_prev,     \
        T *restrict h, T keep, int64_t hidden) {                                                    \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T f = min_sigmoid_##SUFFIX(g[j] + bias[j]);                                       \
            const T i = min_sigmoid_##SUFFIX(g[hidden + j] + bias[hidden + j]);                     \
            const T c = candidate_##SUFFIX(g[2 * hidden + j] + bias[2 * hidden + j]);               \
            /* f + i > 0: float32's tanh_f32 keeps sigmoid above 1e-7, float64's underflows only    \
               below -745 */                                                                        \
            const T sum = f + i, a = sum > 0 ? f / sum : (T)0.5;                                    \
            g[j] = a;                                                                               \
            g[hidden + j] = f;                                                                      \
            g[2 * hidden + j] = i;                                                                  \
            candidate[j] = c;                                                                       \
            h[j] = (a * h_prev[j] + ((T)1 - a) * c) * keep;                                         \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* gates (steps, batch, 3H), states and candidates (steps, batch, H); others as for minGRU. */  \
    void rnnkit_minlstm_forward_##SUFFIX(T *gates, int64_t gates_ts, int64_t gates_ld, T *states,   \
                                         int64_t states_ts, int64_t states_ld, T *candidates,       \
                                         int64_t candidates_ts, int64_t candidates_ld, const T *h0, \
                                         const T *bias, const T *mask, int64_t first_padded,        \
                                         int64_t steps, int64_t batch, int64_t hidden) {            \
        const unsigned int mode = subnormals_off();                                                 \
        for (int64_t t = 0; t < steps; t++)                                                         \
            for (int64_t b = 0; b < batch; b++)                                                     \
                minlstm_row_##SUFFIX(gates + t * gates_ts + b * gates_ld,                           \
                                     candidates + t * candidates_ts + b * candidates_ld, bias,      \
                                     t > 0 ? states + (t - 1) * states_ts + b * states_ld           \
                                           : h0 + b * hidden,                                       \
                                     states + t * states_ts + b * states_ld,                        \
                                     mask && t >= first_padded ? mask[t * batch + b] : (T)1,        \
                                     hidden);                                                       \
        subnormals_restore(mode);                                                                   \
    }                                                                                               \
                                                                                                    \
    VECTORISED __attribute__((noinline)) static void minlstm_row_backward_##SUFFIX(                 \
        T *restrict grad, const T *restrict up, const T *restrict g, const T *restrict candidate,   \
        const T *restrict h_prev, T *restrict carried, T *restrict db, int64_t hidden) {            \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T a = g[j], f = g[hidden + j], i = g[2 * hidden + j], c = candidate[j];           \
            const T dh = up[j] + carried[j], rest = (T)1 - a;                                       \
            const T du = dh * (h_prev[j] - c) * a * rest; /* f' = sigmoid(log f - log i) */         \
            const T grad_f = du * ((T)1 - f), grad_i = du * (i - (T)1);                             \
            const T grad_c = dh * rest * candidate_grad_##SUFFIX(c);                                \
            grad[j] = grad_f;                                                                       \
            grad[hidden + j] = grad_i;                                                              \
            grad[2 * hidden + j] = grad_c;                                                          \
            db[j] += grad_f;                                                                        \
            db[hidden + j] += grad_i;                                                               \
            db[2 * hidden + j] += grad_c;                                                           \
            carried[j] = a * dh;                                                                    \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* As rnnkit_mingru_backward, with the block's candidates (steps, batch, H) beside the gates. */ \
    void rnnkit_minlstm_backward_##SUFFIX(T *grad, int64_t grad_ts, int64_t grad_ld, const T *up,   \
                                          int64_t up_ts, int64_t up_ld, const T *gates,             \
                                          int64_t gates_ts, int64_t gates_ld, const T *candidates,  \
                                          int64_t candidates_ts, int64_t candidates_ld,             \
                                          const T *states, int64_t states_ts, int64_t states_ld,    \
                                          const T *h_before, int64_t h_before_ld, T *carried,       \
                                          T *db, int64_t steps, int64_t batch, int64_t hidden) {    \
        const unsigned int mode = subnormals_off();                                                 \
        for (int64_t k = steps - 1; k >= 0; k--)                                                    \
            for (int64_t b = 0; b < batch; b++)                                                     \
                minlstm_row_backward_##SUFFIX(                                                      \
                    grad + k * grad_ts + b * grad_ld, up + k * up_ts + b * up_ld,                   \
                    gates + k * gates_ts + b * gates_ld,                                            \
                    candidates + k * candidates_ts + b * candidates_ld,                             \
                    k > 0 ? states + (k - 1) * states_ts + b * states_ld : h_before + b * h_before_ld,\
                    carried + b * hidden, db, hidden);                                              \
        subnormals_restore(mode);                                                                   \
    }

DEFINE_MINIMAL(float, f32, tanh_f32)
DEFINE_MINIMAL(double, f64, tanh)
