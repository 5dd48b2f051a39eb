/* Written by rnnkit/_native/signatures.py from its table (python rnnkit/_native/signatures.py >
 * rnnkit/_native/pool_kernels.h): change the table, not this file. The kernels that run on the
 * pool's threads (parallel.c), each called with one int64 per argument; the compiler checks each
 * call against the prototype in kernels.h. */
#ifndef RNNKIT_POOL_KERNELS_H
#define RNNKIT_POOL_KERNELS_H

#include <stdint.h>

#include "kernels.h"

/* kind, function, arguments per call */
#define RNNKIT_POOL_KERNELS(X)                                                                     \
    X(LSTM_FORWARD, rnnkit_lstm_forward_f32, 19)                                                   \
    X(LSTM_BACKWARD, rnnkit_lstm_backward_f32, 26)                                                 \
    X(GRU_FORWARD, rnnkit_gru_forward_f32, 20)                                                     \
    X(GRU_BACKWARD, rnnkit_gru_backward_f32, 29)                                                   \
    X(PACKED_PRODUCT, rnnkit_packed_product_f32, 9)                                                \
    X(ELMAN_FORWARD, rnnkit_elman_forward_f32, 13)                                                 \
    X(ELMAN_BACKWARD, rnnkit_elman_backward_f32, 18)                                               \
    X(PACK_BLOCKS, rnnkit_pack_blocks_f32, 8)

enum pool_kernel {
#define KIND(kind, symbol, count) kind,
    RNNKIT_POOL_KERNELS(KIND)
#undef KIND
    KERNEL_KINDS
};

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
    case PACKED_PRODUCT:
        rnnkit_packed_product_f32(a[0], a[1], a[2], P(3), a[4], P(5), P(6), a[7], (int)a[8]);
        break;
    case ELMAN_FORWARD:
        rnnkit_elman_forward_f32(P(0), a[1], a[2], P(3), P(4), P(5), P(6), P(7), a[8], a[9], a[10],
                                 a[11], (int)a[12]);
        break;
    case ELMAN_BACKWARD:
        rnnkit_elman_backward_f32(P(0), a[1], a[2], P(3), a[4], a[5], P(6), a[7], a[8], P(9), P(10),
                                  P(11), P(12), a[13], a[14], a[15], (int)a[16], (int)a[17]);
        break;
    case PACK_BLOCKS:
        rnnkit_pack_blocks_f32(P(0), a[1], (int)a[2], a[3], a[4], P(5), a[6], a[7]);
        break;
    }
}
#undef P

#endif
