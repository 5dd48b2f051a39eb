/* The per-step loops of the gated cells, compiled: what is left of an LSTM or GRU scan once the
 * input projections of all steps and the weight gradients are block products (see
 * rnnkit/functional/lstm.py and gru.py, whose NumPy loops compute the same and are what these
 * are tested against).
 *
 *   LSTM forward:   a_t += h_{t-1} W_hh^T (BLAS, beta = 1);  one fused pass: the four gates,
 *                   c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
 *   LSTM backward:  one fused pass: the four gates' dL/da, the cell-state chain, db;
 *                   dh_{t-1} = dL/da W_hh (BLAS)
 *   GRU forward:    r_t = h_{t-1} W_hh^T (BLAS, beta = 0, a row buffer);  one fused pass
 *   GRU backward:   one fused pass writing both gate gradients and z dh into dh_{t-1};
 *                   dh_{t-1} += dL/da_hidden W_hh (BLAS, beta = 1)
 *
 * From NumPy an LSTM step is about ten elementwise calls of ~1 us each and as many passes over
 * memory; here it is one BLAS call and one pass. Conventions as in scan.c: strides in elements,
 * time strides may be negative (a reverse scan walks its storage backwards), rows contiguous;
 * the Python side (rnnkit/_native/scans.py) checks shapes, strides and dtypes.
 */
#include "kernels.h"

#define DEFINE_GATED(T, SUFFIX, TANH)                                                         \
                                                                                                    \
    static inline T sigmoid_##SUFFIX(T v) { return (T)0.5 * TANH((T)0.5 * v) + (T)0.5; }            \
                                                                                                    \
    /* c = f c_prev + i g and h = o tanh(c) for one row of gates i, f, g, o, times keep. A function \
       of its own, not inlined: inside the loop over rows GCC 12 left this loop scalar ("no         \
       vectype for stmt"), here it is vectorised as the gate loops are. */                          \
    VECTORISED __attribute__((noinline)) static void lstm_state_##SUFFIX(                           \
        const T *restrict gates, const T *restrict c_prev, T *restrict c, T *restrict h, T keep,    \
        int64_t hidden) {                                                                           \
        const T *i = gates, *f = gates + hidden, *g = gates + 2 * hidden, *o = gates + 3 * hidden;  \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T cell = f[j] * c_prev[j] + i[j] * g[j];                                          \
            c[j] = cell * keep;                                                                     \
            h[j] = o[j] * TANH(cell) * keep;                                                        \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* One LSTM step's fused pass: a (batch, 4H) holds the pre-activations without the bias;        \
       on exit i, f, g, o. c and h receive the step's states; masked rows (keep 0) are zeroed. */   \
    VECTORISED static void lstm_cell_##SUFFIX(T *a, int64_t a_ld, const T *bias, const T *c_prev,   \
                                              int64_t c_prev_ld, T *c, int64_t c_ld, T *h,          \
                                              int64_t h_ld, const T *keep, int64_t batch,           \
                                              int64_t hidden) {                                     \
        for (int64_t b = 0; b < batch; b++) {                                                       \
            /* restrict: the vectoriser may not version loops over this many pointers itself. */    \
            T *restrict row = a + b * a_ld, *restrict c_row = c + b * c_ld;                         \
            T *restrict h_row = h + b * h_ld;                                                       \
            const T *restrict cp = c_prev + b * c_prev_ld;                                          \
            for (int64_t j = 0; j < 2 * hidden; j++) row[j] = sigmoid_##SUFFIX(row[j] + bias[j]);   \
            for (int64_t j = 2 * hidden; j < 3 * hidden; j++) row[j] = TANH(row[j] + bias[j]);      \
            for (int64_t j = 3 * hidden; j < 4 * hidden; j++)                                       \
                row[j] = sigmoid_##SUFFIX(row[j] + bias[j]);                                        \
            lstm_state_##SUFFIX(row, cp, c_row, h_row, keep ? keep[b] : (T)1, hidden);              \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* gates (steps, batch, 4H), states and cells (steps, batch, H), each [t * ts + b * ld + j],    \
       in scan order. h0, c0 (batch, H), W_hh_T (H, 4H), bias (4H,) contiguous; mask (steps,        \
       batch) contiguous 0/1 from step first_padded on, or NULL. */                                 \
    void rnnkit_lstm_forward_##SUFFIX(T *gates, int64_t gates_ts, int64_t gates_ld, T *states,      \
                                      int64_t states_ts, int64_t states_ld, T *cells,               \
                                      int64_t cells_ts, int64_t cells_ld, const T *h0,              \
                                      const T *c0, const T *W_hh_T, const T *packed, const T *bias,  \
                                      const T *mask,                                                \
                                      int64_t first_padded, int64_t steps, int64_t batch,           \
                                      int64_t hidden) {                                             \
        const unsigned int mode = subnormals_off();                                                 \
        const T *h_prev = h0, *c_prev = c0;                                                         \
        int64_t h_prev_ld = hidden, c_prev_ld = hidden;                                             \
        for (int64_t t = 0; t < steps; t++) {                                                       \
            T *a = gates + t * gates_ts, *h = states + t * states_ts, *c = cells + t * cells_ts;    \
            product_##SUFFIX(batch, 4 * hidden, hidden, h_prev, h_prev_ld, W_hh_T, packed, 1, a,   \
                             gates_ld);                                                             \
            lstm_cell_##SUFFIX(a, gates_ld, bias, c_prev, c_prev_ld, c, cells_ld, h, states_ld,     \
                               mask && t >= first_padded ? mask + t * batch : 0, batch, hidden);    \
            h_prev = h, h_prev_ld = states_ld, c_prev = c, c_prev_ld = cells_ld;                    \
        }                                                                                           \
        subnormals_restore(mode);                                                                   \
    }                                                                                               \
                                                                                                    \
    /* One row of lstm_cell_backward: dL/da of the four gates and dL/dc_{t-1} (a function of its    \
       own for the vectoriser, as lstm_state). */                                                   \
    VECTORISED __attribute__((noinline)) static void lstm_state_backward_##SUFFIX(                  \
        T *restrict da, const T *restrict y, const T *restrict u, const T *restrict ch,             \
        const T *restrict du, const T *restrict cell, const T *restrict cp, T *restrict cc,         \
        int64_t hidden) {                                                                           \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T i = y[j], f = y[hidden + j], g = y[2 * hidden + j], o = y[3 * hidden + j];      \
            const T dh = u[j] + ch[j], tc = TANH(cell[j]);                                          \
            const T dc = dh * o * (((T)1 - tc) * ((T)1 + tc)) + cc[j] + du[j];                      \
            da[j] = dc * g * (((T)1 - i) * i);                                                      \
            da[hidden + j] = dc * cp[j] * (((T)1 - f) * f);                                         \
            da[2 * hidden + j] = dc * i * (((T)1 - g) * ((T)1 + g));                                \
            da[3 * hidden + j] = dh * tc * (((T)1 - o) * o);                                        \
            cc[j] = dc * f;                                                                         \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* One LSTM step's fused BPTT pass: grad (batch, 4H) receives dL/da; carried_h is read,         \
       carried_c read and written (dL/dc_{t-1}); dc_up the gradient reaching c_t from outside       \
       (a zero row with stride 0 when there is none: no branch in the loop); db (4H,) is added      \
       to. */                                                                                       \
    VECTORISED static void lstm_cell_backward_##SUFFIX(                                             \
        T *grad, int64_t grad_ld, const T *up, int64_t up_ld, const T *dc_up, int64_t dc_up_ld,     \
        const T *gates, int64_t gates_ld, const T *c, int64_t c_ld, const T *c_prev,                \
        int64_t c_prev_ld, const T *carried_h, T *carried_c, T *db, int64_t batch,                  \
        int64_t hidden) {                                                                           \
        for (int64_t b = 0; b < batch; b++) {                                                       \
            T *restrict da = grad + b * grad_ld, *restrict cc = carried_c + b * hidden;             \
            const T *restrict y = gates + b * gates_ld, *restrict u = up + b * up_ld;               \
            const T *restrict ch = carried_h + b * hidden, *restrict du = dc_up + b * dc_up_ld;     \
            const T *restrict cell = c + b * c_ld, *restrict cp = c_prev + b * c_prev_ld;           \
            lstm_state_backward_##SUFFIX(da, y, u, ch, du, cell, cp, cc, hidden);                   \
            for (int64_t j = 0; j < 4 * hidden; j++) db[j] += da[j];                                \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* BPTT through steps [0, steps) of a block, last first. grad (steps, batch, 4H), up, dc_up,    \
       gates and cells at [k * ts + b * ld + j]; c_before (batch, H) with leading dimension         \
       c_before_ld is the cell state before the block's first step (c0 at the scan's start).        \
       W_hh (4H, H), carried_h, carried_c (batch, H) contiguous. first_product 0 skips the first    \
       step's product (what flows on to h0; nobody asked for it). */                                \
    void rnnkit_lstm_backward_##SUFFIX(T *grad, int64_t grad_ts, int64_t grad_ld, const T *up,      \
                                       int64_t up_ts, int64_t up_ld, const T *dc_up,                \
                                       int64_t dc_up_ts, int64_t dc_up_ld, const T *gates,          \
                                       int64_t gates_ts, int64_t gates_ld, const T *cells,          \
                                       int64_t cells_ts, int64_t cells_ld, const T *c_before,       \
                                       int64_t c_before_ld, const T *W_hh, const T *packed,         \
                                       T *carried_h,                                                \
                                       T *carried_c, T *db, int64_t steps, int64_t batch,           \
                                       int64_t hidden, int first_product) {                         \
        const unsigned int mode = subnormals_off();                                                 \
        for (int64_t k = steps - 1; k >= 0; k--) {                                                  \
            T *g = grad + k * grad_ts;                                                              \
            const T *c_prev = k > 0 ? cells + (k - 1) * cells_ts : c_before;                        \
            lstm_cell_backward_##SUFFIX(g, grad_ld, up + k * up_ts, up_ld,                          \
                                        dc_up + k * dc_up_ts, dc_up_ld,                             \
                                        gates + k * gates_ts, gates_ld, cells + k * cells_ts,       \
                                        cells_ld, c_prev, k > 0 ? cells_ld : c_before_ld,           \
                                        carried_h, carried_c, db, batch, hidden);                   \
            if (k > 0 || first_product)                                                             \
                product_##SUFFIX(batch, hidden, 4 * hidden, g, grad_ld, W_hh, packed, 0, carried_h, \
                                 hidden);                                                           \
        }                                                                                           \
        subnormals_restore(mode);                                                                   \
    }                                                                                               \
                                                                                                    \
    /* One row of gru_cell after the reset and update gates: n, W_hn h_{t-1} + b_hn and h_t (a      \
       function of its own for the vectoriser, as lstm_state). */                                   \
    VECTORISED __attribute__((noinline)) static void gru_state_##SUFFIX(                            \
        T *restrict row, const T *restrict rec, const T *restrict b_xh, const T *restrict b_hh,     \
        T *restrict hn_row, const T *restrict hp, T *restrict h_row, T keep, int64_t hidden) {      \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T reset = row[j], update = row[hidden + j];                                       \
            const T recurrent_n = rec[2 * hidden + j] + b_hh[2 * hidden + j];                       \
            const T n = TANH((row[2 * hidden + j] + b_xh[2 * hidden + j]) + reset * recurrent_n);   \
            row[2 * hidden + j] = n;                                                                \
            hn_row[j] = recurrent_n;                                                                \
            h_row[j] = (n + update * (hp[j] - n)) * keep;                                           \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* One GRU step's fused pass: a (batch, 3H) holds W_xh x_t without the bias, r the row          \
       buffer h_{t-1} W_hh^T; on exit a holds r, z, n, hn receives W_hn h_{t-1} + b_hn and h the    \
       new state. */                                                                                \
    VECTORISED static void gru_cell_##SUFFIX(T *a, int64_t a_ld, const T *r, const T *b_xh,         \
                                             const T *b_hh, T *hn, int64_t hn_ld, const T *h_prev,  \
                                             int64_t h_prev_ld, T *h, int64_t h_ld, const T *keep,  \
                                             int64_t batch, int64_t hidden) {                       \
        for (int64_t b = 0; b < batch; b++) {                                                       \
            T *restrict row = a + b * a_ld, *restrict hn_row = hn + b * hn_ld;                      \
            T *restrict h_row = h + b * h_ld;                                                       \
            const T *restrict rec = r + b * 3 * hidden, *restrict hp = h_prev + b * h_prev_ld;      \
            for (int64_t j = 0; j < 2 * hidden; j++)                                                \
                row[j] = sigmoid_##SUFFIX((row[j] + b_xh[j]) + (rec[j] + b_hh[j]));                 \
            const T k = keep ? keep[b] : (T)1;                                                      \
            gru_state_##SUFFIX(row, rec, b_xh, b_hh, hn_row, hp, h_row, k, hidden);                 \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* gates (steps, batch, 3H), states and hn (steps, batch, H) at [t * ts + b * ld + j] in scan   \
       order; h0 (batch, H), W_hh_T (H, 3H), b_xh, b_hh (3H,) and the row buffer (batch, 3H)        \
       contiguous; mask as for the LSTM. */                                                         \
    void rnnkit_gru_forward_##SUFFIX(T *gates, int64_t gates_ts, int64_t gates_ld, T *states,       \
                                     int64_t states_ts, int64_t states_ld, T *hn, int64_t hn_ts,    \
                                     int64_t hn_ld, const T *h0, const T *W_hh_T, const T *packed,  \
                                     const T *b_xh,                                                 \
                                     const T *b_hh, T *row_buffer, const T *mask,                   \
                                     int64_t first_padded, int64_t steps, int64_t batch,            \
                                     int64_t hidden) {                                              \
        const unsigned int mode = subnormals_off();                                                 \
        const T *h_prev = h0;                                                                       \
        int64_t h_prev_ld = hidden;                                                                 \
        for (int64_t t = 0; t < steps; t++) {                                                       \
            T *h = states + t * states_ts;                                                          \
            product_##SUFFIX(batch, 3 * hidden, hidden, h_prev, h_prev_ld, W_hh_T, packed, 0,      \
                             row_buffer, 3 * hidden);                                               \
            gru_cell_##SUFFIX(gates + t * gates_ts, gates_ld, row_buffer, b_xh, b_hh,               \
                              hn + t * hn_ts, hn_ld, h_prev, h_prev_ld, h, states_ld,               \
                              mask && t >= first_padded ? mask + t * batch : 0, batch, hidden);     \
            h_prev = h, h_prev_ld = states_ld;                                                      \
        }                                                                                           \
        subnormals_restore(mode);                                                                   \
    }                                                                                               \
                                                                                                    \
    /* One row of gru_cell_backward: both sides' dL/da and z dL/dh_t into carried (a function of    \
       its own for the vectoriser, as lstm_state). */                                               \
    VECTORISED __attribute__((noinline)) static void gru_state_backward_##SUFFIX(                   \
        T *restrict x_row, T *restrict h_row, T *restrict cr, const T *restrict y, const T *restrict u,\
        const T *restrict rec, const T *restrict hp, int64_t hidden) {                              \
        for (int64_t j = 0; j < hidden; j++) {                                                      \
            const T r = y[j], z = y[hidden + j], n = y[2 * hidden + j];                             \
            const T dh = u[j] + cr[j], direct = dh * z;                                             \
            const T da_n = (dh - direct) * (((T)1 - n) * ((T)1 + n));                               \
            const T da_z = dh * (hp[j] - n) * (((T)1 - z) * z);                                     \
            const T da_r = da_n * rec[j] * (((T)1 - r) * r);                                        \
            x_row[j] = h_row[j] = da_r;                                                             \
            x_row[hidden + j] = h_row[hidden + j] = da_z;                                           \
            x_row[2 * hidden + j] = da_n;                                                           \
            h_row[2 * hidden + j] = da_n * r;                                                       \
            cr[j] = direct;                                                                         \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* One GRU step's fused BPTT pass: gx and gh (batch, 3H) receive the input side's and the       \
       recurrent side's dL/da; carried (batch, H) is read (dL/dh_t from later) and overwritten      \
       with z dL/dh_t, to which the caller's product adds gh W_hh. */                               \
    VECTORISED static void gru_cell_backward_##SUFFIX(                                              \
        T *gx, int64_t gx_ld, T *gh, int64_t gh_ld, const T *up, int64_t up_ld, const T *gates,     \
        int64_t gates_ld, const T *hn, int64_t hn_ld, const T *h_prev, int64_t h_prev_ld,           \
        T *carried, T *db_xh, T *db_hh, int64_t batch, int64_t hidden) {                            \
        for (int64_t b = 0; b < batch; b++) {                                                       \
            T *restrict x_row = gx + b * gx_ld, *restrict h_row = gh + b * gh_ld;                   \
            T *restrict cr = carried + b * hidden;                                                  \
            const T *restrict y = gates + b * gates_ld, *restrict u = up + b * up_ld;               \
            const T *restrict rec = hn + b * hn_ld, *restrict hp = h_prev + b * h_prev_ld;          \
            gru_state_backward_##SUFFIX(x_row, h_row, cr, y, u, rec, hp, hidden);                   \
            for (int64_t j = 0; j < 3 * hidden; j++) {                                              \
                db_xh[j] += x_row[j];                                                               \
                db_hh[j] += h_row[j];                                                               \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    /* BPTT through steps [0, steps) of a block, last first; arrays as for the LSTM, states the     \
       block's h_t and h_before the state before its first step (h0 at the scan's start). */        \
    void rnnkit_gru_backward_##SUFFIX(T *gx, int64_t gx_ts, int64_t gx_ld, T *gh, int64_t gh_ts,    \
                                      int64_t gh_ld, const T *up, int64_t up_ts, int64_t up_ld,     \
                                      const T *gates, int64_t gates_ts, int64_t gates_ld,           \
                                      const T *hn, int64_t hn_ts, int64_t hn_ld, const T *states,   \
                                      int64_t states_ts, int64_t states_ld, const T *h_before,      \
                                      int64_t h_before_ld, const T *W_hh, const T *packed,          \
                                      T *carried, T *db_xh,                                         \
                                      T *db_hh, int64_t steps, int64_t batch, int64_t hidden,       \
                                      int first_product) {                                          \
        const unsigned int mode = subnormals_off();                                                 \
        for (int64_t k = steps - 1; k >= 0; k--) {                                                  \
            T *x_grad = gx + k * gx_ts, *h_grad = gh + k * gh_ts;                                   \
            gru_cell_backward_##SUFFIX(x_grad, gx_ld, h_grad, gh_ld, up + k * up_ts, up_ld,         \
                                       gates + k * gates_ts, gates_ld, hn + k * hn_ts, hn_ld,       \
                                       k > 0 ? states + (k - 1) * states_ts : h_before,             \
                                       k > 0 ? states_ld : h_before_ld, carried, db_xh, db_hh,      \
                                       batch, hidden);                                              \
            if (k > 0 || first_product)                                                             \
                product_##SUFFIX(batch, hidden, 3 * hidden, h_grad, gh_ld, W_hh, packed, 1, carried,\
                                 hidden);                                                           \
        }                                                                                           \
        subnormals_restore(mode);                                                                   \
    }

DEFINE_GATED(float, f32, tanh_f32)
DEFINE_GATED(double, f64, tanh)
