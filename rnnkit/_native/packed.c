/* The per-step product of the float32 scans, C (+)= A B, against a B packed once per scan.
 *
 * Every step of a scan multiplies a small (batch, K) block by the same weight matrix B (K, N):
 * W_hh^T in the forward pass, W_hh in BPTT. A general GEMM (OpenBLAS) packs B into its panel
 * layout again at each call, and with a batch of 32-128 rows it spends a large part of each call
 * there: an LSTM step at B = 64, H = 512 ran at ~55% of the machine's float32 peak, against ~85%
 * for oneDNN's RNN, which keeps its weights packed (benchmarks/RESULTS.md). Here B is packed once,
 * into column panels of NR (zero padded, each K x NR contiguous), and each step is a loop of
 * register tiles: MR rows of A broadcast against NR columns of B, all K terms summed in
 * registers, C written once. Each output is one fused multiply-add chain in k order.
 *
 * Kernels for AVX-512 (tile 8 x 48: 24 of its 32 vector registers accumulate) and AVX2 with FMA
 * (4 x 24: 12 of 16), written with GCC's vector extensions and chosen once from the CPU; on other
 * CPUs (or compilers) rnnkit_packed_width() is 0 and the scans call BLAS. float32 only: the
 * float64 path stays on BLAS (it is the checking path, not the fast one).
 *
 * A scan's rows are independent sequences, so each of the pool's threads runs the whole scan for
 * a slice of the batch against the same packed B (parallel.c); no step waits for another thread,
 * which a GEMM split across threads does at every step. The layers' input projections use the
 * same product (rnnkit._native.product), packed from W itself, no copy of W^T.
 */
#include <string.h>

#include "kernels.h"

enum { PANEL_VECTORS = 3 }; /* a full panel's width NR in vectors, in both kernels */

/* The width of the panel holding `cols` (at most NR) columns: NR when full, else the columns
 * rounded up to whole vectors of `lanes` floats. */
static inline int64_t panel_width(int64_t cols, int64_t lanes) { return (cols + lanes - 1) / lanes * lanes; }

/* Columns of B (K, N) as packed: whole panels of NR = PANEL_VECTORS lanes, then the last one. */
static inline int64_t packed_columns(int64_t N, int64_t lanes) {
    const int64_t width = PANEL_VECTORS * lanes, full = N / width * width;
    return full + panel_width(N - full, lanes);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_PACKED_KERNELS 1
#ifndef DEPTH
#define DEPTH 128
#endif
#define ROW_BLOCK 64
/* Cache lines of the next panel slice a tile fetches per term of its sum: 2, which covers the
 * slice (DEPTH x 48 floats: 384 lines) in the first 96 terms of each of the two tiles of a 16-row
 * slice; 3 where a tile has more than 2 DEPTH lines to fetch (AVX-512, 8-15 rows: one full tile),
 * which made those products 5-15% faster with W_hh past L2. 3 for every tile, 1, an even spread
 * over all terms, or a count computed per tile (a loop GCC cannot unroll) measured slower. */
enum { FETCH_PER_TERM = 2, FETCH_PER_TERM_ALONE = 3 };

/* One register tile: C[0:ROWS, 0:cols] (+)= A[0:ROWS, 0:K] panel[0:K, 0:VECTORS LANES], fetching
 * `lines` cache lines from `fetch` into L2 on the way, FETCH of them per term of the sum; named
 * tile_ISA_VECTORS_NAME. */
#define DEFINE_TILE(ISA, TARGET, LANES, VECTORS, ROWS, FETCH, NAME)                                \
    TARGET static inline void tile_##ISA##_##VECTORS##_##NAME(int64_t K, const float *A,           \
                                                              int64_t lda, const float *panel,     \
                                                              float *C, int64_t ldc,               \
                                                              int64_t cols, int accumulate,        \
                                                              const char *fetch, int64_t lines) {  \
        vec_##ISA acc[ROWS][VECTORS];                                                              \
        _Pragma("GCC unroll 16") for (int i = 0; i < ROWS; i++)                                    \
            _Pragma("GCC unroll 4") for (int v = 0; v < VECTORS; v++) acc[i][v] = (vec_##ISA){0};  \
        for (int64_t k = 0; k < K; k++) {                                                          \
            if (FETCH * k < lines) {                                                               \
                _Pragma("GCC unroll 4") for (int q = 0; q < FETCH; q++)                            \
                    __builtin_prefetch(fetch + (FETCH * k + q) * 64, 0, 2);                        \
            }                                                                                      \
            vec_##ISA b[VECTORS];                                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < VECTORS; v++)                              \
                b[v] = *(const unaligned_##ISA *)(panel + k * (VECTORS * LANES) + v * LANES);       \
            _Pragma("GCC unroll 16") for (int i = 0; i < ROWS; i++) {                              \
                const float x = A[i * lda + k]; /* one broadcast, VECTORS fused multiply-adds */   \
                _Pragma("GCC unroll 4") for (int v = 0; v < VECTORS; v++) acc[i][v] += b[v] * x;   \
            }                                                                                      \
        }                                                                                          \
        if (cols == VECTORS * LANES) {                                                             \
            _Pragma("GCC unroll 16") for (int i = 0; i < ROWS; i++)                                \
                _Pragma("GCC unroll 4") for (int v = 0; v < VECTORS; v++) {                        \
                    unaligned_##ISA *c = (unaligned_##ISA *)(C + i * ldc + v * LANES);             \
                    *c = accumulate ? *c + acc[i][v] : acc[i][v];                                  \
                }                                                                                  \
        } else { /* the last panel of a width that is no multiple of LANES */                      \
            _Pragma("GCC unroll 16") for (int i = 0; i < ROWS; i++) {                              \
                /* Vector stores, not memcpy(sums, acc[i]): taking acc's address kept all of it in \
                   memory, the tile spilling its accumulators to the stack before every store. */  \
                float sums[VECTORS * LANES];                                                       \
                _Pragma("GCC unroll 4") for (int v = 0; v < VECTORS; v++)                          \
                    *(unaligned_##ISA *)(sums + v * LANES) = acc[i][v];                            \
                float *c = C + i * ldc;                                                            \
                for (int64_t j = 0; j < cols; j++) c[j] = accumulate ? c[j] + sums[j] : sums[j];   \
            }                                                                                      \
        }                                                                                          \
    }

/* A block of rows against one panel slice of VECTORS vectors: tiles of the most rows first, then
 * 4, 2, 1 (a batch of 1, a decoder's step, runs the 1-row tile, not 8 rows of which 7 are thrown
 * away). */
#define DEFINE_ROWS(ISA, TARGET, VECTORS, TOP)                                                     \
    TARGET static void rows_##ISA##_##VECTORS(int64_t M, int64_t K, const float *A, int64_t lda,  \
                                              const float *panel, float *C, int64_t ldc,          \
                                              int64_t cols, int accumulate, const char *next,     \
                                              int64_t next_bytes) {                               \
        int64_t r = 0;                                                                             \
        /* The next panel slice is fetched while these tiles run (from L3 it came in at under     \
           half the rate the first tile reads it), each full tile a share of its lines, spread    \
           over the tile's terms. Issued all at once before each tile, as they were, the          \
           fetches stalled the tile: with W_hh past L2 (H >= 512) and 16 rows per thread the      \
           product ran at 100-110 GFLOP/s a core, spread 155-175 (benchmarks/RESULTS.md). */      \
        const int64_t tiles = M / TOP > 0 ? M / TOP : 1, total = next_bytes / 64;                  \
        const int64_t share = (total + tiles - 1) / tiles;                                         \
        for (; r + TOP <= M; r += TOP) {                                                           \
            const int64_t first = r / TOP * share, left = total - first;                            \
            const int64_t lines = left <= 0 ? 0 : left < share ? left : share;                     \
            const char *fetch = lines ? next + first * 64 : next;                                  \
            if (lines > FETCH_PER_TERM * K)                                                        \
                tile_##ISA##_##VECTORS##_##TOP##_alone(K, A + r * lda, lda, panel, C + r * ldc,    \
                                                       ldc, cols, accumulate, fetch, lines);       \
            else                                                                                   \
                tile_##ISA##_##VECTORS##_##TOP(K, A + r * lda, lda, panel, C + r * ldc, ldc, cols, \
                                               accumulate, fetch, lines);                          \
        }                                                                                          \
        if (TOP > 4 && r + 4 <= M) {                                                               \
            tile_##ISA##_##VECTORS##_4(K, A + r * lda, lda, panel, C + r * ldc, ldc, cols,         \
                                       accumulate, next, 0);                                        \
            r += 4;                                                                                \
        }                                                                                          \
        if (r + 2 <= M) {                                                                          \
            tile_##ISA##_##VECTORS##_2(K, A + r * lda, lda, panel, C + r * ldc, ldc, cols,         \
                                       accumulate, next, 0);                                        \
            r += 2;                                                                                \
        }                                                                                          \
        if (r < M)                                                                                 \
            tile_##ISA##_##VECTORS##_1(K, A + r * lda, lda, panel, C + r * ldc, ldc, cols,         \
                                       accumulate, next, 0);                                        \
    }

/* Blocks of ROW_BLOCK rows (a scan's batch slice is one; an input projection of all steps is
 * many, each passing over all of B), within them blocks of DEPTH terms of the sum, and within
 * those panel by panel, so that both the A rows of the block (64 x 128: 32 KiB) and one panel's
 * slice (128 x NR, 24 KiB at NR = 48) stay in L1 while every row tile passes over them. With all
 * of K at once, A (128 KiB at 64 x 512) came from L2 and the product ran 25% slower. C is read
 * and written once per block of DEPTH. The last panel of a width that is no multiple of NR is
 * only as wide as its columns round up to (one or two vectors), and runs tiles that wide: at
 * H = 128 or 256 (BPTT's product, N = H) a full-width last panel made 11% of the multiply-adds
 * on zeros, at H = 64 a third. */
#define DEFINE_PRODUCT(ISA, TARGET)                                                                \
    TARGET static void product_##ISA(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, \
                                     const float *packed, float *C, int64_t ldc, int accumulate) { \
        const int64_t padded = packed_columns(N, LANES_##ISA);                                     \
        const float *end = packed + K * padded;                                                    \
        for (int64_t r0 = 0; r0 < M; r0 += ROW_BLOCK) {                                            \
            const int64_t rows = M - r0 < ROW_BLOCK ? M - r0 : ROW_BLOCK;                          \
            for (int64_t k0 = 0; k0 < K; k0 += DEPTH) {                                           \
                const int64_t depth = K - k0 < DEPTH ? K - k0 : DEPTH;                             \
                for (int64_t first = 0; first < N; first += WIDTH_##ISA) {                         \
                    const int64_t cols = N - first < WIDTH_##ISA ? N - first : WIDTH_##ISA;        \
                    const int64_t width = panel_width(cols, LANES_##ISA);                          \
                    const float *slice = packed + k0 * padded + first * depth;                     \
                    const float *next = slice + depth * width;                                     \
                    const int64_t left = (int64_t)sizeof(float) * (end - next);                    \
                    const int64_t ahead = (int64_t)sizeof(float) * depth * WIDTH_##ISA;            \
                    const float *A_block = A + r0 * lda + k0;                                      \
                    float *C_block = C + r0 * ldc + first;                                         \
                    const int sum = accumulate || k0 > 0;                                          \
                    const int64_t fetch = left < ahead ? left : ahead;                             \
                    if (width == 3 * LANES_##ISA)                                                  \
                        rows_##ISA##_3(rows, depth, A_block, lda, slice, C_block, ldc, cols, sum,  \
                                       (const char *)next, fetch);                                 \
                    else if (width == 2 * LANES_##ISA)                                             \
                        rows_##ISA##_2(rows, depth, A_block, lda, slice, C_block, ldc, cols, sum,  \
                                       (const char *)next, fetch);                                 \
                    else                                                                           \
                        rows_##ISA##_1(rows, depth, A_block, lda, slice, C_block, ldc, cols, sum,  \
                                       (const char *)next, fetch);                                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_VECTORS(ISA, LANES, VECTORS)                                                        \
    typedef float vec_##ISA __attribute__((vector_size(LANES * 4)));                               \
    typedef float unaligned_##ISA __attribute__((vector_size(LANES * 4), aligned(4)));             \
    enum { WIDTH_##ISA = LANES * VECTORS, LANES_##ISA = LANES };

/* AVX-512: tiles of up to 8 x 48, 24 of the 32 vector registers accumulating; AVX2 with FMA: up
 * to 4 x 24, 12 of 16. Narrower tiles (one or two vectors) for a last panel. */
#define DEFINE_TILES(ISA, TARGET, LANES, VECTORS, TOP)                                             \
    DEFINE_TILE(ISA, TARGET, LANES, VECTORS, TOP, FETCH_PER_TERM_ALONE, TOP##_alone)               \
    DEFINE_TILE(ISA, TARGET, LANES, VECTORS, 8, FETCH_PER_TERM, 8)                                 \
    DEFINE_TILE(ISA, TARGET, LANES, VECTORS, 4, FETCH_PER_TERM, 4)                                 \
    DEFINE_TILE(ISA, TARGET, LANES, VECTORS, 2, FETCH_PER_TERM, 2)                                 \
    DEFINE_TILE(ISA, TARGET, LANES, VECTORS, 1, FETCH_PER_TERM, 1)                                 \
    DEFINE_ROWS(ISA, TARGET, VECTORS, TOP)

#define AVX512 __attribute__((target("avx512f")))
DEFINE_VECTORS(avx512, 16, PANEL_VECTORS)
DEFINE_TILES(avx512, AVX512, 16, 3, 8)
DEFINE_TILES(avx512, AVX512, 16, 2, 8)
DEFINE_TILES(avx512, AVX512, 16, 1, 8)
DEFINE_PRODUCT(avx512, AVX512)

#define AVX2 __attribute__((target("avx2,fma")))
DEFINE_VECTORS(avx2, 8, PANEL_VECTORS)
DEFINE_TILES(avx2, AVX2, 8, 3, 4)
DEFINE_TILES(avx2, AVX2, 8, 2, 4)
DEFINE_TILES(avx2, AVX2, 8, 1, 4)
DEFINE_PRODUCT(avx2, AVX2)

enum { ISA_UNKNOWN = -1, ISA_NONE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static int isa = ISA_UNKNOWN;

static int best_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
    return ISA_NONE;
}

static int chosen_isa(void) {
    if (isa == ISA_UNKNOWN) isa = best_isa();
    return isa;
}
#else
#define HAVE_PACKED_KERNELS 0
static int chosen_isa(void) { return 0; }
#endif

/* Columns per panel of this CPU's kernel, 0 where there is none (then nothing here is called).
 * force: -1 the CPU's best, 1 AVX2 (tests run it on AVX-512 CPUs too), 0 none. */
int64_t rnnkit_packed_width(int force) {
#if HAVE_PACKED_KERNELS
    if (force >= 0) {
        const int best = best_isa();
        isa = force < best ? force : best;
    }
    switch (chosen_isa()) {
    case ISA_AVX512: return WIDTH_avx512;
    case ISA_AVX2: return WIDTH_avx2;
    }
#else
    (void)force;
#endif
    return 0;
}

/* B (K, N) -> packed (rnnkit_packed_columns(N) * K floats), in blocks of DEPTH rows of B one after
 * the other; within a block, panel after panel, each the block's rows of NR columns [p NR, p NR +
 * NR), the last one only its columns rounded up to whole vectors (columns past N zero): what
 * product_* reads for one block is one contiguous run, which the hardware prefetchers stream
 * ahead of the tiles. B is read as rows of B (B[k ldb + j]) or, transposed, as rows of B^T (B[j
 * ldb + k]: a weight matrix W (N, K) for the product with W^T, no copy of W^T needed). */
void rnnkit_pack_blocks_f32(const float *B, int64_t ldb, int transposed, int64_t K, int64_t N,
                            float *packed, int64_t first_block, int64_t end_block) {
    const int64_t width = rnnkit_packed_width(-1), lanes = width / PANEL_VECTORS;
    const int64_t padded = packed_columns(N, lanes);
    const int64_t end = end_block * DEPTH < K ? end_block * DEPTH : K;
    for (int64_t k0 = first_block * DEPTH; k0 < end; k0 += DEPTH) {
        const int64_t depth = K - k0 < DEPTH ? K - k0 : DEPTH;
        for (int64_t first = 0; first < N; first += width) {
            const int64_t cols = N - first < width ? N - first : width;
            const int64_t stride = panel_width(cols, lanes);
            float *panel = packed + k0 * padded + first * depth;
            /* 16 terms at a time (a cache line of each of W's rows), so that what is read and
               what is written stay in L1 together: a whole 128-term row of W at a time, written
               down a column of the panel, ran 2.3x slower than the contiguous pack. */
            for (int64_t kk = 0; transposed && kk < depth; kk += 16) {
                const int64_t span = depth - kk < 16 ? depth - kk : 16;
                for (int64_t j = 0; j < stride; j++) {
                    const float *column = B + (j < cols ? first + j : 0) * ldb + k0 + kk;
                    for (int64_t k = 0; k < span; k++)
                        panel[(kk + k) * stride + j] = j < cols ? column[k] : 0.0f;
                }
            }
            for (int64_t k = 0; !transposed && k < depth; k++) {
                memcpy(panel + k * stride, B + (k0 + k) * ldb + first, (size_t)cols * sizeof(float));
                memset(panel + k * stride + cols, 0, (size_t)(stride - cols) * sizeof(float));
            }
        }
    }
}

/* All of B; rnnkit_pack_blocks_f32 packs blocks [first_block, end_block) of DEPTH rows of B, which
 * touch no other block's memory (the slices of a parallel pack), and rnnkit_pack_depth says how
 * many rows a block has. */
void rnnkit_pack_f32(const float *B, int64_t ldb, int transposed, int64_t K, int64_t N,
                     float *packed) {
    rnnkit_pack_blocks_f32(B, ldb, transposed, K, N, packed, 0, (K + DEPTH - 1) / DEPTH);
}

int64_t rnnkit_pack_depth(void) { return DEPTH; }

/* Columns of B as packed on this CPU (N rounded up as rnnkit_pack_blocks_f32 pads it), 0 where
 * there is no kernel: the packed B holds K times that many floats. */
int64_t rnnkit_packed_columns(int64_t N) {
    const int64_t width = rnnkit_packed_width(-1);
    return width ? packed_columns(N, width / PANEL_VECTORS) : 0;
}

/* C (M, N), leading dimension ldc, = A (M, K) B, or += when accumulate; B packed by
 * rnnkit_pack_f32 on this CPU. */
void rnnkit_packed_product_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *packed, float *C, int64_t ldc, int accumulate) {
#if HAVE_PACKED_KERNELS
    if (chosen_isa() == ISA_AVX512)
        product_avx512(M, N, K, A, lda, packed, C, ldc, accumulate);
    else
        product_avx2(M, N, K, A, lda, packed, C, ldc, accumulate);
#else
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)packed, (void)C, (void)ldc, (void)accumulate;
#endif
}
