/*
 * backend_cpu.c: the reference backend. Matrix products go to OpenBLAS (cblas_sgemm, row-major);
 * elementwise and per-row work is spread over OpenMP threads.
 *
 * Attention runs tasks of (sequence, head, block of query rows) on OpenMP threads with OpenBLAS
 * held to one thread meanwhile: the products of one head are too small to split well, and nested
 * threading would oversubscribe the cores. It is causal-aware: nothing above the diagonal block
 * is computed, forward or backward. Each thread keeps its own scratch, and backward one shared
 * block (grown on demand, never freed: they live as long as the process), so no op allocates in
 * steady state.
 *
 * Elementwise work that needs exp (softmax, the loss, SiLU) uses one vectorised exp
 * (exp_nonpositive) instead of libm's scalar expf; RoPE reads a table of its rotations.
 *
 * Accuracy: sums over a row (RMSNorm, softmax, the loss) are accumulated in float with the
 * maximum subtracted first, except the loss total and squared norms, which are double.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- memory ------------------------------------------------------------------------------ */

static void *cpu_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}
static void cpu_release(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }

/* Per-thread scratch of at least n floats. */
static float *thread_scratch(size_t n) {
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (n > cap) {
        free(buf);
        cap = n + n / 4;
        buf = ls_malloc(cap * sizeof(float));
    }
    return buf;
}

/* exp(x) for x <= 0, as softmax needs it after subtracting the maximum. Written to vectorise
 * (no libm call), after Cephes' expf: n = round(x / ln 2), r = x - n ln 2 in two parts (Cody-Waite)
 * so that |r| <= ln 2 / 2 exactly, e^r by a degree-7 polynomial, times 2^n through the exponent
 * bits. Relative error below 2e-7 over [-87, 0] (measured against exp() in double, step 1e-5);
 * inputs below -87 return e^-87, whose share of any sum beside e^0 = 1 is nil in float; NaN (a
 * diverged model) comes out as NaN, without being converted to int on the way.
 *
 * TRUNC truncates t = x / ln 2 - 1/2 <= 0 toward zero, which rounds x / ln 2 to nearest: a plain
 * (int) conversion for SSE2 (which has no vector truncation; GCC vectorises the conversion there),
 * truncf for AVX2 and AVX-512 (where GCC vectorises truncf but not the conversion). Both give the
 * same n, so every instruction set computes the same value, bit for bit. */
#define EXP_NONPOSITIVE(name, TRUNC)                                                                                \
    static inline float name(float in) {                                                                          \
        float x = in > -87.0f ? in : -87.0f; /* NaN compares false: -87 */                                        \
        int n = (int)TRUNC(x * 1.44269504088896341f - 0.5f);                                                      \
        float fn = (float)n;                                                                                       \
        float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;                                                    \
        float p = 1.9875691500e-4f;                                                                                \
        p = p * r + 1.3981999507e-3f;                                                                              \
        p = p * r + 8.3334519073e-3f;                                                                              \
        p = p * r + 4.1665795894e-2f;                                                                              \
        p = p * r + 1.6666665459e-1f;                                                                              \
        p = p * r + 5.0000001201e-1f;                                                                              \
        p = p * r * r + r + 1.0f;                                                                                  \
        int32_t bits = (int32_t)((uint32_t)(n + 127) << 23);                                                       \
        float scale;                                                                                               \
        memcpy(&scale, &bits, sizeof scale);                                                                       \
        return in == in ? p * scale : in;                                                                          \
    }
#define TRUNC_CAST(t) (t)
EXP_NONPOSITIVE(exp_nonpositive, TRUNC_CAST)
#if defined(__x86_64__) && defined(__GNUC__)
EXP_NONPOSITIVE(exp_nonpositive_trunc, __builtin_truncf)
#endif

/* The loops where the time goes into exp, once per instruction set: the baseline, and on x86-64
 * AVX2 and AVX-512 (2x and 5x the baseline's exps per second on the development machine), picked
 * at startup by what the CPU supports (ls_cpu_vector_level). Elementwise results are the same on
 * every one; a row's sum is vectorised too, so its last bits follow the vector width (the same
 * machine always gives the same bits).
 *   exp_shift_sum: z[j] = exp(z[j] - shift) for j < n, returns their sum;
 *   softmax_grad: p[j] = exp(p[j] - lse), ds[j] = p[j] (ds[j] - D) for j < n (attention backward);
 *   swiglu_fwd, swiglu_bwd: SwiGLU over n elements (below). */
#define VECTOR_KERNELS(sfx, ATTR, EXP)                                                                             \
    ATTR static float exp_shift_sum_##sfx(float *z, int n, float shift) {                                          \
        float sum = 0;                                                                                             \
        _Pragma("omp simd reduction(+ : sum)") for (int j = 0; j < n; j++) sum += (z[j] = EXP(z[j] - shift));     \
        return sum;                                                                                                \
    }                                                                                                              \
    ATTR static void softmax_grad_##sfx(float *p, float *ds, int n, float lse, float D) {                          \
        _Pragma("omp simd") for (int j = 0; j < n; j++) {                                                          \
            p[j] = EXP(p[j] - lse);                                                                                \
            ds[j] = p[j] * (ds[j] - D);                                                                            \
        }                                                                                                          \
    }                                                                                                              \
    /* sig(g) with e = exp(-|g|) in (0, 1]: 1 / (1 + e) for g >= 0, e / (1 + e) below, never overflowing */      \
    ATTR static void swiglu_fwd_##sfx(float *h, const float *g, const float *u, size_t n) {                        \
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) {                                                       \
            float e = EXP(-fabsf(g[i])), r = 1.0f / (1.0f + e), sig = g[i] >= 0 ? r : e * r;                       \
            h[i] = g[i] * sig * u[i];                                                                              \
        }                                                                                                          \
    }                                                                                                              \
    /* silu'(g) = sig(g) (1 + g (1 - sig(g))) */                                                                   \
    ATTR static void swiglu_bwd_##sfx(float *dg, float *du, const float *dh, const float *g, const float *u,       \
                                      size_t n) {                                                                  \
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) {                                                       \
            float e = EXP(-fabsf(g[i])), r = 1.0f / (1.0f + e), sig = g[i] >= 0 ? r : e * r;                       \
            du[i] = dh[i] * g[i] * sig;                                                                            \
            dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));                                             \
        }                                                                                                          \
    }

VECTOR_KERNELS(base, , exp_nonpositive)
#if defined(__x86_64__) && defined(__GNUC__)
VECTOR_KERNELS(avx2, __attribute__((target("avx2"))), exp_nonpositive_trunc)
VECTOR_KERNELS(avx512, __attribute__((target("avx512f"))), exp_nonpositive_trunc)
#endif

/* The inner loops of the thin products (below, where they are described), once per instruction
 * set like the exp loops: one row or one block of rows of the output per call. Each output
 * element is summed in the same order on every one (no contraction into FMA: ISO C), except
 * thin_n_row's dot products, whose partial sums follow the vector width. THIN_ACC is the largest
 * accumulator block (THIN x THIN_BLOCK floats). */
enum { THIN = 16, THIN_BLOCK = 64, THIN_ROW = 1024 };
#define THIN_KERNELS(sfx, ATTR)                                                                                    \
    /* c[j] = alpha sum_p a[p] b[p][j] (+ beta c[j]), b (k, n) row-major; by blocks of THIN_ROW   \
     * columns summed in a local row, one clean pass over b's row p at a time */                                  \
    ATTR static void thin_k_row_##sfx(float *c, const float *a, const float *b, int n, int k, float alpha,         \
                                      float beta) {                                                                \
        float s[THIN_ROW];                                                                                         \
        for (int j0 = 0; j0 < n; j0 += THIN_ROW) {                                                                 \
            int w = n - j0 < THIN_ROW ? n - j0 : THIN_ROW;                                                         \
            const float *b0 = b + j0;                                                                              \
            float a0 = a[0];                                                                                       \
            _Pragma("omp simd") for (int j = 0; j < w; j++) s[j] = a0 * b0[j];                                     \
            for (int p = 1; p < k; p++) {                                                                          \
                const float *bp = b0 + (size_t)p * n;                                                              \
                float ap = a[p];                                                                                   \
                _Pragma("omp simd") for (int j = 0; j < w; j++) s[j] += ap * bp[j];                                \
            }                                                                                                      \
            float *cj = c + j0;                                                                                    \
            if (beta == 0) {                                                                                       \
                _Pragma("omp simd") for (int j = 0; j < w; j++) cj[j] = alpha * s[j];                              \
            } else {                                                                                               \
                _Pragma("omp simd") for (int j = 0; j < w; j++) cj[j] = alpha * s[j] + beta * cj[j];               \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
    /* c[j] = alpha a . b[j] (+ beta c[j]), b (n, k) row-major: n dot products over k */                          \
    ATTR static void thin_n_row_##sfx(float *c, const float *a, const float *b, int n, int k, float alpha,         \
                                      float beta) {                                                                \
        for (int j = 0; j < n; j++) {                                                                              \
            const float *bj = b + (size_t)j * k;                                                                   \
            float s = 0;                                                                                           \
            _Pragma("omp simd reduction(+ : s)") for (int p = 0; p < k; p++) s += a[p] * bj[p];                   \
            c[j] = beta == 0 ? alpha * s : alpha * s + beta * c[j];                                                \
        }                                                                                                          \
    }                                                                                                              \
    /* acc[j][i] += sum over p in order of a[p][i] b(p, j), i < w, for the k rows of a (ld lda) */                 \
    ATTR static void thin_n_ta_block_##sfx(float (*acc)[THIN_BLOCK], const float *a, size_t lda, const float *b,   \
                                           int n, int k, int tb, int w) {                                          \
        for (int p = 0; p < k; p++) {                                                                              \
            const float *ap = a + (size_t)p * lda;                                                                 \
            for (int j = 0; j < n; j++) {                                                                          \
                float bj = tb ? b[(size_t)j * k + p] : b[(size_t)p * n + j];                                       \
                _Pragma("omp simd") for (int i = 0; i < w; i++) acc[j][i] += ap[i] * bj;                           \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
    /* acc[i][j] += sum over p in order of op(a)(i, p) b[p][j], j < w, i < m (b's rows ld ldb) */                  \
    ATTR static void thin_m_block_##sfx(float (*acc)[THIN_BLOCK], const float *a, const float *b, size_t ldb,      \
                                        int m, int k, int ta, int w) {                                             \
        for (int p = 0; p < k; p++) {                                                                              \
            const float *bp = b + (size_t)p * ldb;                                                                 \
            for (int i = 0; i < m; i++) {                                                                          \
                float ai = ta ? a[(size_t)p * m + i] : a[(size_t)i * k + p];                                       \
                _Pragma("omp simd") for (int j = 0; j < w; j++) acc[i][j] += ai * bp[j];                           \
            }                                                                                                      \
        }                                                                                                          \
    }

THIN_KERNELS(base, )
#if defined(__x86_64__) && defined(__GNUC__)
THIN_KERNELS(avx2, __attribute__((target("avx2"))))
THIN_KERNELS(avx512, __attribute__((target("avx512f"))))
#endif

static struct {
    int level;
    float (*exp_shift_sum)(float *z, int n, float shift);
    void (*softmax_grad)(float *p, float *ds, int n, float lse, float D);
    void (*swiglu_fwd)(float *h, const float *g, const float *u, size_t n);
    void (*swiglu_bwd)(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
    void (*thin_k_row)(float *c, const float *a, const float *b, int n, int k, float alpha, float beta);
    void (*thin_n_row)(float *c, const float *a, const float *b, int n, int k, float alpha, float beta);
    void (*thin_n_ta_block)(float (*acc)[THIN_BLOCK], const float *a, size_t lda, const float *b, int n, int k,
                            int tb, int w);
    void (*thin_m_block)(float (*acc)[THIN_BLOCK], const float *a, const float *b, size_t ldb, int m, int k, int ta,
                         int w);
} vk = {0, exp_shift_sum_base, softmax_grad_base, swiglu_fwd_base, swiglu_bwd_base,
        thin_k_row_base, thin_n_row_base, thin_n_ta_block_base, thin_m_block_base};

int ls_cpu_vector_level(int max_level) {
    int level = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) level = 1;
    if (__builtin_cpu_supports("avx512f")) level = 2;
#endif
    if (max_level >= 0 && level > max_level) level = max_level;
    vk.level = level;
    vk.exp_shift_sum = exp_shift_sum_base, vk.softmax_grad = softmax_grad_base;
    vk.swiglu_fwd = swiglu_fwd_base, vk.swiglu_bwd = swiglu_bwd_base;
    vk.thin_k_row = thin_k_row_base, vk.thin_n_row = thin_n_row_base;
    vk.thin_n_ta_block = thin_n_ta_block_base, vk.thin_m_block = thin_m_block_base;
#if defined(__x86_64__) && defined(__GNUC__)
    if (level == 1) {
        vk.exp_shift_sum = exp_shift_sum_avx2, vk.softmax_grad = softmax_grad_avx2;
        vk.swiglu_fwd = swiglu_fwd_avx2, vk.swiglu_bwd = swiglu_bwd_avx2;
        vk.thin_k_row = thin_k_row_avx2, vk.thin_n_row = thin_n_row_avx2;
        vk.thin_n_ta_block = thin_n_ta_block_avx2, vk.thin_m_block = thin_m_block_avx2;
    } else if (level == 2) {
        vk.exp_shift_sum = exp_shift_sum_avx512, vk.softmax_grad = softmax_grad_avx512;
        vk.swiglu_fwd = swiglu_fwd_avx512, vk.swiglu_bwd = swiglu_bwd_avx512;
        vk.thin_k_row = thin_k_row_avx512, vk.thin_n_row = thin_n_row_avx512;
        vk.thin_n_ta_block = thin_n_ta_block_avx512, vk.thin_m_block = thin_m_block_avx512;
    }
#endif
    return level;
}

/* The largest of x[0..n) (NaN-free input: a NaN is not propagated, the sums after it are). */
static inline float row_max(const float *x, int n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    return mx;
}

/* ---- matrix products and simple elementwise ops ------------------------------------------ */

/* Thin products: one dimension at most THIN (a LoRA rank). OpenBLAS runs them at 1-5 GFLOP/s on
 * 2 cores (a 1024 x 896 x 4 product took 8 ms, the time of a 1024 x 896 x 300 one): its kernels
 * and threading are built for blocks of every dimension, and these products are a pass over
 * memory with a few multiply-adds per element. Written as such passes here, each output element
 * summed by one thread in a fixed order (results repeat bit for bit at any thread count). They
 * follow BLAS: beta 0 ignores what c held. */
static float *thin_scratch(size_t n) {
    static float *buf;
    static size_t cap;
    if (n > cap) {
        free(buf);
        buf = ls_malloc(sizeof(float) * n);
        cap = n;
    }
    return buf;
}

/* x (rows, cols) transposed into scratch (cols, rows). */
static const float *thin_transpose(const float *x, int rows, int cols) {
    float *t = thin_scratch((size_t)rows * cols);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++) t[(size_t)j * rows + i] = x[(size_t)i * cols + j];
    return t;
}

static inline void thin_store(float *c, float v, float alpha, float beta) { *c = beta == 0 ? alpha * v : alpha * v + beta * *c; }

/* k <= THIN: row i of c is a combination of the k rows of op(b), (k, n) row-major. */
static void thin_k(float *c, const float *a, const float *b, int m, int n, int k, int ta, int tb, float alpha,
                   float beta) {
    const float *bk = tb ? thin_transpose(b, n, k) : b;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; i++) {
        float ai[THIN];
        for (int p = 0; p < k; p++) ai[p] = ta ? a[(size_t)p * m + i] : a[(size_t)i * k + p];
        vk.thin_k_row(c + (size_t)i * n, ai, bk, n, k, alpha, beta);
    }
}

/* n <= THIN, a not transposed: c[i][j] = a row i . op(b) column j, the columns as rows (n, k). */
static void thin_n(float *c, const float *a, const float *b, int m, int n, int k, int tb, float alpha, float beta) {
    const float *bn = tb ? b : thin_transpose(b, k, n);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; i++) vk.thin_n_row(c + (size_t)i * n, a + (size_t)i * k, bn, n, k, alpha, beta);
}

/* n <= THIN, a transposed (a is (k, m)): c[i][j] = sum over p of a[p][i] op(b)[p][j], a sum over
 * the k rows; each task owns THIN_BLOCK rows of c and walks every p in order. */
static void thin_n_ta(float *c, const float *a, const float *b, int m, int n, int k, int tb, float alpha,
                      float beta) {
#pragma omp parallel for schedule(static)
    for (int i0 = 0; i0 < m; i0 += THIN_BLOCK) {
        int w = m - i0 < THIN_BLOCK ? m - i0 : THIN_BLOCK;
        float acc[THIN][THIN_BLOCK] = {{0}};
        vk.thin_n_ta_block(acc, a + i0, (size_t)m, b, n, k, tb, w);
        for (int i = 0; i < w; i++)
            for (int j = 0; j < n; j++) thin_store(c + (size_t)(i0 + i) * n + j, acc[j][i], alpha, beta);
    }
}

/* m <= THIN, b not transposed: row i of c is a combination of the k rows of b; each task owns
 * THIN_BLOCK columns of c and walks every p in order. */
static void thin_m(float *c, const float *a, const float *b, int m, int n, int k, int ta, float alpha, float beta) {
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < n; j0 += THIN_BLOCK) {
        int w = n - j0 < THIN_BLOCK ? n - j0 : THIN_BLOCK;
        float acc[THIN][THIN_BLOCK] = {{0}};
        vk.thin_m_block(acc, a, b + j0, (size_t)n, m, k, ta, w);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < w; j++) thin_store(c + (size_t)i * n + j0 + j, acc[i][j], alpha, beta);
    }
}

static void cpu_matmul(float *c, const float *a, const float *b, int m, int n, int k, int trans_a, int trans_b,
                       float alpha, float beta) {
    if (k <= THIN)
        thin_k(c, a, b, m, n, k, trans_a, trans_b, alpha, beta);
    else if (n <= THIN && !trans_a)
        thin_n(c, a, b, m, n, k, trans_b, alpha, beta);
    else if (n <= THIN)
        thin_n_ta(c, a, b, m, n, k, trans_b, alpha, beta);
    else if (m <= THIN && !trans_b)
        thin_m(c, a, b, m, n, k, trans_a, alpha, beta);
    else
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
}

static void cpu_add_bias(float *y, const float *bias, int rows, int cols) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        float *row = y + (size_t)r * cols;
        for (int j = 0; j < cols; j++) row[j] += bias[j];
    }
}

static void cpu_add(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void cpu_embedding(float *out, const int32_t *ids, const float *table, int n, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * C, table + (size_t)ids[i] * C, sizeof(float) * (size_t)C);
}

static void cpu_scale(float *x, float s, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* Deterministic: fixed blocks summed in order, so a run repeats bit for bit (an OpenMP
 * reduction may combine thread partials in any order). */
static double cpu_sum_squares(const float *x, size_t n) {
    enum { BLOCKS = 64 };
    double part[BLOCKS] = {0};
    size_t per = (n + BLOCKS - 1) / BLOCKS;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < BLOCKS; b++) {
        size_t lo = (size_t)b * per, hi = lo + per < n ? lo + per : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
        part[b] = s;
    }
    double sum = 0;
    for (int b = 0; b < BLOCKS; b++) sum += part[b];
    return sum;
}

/* ---- RMSNorm ------------------------------------------------------------------------------- */

static void cpu_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int rows, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *yr = y + (size_t)r * C;
        float ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < C; j++) ss += xr[j] * xr[j];
        float s = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[r] = s;
        for (int j = 0; j < C; j++) yr[j] = w[j] * (xr[j] * s);
    }
}

/* y = w * xhat, xhat = x * s: dx = s * (w dy - xhat * mean(w dy * xhat)). */
static void cpu_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, const float *rstd,
                                 int rows, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C, *dyr = dy + (size_t)r * C;
        float *dxr = dx + (size_t)r * C;
        float s = rstd[r], dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < C; j++) dot += w[j] * dyr[j] * xr[j] * s;
        dot /= (float)C;
        for (int j = 0; j < C; j++) dxr[j] += s * (w[j] * dyr[j] - xr[j] * s * dot);
    }
}

/* ---- RoPE ---------------------------------------------------------------------------------- */

/* The rotation of every position, computed once: cos and sin of pos * theta^(-2i/hd) for
 * positions [0, n_pos), rows of hd floats (hd/2 cosines, then hd/2 sines), computed in double
 * exactly as the direct formula and rounded to float, so a table entry and the formula agree to
 * the last bit. Grown when a longer sequence (or a later generation position) needs it and rebuilt
 * when theta or hd change; like every op, it is called from one thread at a time. Never freed:
 * it lives as long as the process (8 MB at 32768 positions of hd 64). */
static struct {
    float theta;
    int hd, n_pos;
    float *table;
} rope_cache;

static const float *rope_table(int n_pos, int hd, float theta) {
    if (rope_cache.table && rope_cache.theta == theta && rope_cache.hd == hd && rope_cache.n_pos >= n_pos)
        return rope_cache.table;
    int have = rope_cache.theta == theta && rope_cache.hd == hd ? rope_cache.n_pos : 0;
    int grow = n_pos > 2 * have ? n_pos : 2 * have; /* doubling: a growing generation rebuilds rarely */
    float *t = ls_malloc(sizeof(float) * (size_t)grow * hd);
    if (have) memcpy(t, rope_cache.table, sizeof(float) * (size_t)have * hd);
    int half = hd / 2;
#pragma omp parallel for schedule(static)
    for (int pos = have; pos < grow; pos++)
        for (int i = 0; i < half; i++) {
            double angle = (double)pos * pow((double)theta, -2.0 * i / hd);
            t[(size_t)pos * hd + i] = (float)cos(angle);
            t[(size_t)pos * hd + half + i] = (float)sin(angle);
        }
    free(rope_cache.table);
    rope_cache.table = t, rope_cache.theta = theta, rope_cache.hd = hd, rope_cache.n_pos = grow;
    return t;
}

/* Rotate-half: for i < hd/2, (x_i, x_{i+hd/2}) turns by angle pos * theta^(-2i/hd); direction
 * -1 applies the inverse rotation (the backward of a rotation is its transpose). */
static void rope_apply(float *x, int rows, int T, int pos0, int heads, int hd, float theta, float direction) {
    int half = hd / 2;
    const float *table = rope_table(pos0 + (rows < T ? rows : T), hd, theta);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *cs = table + (size_t)(pos0 + r % T) * hd, *sn = cs + half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)r * heads * hd + (size_t)h * hd;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], s = direction * sn[i];
                v[i] = a * cs[i] - b * s;
                v[i + half] = b * cs[i] + a * s;
            }
        }
    }
}

static void cpu_rope_forward(float *x, int rows, int T, int pos0, int heads, int hd, float theta) {
    rope_apply(x, rows, T, pos0, heads, hd, theta, 1.0f);
}
static void cpu_rope_backward(float *dx, int rows, int T, int pos0, int heads, int hd, float theta) {
    rope_apply(dx, rows, T, pos0, heads, hd, theta, -1.0f);
}

/* ---- attention ----------------------------------------------------------------------------- */

void ls_cpu_threads_set(int n) {
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    if (openblas_get_parallel() != 2) openblas_set_num_threads(n); /* the OpenMP build follows OpenMP */
}

int ls_cpu_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return openblas_get_num_threads();
#endif
}

/* OpenBLAS to one thread while OpenMP runs heads in parallel; restored afterwards. The OpenMP
 * build of OpenBLAS already runs single-threaded inside a parallel region, and there
 * openblas_set_num_threads would change the program's OpenMP thread count: leave it alone. */
static int blas_threads_single(void) {
    if (openblas_get_parallel() == 2) return 0;
    int n = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return n;
}

static void blas_threads_restore(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

/* Causal attention in blocks of query rows: the block of rows [i0, i1) sees keys [0, past + i1)
 * only, so of the T x T square only the triangle and the diagonal blocks are computed (T = 256:
 * 62.5% of the square with blocks of 64, against 100% before), forward and backward. A block of
 * 64 rows keeps the products large enough for OpenBLAS; the block size depends on T alone, never
 * on the thread count, so results do not change with the number of cores. */
enum { ATT_BLOCK = 64 };

/* Softmax of row i of s over keys 0..last (the rest of the n-wide row masked to 0); returns the
 * log-sum-exp. */
static float softmax_row(float *s, int last, int n) {
    float mx = row_max(s, last + 1), sum = vk.exp_shift_sum(s, last + 1, mx);
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j <= last; j++) s[j] *= inv;
    for (int j = last + 1; j < n; j++) s[j] = 0;
    return mx + logf(sum);
}

/* T_new query rows per sequence against T_total keys, of which the queries are the last T_new
 * (causal: row i sees keys 0 .. T_total - T_new + i). k and v hold T_max positions per sequence.
 * Training is the case T_new = T_total = T_max; generation feeds new rows against a cache.
 * lse (B, NH, T_new) receives each row's log-sum-exp when non-NULL.
 *
 * One task per (sequence, head, block of query rows), largest blocks first, each on one thread
 * with its own scratch: S = Q K^T over the visible keys, softmax, O = P V (overwritten). */
static void attention_rows(float *out, float *lse, const float *q, const float *k, const float *v, int B, int T_new,
                           int T_total, int T_max, int NH, int KVH, int hd) {
    int ldq = NH * hd, ldk = KVH * hd, group = NH / KVH, past = T_total - T_new;
    int nb = (T_new + ATT_BLOCK - 1) / ATT_BLOCK, pairs = B * NH;
    float scale = 1.0f / sqrtf((float)hd);
    int saved = blas_threads_single();
#pragma omp parallel for schedule(dynamic)
    for (int task = 0; task < pairs * nb; task++) {
        int blk = nb - 1 - task / pairs, bh = task % pairs; /* the last blocks see the most keys */
        int b = bh / NH, h = bh % NH, kh = h / group;
        int i0 = blk * ATT_BLOCK, i1 = i0 + ATT_BLOCK < T_new ? i0 + ATT_BLOCK : T_new, rows = i1 - i0;
        int keys = past + i1;
        const float *Q = q + ((size_t)b * T_new + i0) * ldq + (size_t)h * hd;
        const float *K = k + (size_t)b * T_max * ldk + (size_t)kh * hd;
        const float *V = v + (size_t)b * T_max * ldk + (size_t)kh * hd;
        float *O = out + ((size_t)b * T_new + i0) * ldq + (size_t)h * hd;
        float *S = thread_scratch((size_t)rows * keys);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hd, scale, Q, ldq, K, ldk, 0.0f, S, keys);
        for (int i = 0; i < rows; i++) {
            float l = softmax_row(S + (size_t)i * keys, past + i0 + i, keys);
            if (lse) lse[(size_t)bh * T_new + i0 + i] = l;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, keys, 1.0f, S, keys, V, ldk, 0.0f, O, ldq);
    }
    blas_threads_restore(saved);
}

static void cpu_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int B,
                                  int T, int NH, int KVH, int hd) {
    attention_rows(out, lse, q, k, v, B, T, T, T, NH, KVH, hd);
}

static void cpu_attention_cached(float *out, const float *q, const float *k_cache, const float *v_cache, int B,
                                 int T_new, int T_total, int T_max, int NH, int KVH, int hd) {
    attention_rows(out, NULL, q, k_cache, v_cache, B, T_new, T_total, T_max, NH, KVH, hd);
}

/* Backward scratch: P and dS of a wave of (sequence, head) pairs, (T, T) each, and dK and dV per
 * query head, (B*T, NH*hd) each, before the heads that share a key/value head are summed. Grown to
 * the largest need and kept (like the per-thread scratch); a wave holds as many pairs as fit
 * ATT_STORE_FLOATS (all of them at B x 256 tokens up to B = 64; one at a time from T = 4096). */
enum { ATT_STORE_FLOATS = 32 << 20 }; /* 128 MB */
static float *att_store, *att_dkv;
static size_t att_store_cap, att_dkv_cap;

static float *grown(float **buf, size_t *cap, size_t n) {
    if (n > *cap) {
        free(*buf);
        *buf = ls_malloc(sizeof(float) * n);
        *cap = n;
    }
    return *buf;
}

/* With P = softmax(S), S = scale Q K^T: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
 * dQ = scale dS K, dK = scale dS^T Q. In three passes, each parallel over independent tasks and
 * each summing in a fixed order (the same bits on every run and at every thread count):
 *   1. per (sequence, head, query block): P and dS of the block's rows against its visible keys,
 *      kept; dQ of those rows (overwritten);
 *   2. per (sequence, head, key block): that head's share of dK and dV for the block's keys, from
 *      the rows that see them (query rows from the block's first on);
 *   3. per row: dK and dV (overwritten) = the sum of the shares of the heads that share a
 *      key/value head, in head order. */
static void cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                   const float *lse, const float *q, const float *k, const float *v, int B, int T,
                                   int NH, int KVH, int hd) {
    int ldq = NH * hd, ldk = KVH * hd, group = NH / KVH, nb = (T + ATT_BLOCK - 1) / ATT_BLOCK;
    float scale = 1.0f / sqrtf((float)hd);
    size_t TT = (size_t)T * T, N = (size_t)B * T;
    int pairs = B * NH, wave = (int)(ATT_STORE_FLOATS / (2 * TT));
    if (wave < 1) wave = 1;
    if (wave > pairs) wave = pairs;
    float *store = grown(&att_store, &att_store_cap, (size_t)wave * 2 * TT);
    float *dk_h = grown(&att_dkv, &att_dkv_cap, 2 * N * ldq), *dv_h = dk_h + N * ldq; /* (N, NH*hd) each */
    int saved = blas_threads_single();
    for (int p0 = 0; p0 < pairs; p0 += wave) {
        int np = pairs - p0 < wave ? pairs - p0 : wave;
#pragma omp parallel for schedule(dynamic)
        for (int task = 0; task < np * nb; task++) {
            int blk = nb - 1 - task / np, w = task % np, bh = p0 + w; /* widest blocks first */
            int b = bh / NH, h = bh % NH, kh = h / group;
            int i0 = blk * ATT_BLOCK, i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
            size_t row0 = (size_t)b * T + i0;
            const float *Q = q + row0 * ldq + (size_t)h * hd, *O = out + row0 * ldq + (size_t)h * hd;
            const float *dO = dout + row0 * ldq + (size_t)h * hd, *L = lse + (size_t)bh * T + i0;
            const float *K = k + (size_t)b * T * ldk + (size_t)kh * hd, *V = v + (size_t)b * T * ldk + (size_t)kh * hd;
            float *P = store + (size_t)w * 2 * TT + (size_t)i0 * T, *dS = P + TT; /* rows i0.. of (T, T) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, hd, scale, Q, ldq, K, ldk, 0.0f, P, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, hd, 1.0f, dO, ldq, V, ldk, 0.0f, dS, T);
            for (int r = 0; r < rows; r++) {
                float *p = P + (size_t)r * T, *ds = dS + (size_t)r * T, D = 0, Li = L[r];
                const float *o = O + (size_t)r * ldq, *dor = dO + (size_t)r * ldq;
                for (int d = 0; d < hd; d++) D += dor[d] * o[d];
                int last = i0 + r;
                vk.softmax_grad(p, ds, last + 1, Li, D);
                for (int j = last + 1; j < i1; j++) p[j] = ds[j] = 0; /* above the diagonal: pass 2 reads it */
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, i1, scale, dS, T, K, ldk, 0.0f,
                        dq + row0 * ldq + (size_t)h * hd, ldq);
        }
#pragma omp parallel for schedule(dynamic)
        for (int task = 0; task < np * nb; task++) {
            int blk = task / np, w = task % np, bh = p0 + w; /* the first key blocks have the most rows */
            int b = bh / NH, h = bh % NH;
            int j0 = blk * ATT_BLOCK, j1 = j0 + ATT_BLOCK < T ? j0 + ATT_BLOCK : T, keys = j1 - j0, n = T - j0;
            size_t row0 = (size_t)b * T + j0; /* query rows j0..T-1 see these keys */
            const float *P = store + (size_t)w * 2 * TT + (size_t)j0 * T + j0, *dS = P + TT;
            const float *Q = q + row0 * ldq + (size_t)h * hd, *dO = dout + row0 * ldq + (size_t)h * hd;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, hd, n, 1.0f, P, T, dO, ldq, 0.0f,
                        dv_h + row0 * ldq + (size_t)h * hd, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, hd, n, scale, dS, T, Q, ldq, 0.0f,
                        dk_h + row0 * ldq + (size_t)h * hd, ldq);
        }
    }
    blas_threads_restore(saved);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (int kh = 0; kh < KVH; kh++) {
            const float *sk = dk_h + r * ldq + (size_t)kh * group * hd, *sv = dv_h + r * ldq + (size_t)kh * group * hd;
            float *ok = dk + r * ldk + (size_t)kh * hd, *ov = dv + r * ldk + (size_t)kh * hd;
            for (int d = 0; d < hd; d++) ok[d] = sk[d], ov[d] = sv[d];
            for (int g = 1; g < group; g++)
#pragma omp simd
                for (int d = 0; d < hd; d++) ok[d] += sk[(size_t)g * hd + d], ov[d] += sv[(size_t)g * hd + d];
        }
}

/* ---- SwiGLU -------------------------------------------------------------------------------- */

/* SiLU with the vectorised exp above instead of libm's expf one element at a time: relative error
 * below 4e-7 for |g| <= 87 (tests/test_backend.c measures it against double); beyond, the exp's
 * floor at e^-87 leaves sig(g) at most 2e-38 for g < -87, an absolute error that vanishes beside
 * any activation. NaN stays NaN. Chunks of SWIGLU_CHUNK elements per call of the kernel. */
enum { SWIGLU_CHUNK = 4096 };

static void cpu_swiglu_forward(float *h, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += SWIGLU_CHUNK)
        vk.swiglu_fwd(h + i, g + i, u + i, n - i < SWIGLU_CHUNK ? n - i : SWIGLU_CHUNK);
}

static void cpu_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += SWIGLU_CHUNK)
        vk.swiglu_bwd(dg + i, du + i, dh + i, g + i, u + i, n - i < SWIGLU_CHUNK ? n - i : SWIGLU_CHUNK);
}

/* ---- output head + cross-entropy ---------------------------------------------------------- */

/* Logits of a chunk of rows are kept whole (softmax needs the row's maximum and sum before any
 * gradient, and the head bias's gradient sums the finished probabilities over rows), so the head
 * runs in chunks of rows over the full vocabulary, and each chunk streams the whole weight (V x C,
 * 544 MB at Qwen2.5-0.5B) from memory twice, once per product. Few chunks pay: at B 4 x T 256 the
 * head took (best of 3, same run) 3.84 s in chunks of 110 rows (the old 64 MB bound), 3.31 s in
 * 3 chunks of 342, 3.00 s in one of 1024 (2.92 s would be the sgemm probe's rate). Hence up to
 * HEAD_LOGITS_FLOATS of logits (640 MB: every row at once up to 1104 rows of a 151 936 vocabulary,
 * B x T = 1024 in one chunk), the rows split evenly (never a short remainder), grown once and kept
 * like the other scratch. */
enum { HEAD_LOGITS_FLOATS = 160 << 20 };
/* The head bias's gradient is summed per group of rows while each row is still in cache, into
 * HEAD_GROUPS partial sums (fixed groups of each chunk's rows, whatever the thread count), added
 * in group order at the end of the chunk: no extra pass over the logits, same bits at any thread
 * count. */
enum { HEAD_GROUPS = 8 };
static size_t head_logits_bound = HEAD_LOGITS_FLOATS;
static float *head_logits, *head_dbias_part;
static size_t head_logits_cap, head_dbias_part_cap;
static double *head_row_loss;
static size_t head_row_loss_cap;

size_t ls_cpu_head_logits(size_t floats) {
    size_t was = head_logits_bound;
    head_logits_bound = floats ? floats : HEAD_LOGITS_FLOATS;
    return was;
}

static double cpu_head_loss(float *dx, float *dbias, const float *x, const float *w, const float *bias,
                            const int32_t *targets, int rows, int C, int V, float grad_scale) {
    if (rows < 1) return 0;
    size_t most_rows = head_logits_bound / (size_t)V;
    int most = most_rows > (size_t)rows ? rows : most_rows < 1 ? 1 : (int)most_rows;
    int chunks = (rows + most - 1) / most, chunk = (rows + chunks - 1) / chunks;
    float *logits = grown(&head_logits, &head_logits_cap, (size_t)chunk * V);
    float *part = dx && dbias ? grown(&head_dbias_part, &head_dbias_part_cap, (size_t)HEAD_GROUPS * V) : NULL;
    if ((size_t)chunk > head_row_loss_cap) {
        free(head_row_loss);
        head_row_loss = ls_malloc(sizeof(double) * (size_t)(head_row_loss_cap = (size_t)chunk));
    }
    double *row_loss = head_row_loss, loss = 0; /* per-row losses, summed in order: deterministic */
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        int n = rows - r0 < chunk ? rows - r0 : chunk, any = 0;
        for (int r = 0; r < n; r++) any |= targets[r0 + r] >= 0;
        if (!any) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1.0f, x + (size_t)r0 * C, C, w, C, 0.0f,
                    logits, V);
        /* Per row, while it is in this core's cache (a row is 600 KB at V = 151 936): the bias
         * and the maximum in one pass, one exponential per logit (kept for the gradient), then
         * softmax - onehot, scaled, in place, added to the group's share of dbias. */
        int groups = n < HEAD_GROUPS ? n : HEAD_GROUPS, per = (n + groups - 1) / groups;
#pragma omp parallel for schedule(static)
        for (int g = 0; g < groups; g++) {
            float *pg = part ? part + (size_t)g * V : NULL;
            int first = 1;
            for (int r = g * per; r < n && r < (g + 1) * per; r++) {
                row_loss[r] = 0;
                float *z = logits + (size_t)r * V;
                int32_t t = targets[r0 + r];
                if (t < 0) {
                    memset(z, 0, sizeof(float) * (size_t)V); /* contributes no gradient */
                    continue;
                }
                float mx = -INFINITY;
                if (bias) {
#pragma omp simd reduction(max : mx)
                    for (int j = 0; j < V; j++) {
                        z[j] += bias[j];
                        mx = z[j] > mx ? z[j] : mx;
                    }
                } else {
                    mx = row_max(z, V);
                }
                float zt = z[t];
                float sum = vk.exp_shift_sum(z, V, mx);
                row_loss[r] = (double)(mx + logf(sum)) - zt;
                if (!dx) continue;
                float k = grad_scale / sum;
                z[t] -= sum; /* (e_t - sum) k = k e_t - grad_scale */
                if (!pg) {
#pragma omp simd
                    for (int j = 0; j < V; j++) z[j] *= k;
                } else if (first) {
#pragma omp simd
                    for (int j = 0; j < V; j++) pg[j] = z[j] *= k;
                } else {
#pragma omp simd
                    for (int j = 0; j < V; j++) pg[j] += z[j] *= k;
                }
                first = 0;
            }
            if (pg && first) memset(pg, 0, sizeof(float) * (size_t)V); /* no row with a target */
        }
        for (int r = 0; r < n; r++) loss += row_loss[r];
        if (!dx) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, V, 1.0f, logits, V, w, C, 1.0f,
                    dx + (size_t)r0 * C, C);
        if (part) {
#pragma omp parallel for schedule(static)
            for (int j = 0; j < V; j++) {
                float s = part[j];
                for (int g = 1; g < groups; g++) s += part[(size_t)g * V + j];
                dbias[j] += s;
            }
        }
    }
    return loss;
}

/* ---- optimiser ----------------------------------------------------------------------------- */

/* PyTorch's AdamW: decoupled weight decay, then the bias-corrected Adam step. */
static void cpu_adamw(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float eps, float weight_decay, int t) {
    float c1 = 1.0f - powf(beta1, (float)t), c2 = 1.0f - powf(beta2, (float)t);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        param[i] -= lr * weight_decay * param[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        param[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
    }
}

static void cpu_sgd(float *param, const float *grad, float *buf, size_t n, float lr, float momentum,
                    float weight_decay, int t) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i] + weight_decay * param[i];
        if (momentum > 0) {
            buf[i] = t == 1 ? g : momentum * buf[i] + g;
            g = buf[i];
        }
        param[i] -= lr * g;
    }
}

static int cpu_check(void) { return LS_OK; }

static const ls_backend cpu_backend = {
    .name = "cpu",
    .host_memory = 1,
    .check = cpu_check,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .add = cpu_add,
    .embedding = cpu_embedding,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_cached = cpu_attention_cached,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .head_loss = cpu_head_loss,
    .adamw = cpu_adamw,
    .sgd = cpu_sgd,
    .sum_squares = cpu_sum_squares,
    .scale = cpu_scale,
};

const ls_backend *ls_backend_cpu(void) {
    static int picked;
    if (!picked++) ls_cpu_vector_level(-1); /* the best the CPU has */
    return &cpu_backend;
}
