/*
 * test_backend.c: every op of the backend table against a plain double-precision reference, and
 * every backward against finite differences of its forward. Table-driven over backends whose
 * memory is host memory (the CPU one): the checks read results in place. The CUDA backend is
 * held to the CPU one op by op in tests/gpu/test_cuda_backend.c.
 */
#include <math.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"
#include "testing.h"

static uint64_t rng = 42;
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(ls_rng_uniform(&rng) * 2 - 1) * scale;
}
static float *fresh(size_t n, float scale) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    fill(x, n, scale);
    return x;
}
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1));
}

static const ls_backend *backends[2];
static int n_backends;

/* Every transpose case of every path of the CPU backend's products: thin ones (one dimension up
 * to 16, a LoRA rank: k, n, n with a transposed, m) and OpenBLAS's; with beta 0.5, and with
 * beta 0 over a c full of NaN (BLAS: beta 0 ignores what c held). */
/* Every instruction set of the CPU backend's exp loops (ls_cpu_vector_level) this CPU has. */
static int vector_levels(void) {
    int best = ls_cpu_vector_level(-1);
    return best + 1;
}

static void test_matmul(void **state) {
    const int shapes[][3] = {{5, 7, 3}, {37, 300, 4}, {300, 5, 200}, {7, 300, 150}, {70, 80, 90}, {33, 16, 16}, {130, 17, 17}};
    for (int level = 0, levels = vector_levels(); level < levels; level++) /* the thin products' kernels */
    for (int bi = 0; bi < n_backends; bi++) {
        ls_cpu_vector_level(level);
        const ls_backend *be = backends[bi];
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int zero_beta = 0; zero_beta < 2; zero_beta++) {
                        float *a = fresh((size_t)m * k, 1), *b = fresh((size_t)k * n, 1), *c = fresh((size_t)m * n, 1);
                        double *ref = malloc(sizeof(double) * m * n);
                        float beta = zero_beta ? 0.0f : 0.5f;
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++) {
                                double s = 0;
                                for (int p = 0; p < k; p++)
                                    s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                                ref[i * n + j] = 2.0 * s + (zero_beta ? 0.0 : 0.5 * c[i * n + j]);
                                if (zero_beta) c[i * n + j] = NAN;
                            }
                        be->matmul(c, a, b, m, n, k, ta, tb, 2.0f, beta);
                        double err = rel_err(c, ref, (size_t)m * n);
                        if (!(err < 1e-6))
                            fail_msg("matmul %d x %d x %d, transposes %d%d, beta %g: relative error %.2e", m, n, k, ta, tb,
                                     beta, err);
                        free(a), free(b), free(c), free(ref);
                    }
        }
    }
    ls_cpu_vector_level(-1);
}

/* Finite-difference check of a backward: f is a scalar function of x (sum of w * forward(x)),
 * analytic its gradient. */
typedef double (*scalar_fn)(const ls_backend *be, float *x, void *ctx);
static void check_fd_every(const ls_backend *be, scalar_fn f, float *x, size_t n, const float *analytic, void *ctx,
                           double tol, const char *what, size_t every) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i += every) {
        float keep = x[i];
        float h = 1e-2f * (fabsf(keep) > 1 ? fabsf(keep) : 1);
        x[i] = keep + h;
        double up = f(be, x, ctx);
        x[i] = keep - h;
        double down = f(be, x, ctx);
        x[i] = keep;
        double fd = (up - down) / (2 * h);
        num += (fd - analytic[i]) * (fd - analytic[i]);
        den += fd * fd;
    }
    double rel = sqrt(num / den);
    if (!(rel < tol)) fail_msg("%s on %s: finite-difference relative error %.2e", what, be->name, rel);
}
static void check_fd(const ls_backend *be, scalar_fn f, float *x, size_t n, const float *analytic, void *ctx,
                     double tol, const char *what) {
    check_fd_every(be, f, x, n, analytic, ctx, tol, what, 1);
}

enum { ROWS = 6, C = 8 };
static float weights[C * 64], upstream[ROWS * 64];

static double rmsnorm_loss(const ls_backend *be, float *x, void *ctx) {
    float y[ROWS * C], rstd[ROWS];
    be->rmsnorm_forward(y, rstd, x, weights, ROWS, C, 1e-6f);
    double s = 0;
    for (int i = 0; i < ROWS * C; i++) s += (double)upstream[i] * y[i];
    return s;
}

static void test_rmsnorm(void **state) {
    fill(weights, C, 1);
    fill(upstream, ROWS * C, 1);
    for (int bi = 0; bi < n_backends; bi++) {
        const ls_backend *be = backends[bi];
        float x[ROWS * C], y[ROWS * C], rstd[ROWS], dx[ROWS * C] = {0};
        fill(x, ROWS * C, 2);
        be->rmsnorm_forward(y, rstd, x, weights, ROWS, C, 1e-6f);
        double ref[ROWS * C];
        for (int r = 0; r < ROWS; r++) {
            double ss = 0;
            for (int j = 0; j < C; j++) ss += (double)x[r * C + j] * x[r * C + j];
            for (int j = 0; j < C; j++) ref[r * C + j] = weights[j] * x[r * C + j] / sqrt(ss / C + 1e-6);
        }
        assert_true(rel_err(y, ref, ROWS * C) < 1e-6);
        be->rmsnorm_backward(dx, upstream, x, weights, rstd, ROWS, C);
        check_fd(be, rmsnorm_loss, x, ROWS * C, dx, NULL, 2e-3, "rmsnorm");
    }
}

enum { RT = 3, HEADS = 2, HD = 4 };
static double rope_loss(const ls_backend *be, float *x, void *ctx) {
    float y[2 * RT * HEADS * HD];
    memcpy(y, x, sizeof y);
    be->rope_forward(y, 2 * RT, RT, 5, HEADS, HD, 10000.0f);
    double s = 0;
    for (int i = 0; i < 2 * RT * HEADS * HD; i++) s += (double)upstream[i] * y[i];
    return s;
}

static void test_rope(void **state) {
    fill(upstream, 64, 1);
    for (int bi = 0; bi < n_backends; bi++) {
        const ls_backend *be = backends[bi];
        enum { N = 2 * RT * HEADS * HD };
        float x[N], y[N], g[N];
        fill(x, N, 1);
        memcpy(y, x, sizeof y);
        be->rope_forward(y, 2 * RT, RT, 5, HEADS, HD, 10000.0f);
        /* by hand: row r has position 5 + r % 3; pair (i, i + 2) turns by pos * 10000^(-2i/4) */
        for (int r = 0; r < 2 * RT; r++)
            for (int h = 0; h < HEADS; h++)
                for (int i = 0; i < HD / 2; i++) {
                    const float *v = x + (r * HEADS + h) * HD;
                    double ang = (5 + r % RT) * pow(10000.0, -2.0 * i / HD);
                    assert_float_equal(y[(r * HEADS + h) * HD + i], v[i] * cos(ang) - v[i + 2] * sin(ang), 1e-5);
                    assert_float_equal(y[(r * HEADS + h) * HD + i + 2], v[i + 2] * cos(ang) + v[i] * sin(ang), 1e-5);
                }
        memcpy(g, upstream, sizeof g);
        be->rope_backward(g, 2 * RT, RT, 5, HEADS, HD, 10000.0f);
        check_fd(be, rope_loss, x, N, g, NULL, 1e-3, "rope");
    }
}

/* RoPE reads a table of rotations kept between calls: it must agree with the direct formula
 * (the angle in double, cos and sin rounded to float) at every position, also after the table
 * was built for another theta or head size, and when a later call needs more positions than
 * the table holds (generation far into a long sequence). */
static void rope_direct(float *y, const float *x, int rows, int T, int pos0, int heads, int hd, double theta) {
    int half = hd / 2;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++) {
                double ang = (double)(pos0 + r % T) * pow(theta, -2.0 * i / hd);
                float c = (float)cos(ang), sn = (float)sin(ang);
                const float *v = x + ((size_t)r * heads + h) * hd;
                y[((size_t)r * heads + h) * hd + i] = v[i] * c - v[i + half] * sn;
                y[((size_t)r * heads + h) * hd + i + half] = v[i + half] * c + v[i] * sn;
            }
}

static void test_rope_table(void **state) {
    const struct {
        int rows, T, pos0, heads, hd;
        float theta;
    } cases[] = {
        {8, 4, 0, 3, 64, 1e6f},      {6, 3, 5, 2, 4, 10000.0f},  {8, 4, 0, 3, 64, 1e6f},
        {4, 2, 32000, 2, 64, 1e6f},  {3, 3, 70000, 1, 8, 1e6f},  {6, 3, 100, 2, 4, 10000.0f},
    };
    for (int bi = 0; bi < n_backends; bi++) {
        const ls_backend *be = backends[bi];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            size_t n = (size_t)cases[c].rows * cases[c].heads * cases[c].hd;
            float *x = fresh(n, 1), *y = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
            memcpy(y, x, sizeof(float) * n);
            be->rope_forward(y, cases[c].rows, cases[c].T, cases[c].pos0, cases[c].heads, cases[c].hd, cases[c].theta);
            rope_direct(want, x, cases[c].rows, cases[c].T, cases[c].pos0, cases[c].heads, cases[c].hd, cases[c].theta);
            for (size_t i = 0; i < n; i++)
                if (fabsf(y[i] - want[i]) > 1e-6f * (1 + fabsf(want[i])))
                    fail_msg("rope case %zu, element %zu: %.9g, the formula gives %.9g", c, i, y[i], want[i]);
            be->rope_backward(y, cases[c].rows, cases[c].T, cases[c].pos0, cases[c].heads, cases[c].hd, cases[c].theta);
            for (size_t i = 0; i < n; i++) assert_float_equal(y[i], x[i], 1e-5); /* the inverse turns it back */
            free(x), free(y), free(want);
        }
    }
}

/* Attention against a double reference and finite differences, at shapes that cover the
 * causal blocks of the CPU backend (64 query rows): one short block (T = 5), and T = 131 (two
 * whole blocks and a partial one: an odd T whose last block has 3 rows). Grouped-query: NH = 4
 * query heads share KVH = 2 key/value heads. */
typedef struct {
    int B, T, NH, KVH, hd;
    float *q, *k, *v, *up; /* up: the upstream gradient of out */
} attn_ctx;

static size_t attn_qn(const attn_ctx *a) { return (size_t)a->B * a->T * a->NH * a->hd; }
static size_t attn_kn(const attn_ctx *a) { return (size_t)a->B * a->T * a->KVH * a->hd; }

static void attention_reference(double *out, const attn_ctx *a) {
    int NHd = a->NH * a->hd, KVd = a->KVH * a->hd, hd = a->hd;
    double *s = malloc(sizeof(double) * a->T);
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->NH; h++)
            for (int i = 0; i < a->T; i++) {
                int kh = h / (a->NH / a->KVH);
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= i; j++) {
                    s[j] = 0;
                    for (int d = 0; d < hd; d++)
                        s[j] += (double)a->q[(size_t)(b * a->T + i) * NHd + h * hd + d] *
                                a->k[(size_t)(b * a->T + j) * KVd + kh * hd + d];
                    s[j] /= sqrt(hd);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j <= i; j++) sum += (s[j] = exp(s[j] - mx));
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++) o += s[j] / sum * a->v[(size_t)(b * a->T + j) * KVd + kh * hd + d];
                    out[(size_t)(b * a->T + i) * NHd + h * hd + d] = o;
                }
            }
    free(s);
}

static double attention_loss(const ls_backend *be, float *x, void *ctx) {
    attn_ctx *a = ctx;
    size_t qn = attn_qn(a);
    float *out = malloc(sizeof(float) * qn), *lse = malloc(sizeof(float) * (size_t)a->B * a->NH * a->T);
    (void)x; /* x aliases one of a->q, a->k, a->v */
    be->attention_forward(out, lse, a->q, a->k, a->v, a->B, a->T, a->NH, a->KVH, a->hd);
    double s = 0;
    for (size_t i = 0; i < qn; i++) s += (double)a->up[i] * out[i];
    free(out), free(lse);
    return s;
}

static void check_attention(const ls_backend *be, int B, int T, int NH, int KVH, int hd) {
    attn_ctx a = {.B = B, .T = T, .NH = NH, .KVH = KVH, .hd = hd};
    size_t qn = attn_qn(&a), kn = attn_kn(&a), ln = (size_t)B * NH * T;
    a.q = fresh(qn, 1), a.k = fresh(kn, 1), a.v = fresh(kn, 1), a.up = fresh(qn, 1);
    float *out = malloc(sizeof(float) * qn), *lse = malloc(sizeof(float) * ln);
    float *dq = malloc(sizeof(float) * qn), *dk = malloc(sizeof(float) * kn), *dv = malloc(sizeof(float) * kn);
    double *ref = malloc(sizeof(double) * qn);
    be->attention_forward(out, lse, a.q, a.k, a.v, B, T, NH, KVH, hd);
    attention_reference(ref, &a);
    if (!(rel_err(out, ref, qn) < 1e-6)) fail_msg("attention T=%d: relative error %.2e", T, rel_err(out, ref, qn));
    /* the outputs are overwritten, whatever they held */
    fill(dq, qn, 100), fill(dk, kn, 100), fill(dv, kn, 100);
    be->attention_backward(dq, dk, dv, a.up, out, lse, a.q, a.k, a.v, B, T, NH, KVH, hd);
    /* every entry at small T; at large T every 11th (coprime with the row length: every row,
     * head and column is visited) */
    size_t every = T > 64 ? 11 : 1;
    check_fd_every(be, attention_loss, a.q, qn, dq, &a, 2e-3, "attention dq", every);
    check_fd_every(be, attention_loss, a.k, kn, dk, &a, 2e-3, "attention dk", every);
    check_fd_every(be, attention_loss, a.v, kn, dv, &a, 2e-3, "attention dv", every);

    /* The cached form gives the same rows: the last T_new positions against a cache of T, for a
     * T_new that crosses a block boundary of the cached rows when T allows. */
    int T_new = T > 70 ? 70 : 2, T_max = T + 2, past = T - T_new;
    size_t kvrow = (size_t)KVH * hd, qrow = (size_t)NH * hd;
    float *kc = calloc((size_t)B * T_max * kvrow, sizeof(float)), *vc = calloc((size_t)B * T_max * kvrow, sizeof(float));
    float *q2 = malloc(sizeof(float) * B * T_new * qrow), *o2 = malloc(sizeof(float) * B * T_new * qrow);
    for (int b = 0; b < B; b++) {
        memcpy(kc + b * T_max * kvrow, a.k + b * T * kvrow, sizeof(float) * T * kvrow);
        memcpy(vc + b * T_max * kvrow, a.v + b * T * kvrow, sizeof(float) * T * kvrow);
        memcpy(q2 + b * T_new * qrow, a.q + (b * T + past) * qrow, sizeof(float) * T_new * qrow);
    }
    be->attention_cached(o2, q2, kc, vc, B, T_new, T, T_max, NH, KVH, hd);
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < T_new * qrow; i++)
            assert_float_equal(o2[b * T_new * qrow + i], out[(b * T + past) * qrow + i], 1e-6);

    /* Backward repeats bit for bit, and does not depend on the number of threads. */
    float *dq2 = malloc(sizeof(float) * qn), *dk2 = malloc(sizeof(float) * kn), *dv2 = malloc(sizeof(float) * kn);
    int threads = ls_cpu_threads();
    be->attention_backward(dq, dk, dv, a.up, out, lse, a.q, a.k, a.v, B, T, NH, KVH, hd);
    ls_cpu_threads_set(threads == 1 ? 2 : 1);
    be->attention_backward(dq2, dk2, dv2, a.up, out, lse, a.q, a.k, a.v, B, T, NH, KVH, hd);
    ls_cpu_threads_set(threads);
    assert_memory_equal(dq, dq2, sizeof(float) * qn);
    assert_memory_equal(dk, dk2, sizeof(float) * kn);
    assert_memory_equal(dv, dv2, sizeof(float) * kn);

    free(dq2), free(dk2), free(dv2), free(kc), free(vc), free(q2), free(o2);
    free(a.q), free(a.k), free(a.v), free(a.up), free(out), free(lse), free(dq), free(dk), free(dv), free(ref);
}


static void test_attention(void **state) {
    for (int level = 0, n = vector_levels(); level < n; level++) {
        ls_cpu_vector_level(level);
        for (int bi = 0; bi < n_backends; bi++) {
            check_attention(backends[bi], 2, 5, 4, 2, 3);
            check_attention(backends[bi], 1, 131, 4, 2, 4);
        }
    }
    ls_cpu_vector_level(-1);
}

static double swiglu_loss(const ls_backend *be, float *x, void *ctx) {
    float h[16];
    be->swiglu_forward(h, x, x + 16, 16);
    double s = 0;
    for (int i = 0; i < 16; i++) s += (double)upstream[i] * h[i];
    return s;
}

static void test_swiglu(void **state) {
    fill(upstream, 16, 1);
    for (int bi = 0; bi < n_backends; bi++) {
        const ls_backend *be = backends[bi];
        float gu[32], h[16], grad[32];
        fill(gu, 32, 3);
        be->swiglu_forward(h, gu, gu + 16, 16);
        for (int i = 0; i < 16; i++) assert_float_equal(h[i], gu[i] / (1 + exp(-gu[i])) * gu[16 + i], 1e-6);
        be->swiglu_backward(grad, grad + 16, upstream, gu, gu + 16, 16);
        check_fd(be, swiglu_loss, gu, 32, grad, NULL, 1e-3, "swiglu");
    }
}

/* SwiGLU's SiLU uses the vectorised exp, not libm: its error against double over the whole
 * range where exp is not clamped (|g| <= 87, step 1e-3), and sane values beyond it. With u = 1
 * and dh = 1: h = silu(g), du = silu(g), dg = silu'(g). */
static void test_swiglu_error_bound(void **state) {
    size_t n = 174001 + 6;
    float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *h = malloc(sizeof(float) * n);
    float *dg = malloc(sizeof(float) * n), *du = malloc(sizeof(float) * n);
    for (size_t i = 0; i < 174001; i++) g[i] = (float)(-87.0 + 1e-3 * (double)i);
    const float far[6] = {-1000, -200, -87.5f, 87.5f, 200, 1000};
    for (int i = 0; i < 6; i++) g[174001 + i] = far[i];
    for (size_t i = 0; i < n; i++) u[i] = 1;
    float *h0 = malloc(sizeof(float) * n), *dg0 = malloc(sizeof(float) * n);
    for (int level = 0, levels = vector_levels(); level < levels; level++)
    for (int bi = 0; bi < n_backends; bi++) {
        const ls_backend *be = backends[bi];
        assert_int_equal(ls_cpu_vector_level(level), level);
        be->swiglu_forward(h, g, u, n);
        be->swiglu_backward(dg, du, u, g, u, n);
        if (level == 0) {
            memcpy(h0, h, sizeof(float) * n), memcpy(dg0, dg, sizeof(float) * n);
        } else { /* every instruction set gives the same bits */
            assert_memory_equal(h, h0, sizeof(float) * n);
            assert_memory_equal(dg, dg0, sizeof(float) * n);
        }
        double worst_h = 0, worst_dg = 0;
        for (size_t i = 0; i < n; i++) {
            double G = g[i], S = 1 / (1 + exp(-G)), H = G * S, D = S * (1 + G * (1 - S));
            assert_true(isfinite(h[i]) && isfinite(dg[i]) && isfinite(du[i]));
            assert_true(h[i] == du[i] || fabs(h[i] - du[i]) <= 1e-7 * fabs(H));
            if (fabs(G) <= 87) {
                if (H != 0 && fabs(h[i] - H) / fabs(H) > worst_h) worst_h = fabs(h[i] - H) / fabs(H);
                if (fabs(dg[i] - D) > worst_dg) worst_dg = fabs(dg[i] - D);
            } else if (G < 0) { /* the clamped tail: sig(g) is e^-87 instead of smaller still */
                assert_true(fabs(h[i] - H) <= 1e-30 && fabs(dg[i] - D) <= 1e-30);
            } else {
                assert_true(fabs(h[i] - H) <= 1e-7 * H && fabs(dg[i] - D) <= 1e-7);
            }
        }
        print_message("silu on %s, vector level %d: relative error %.2e, derivative absolute error %.2e\n", be->name,
                      level, worst_h, worst_dg);
        assert_true(worst_h < 4e-7);  /* libm's expf gives 1.6e-7 here, this exp 2.1e-7 */
        assert_true(worst_dg < 2e-6); /* both ~1e-6: the float rounding of 1 - sig at large g */
    }
    ls_cpu_vector_level(-1);
    free(g), free(u), free(h), free(dg), free(du), free(h0), free(dg0);
}

/* The fused head: loss against a double softmax, dx and dbias against finite differences. */
enum { HR = 4, HC = 6, HV = 300 };
typedef struct {
    float x[HR * HC], w[HV * HC], bias[HV];
    int32_t targets[HR];
} head_ctx;
static double head_loss_of(const ls_backend *be, float *x, void *ctx) {
    head_ctx *h = ctx;
    return be->head_loss(NULL, NULL, x, h->w, h->bias, h->targets, HR, HC, HV, 1.0f);
}
static double head_bias_loss(const ls_backend *be, float *bias, void *ctx) {
    head_ctx *h = ctx;
    return be->head_loss(NULL, NULL, h->x, h->w, bias, h->targets, HR, HC, HV, 1.0f);
}

static void test_head_loss(void **state) {
    for (int level = 0, levels = vector_levels(); level < levels; level++)
    for (int bi = 0; bi < n_backends; bi++) {
        ls_cpu_vector_level(level);
        const ls_backend *be = backends[bi];
        head_ctx h = {.targets = {3, -1, 299, 0}};
        fill(h.w, HV * HC, 2), fill(h.bias, HV, 1), fill(h.x, HR * HC, 2);
        double ref = 0;
        for (int r = 0; r < HR; r++) {
            if (h.targets[r] < 0) continue;
            double z[HV], mx = -1e300, sum = 0;
            for (int j = 0; j < HV; j++) {
                z[j] = h.bias[j];
                for (int c = 0; c < HC; c++) z[j] += (double)h.x[r * HC + c] * h.w[j * HC + c];
                mx = z[j] > mx ? z[j] : mx;
            }
            for (int j = 0; j < HV; j++) sum += exp(z[j] - mx);
            ref += mx + log(sum) - z[h.targets[r]];
        }
        float dx[HR * HC] = {0}, dbias[HV] = {0};
        double loss = be->head_loss(dx, dbias, h.x, h.w, h.bias, h.targets, HR, HC, HV, 1.0f);
        assert_true(fabs(loss - ref) < 1e-5 * fabs(ref));
        for (int c = 0; c < HC; c++) assert_float_equal(dx[1 * HC + c], 0.0, 0.0); /* no target, no gradient */
        check_fd(be, head_loss_of, h.x, HR * HC, dx, &h, 2e-3, "head dx");
        check_fd(be, head_bias_loss, h.bias, HV, dbias, &h, 2e-3, "head dbias");
    }
    ls_cpu_vector_level(-1);
}

/* The CPU head in chunks of rows (a small logits bound) gives what it gives in one chunk: the
 * same loss, and dx and dbias up to rounding (OpenBLAS's kernel for a short edge of rows, and dbias
 * summed chunk by chunk). */
static void test_head_loss_chunks(void **state) {
    enum { R = 7 };
    float x[R * HC], w[HV * HC], bias[HV];
    int32_t targets[R] = {3, -1, 299, 0, 17, 150, -1};
    fill(w, HV * HC, 2), fill(bias, HV, 1), fill(x, R * HC, 2);
    const ls_backend *be = ls_backend_cpu();
    float dx0[R * HC] = {0}, dbias0[HV] = {0};
    double loss0 = be->head_loss(dx0, dbias0, x, w, bias, targets, R, HC, HV, 0.5f);
    size_t bounds[] = {1, 2 * HV, 3 * HV, 6 * HV + 5};
    for (int i = 0; i < 4; i++) {
        size_t was = ls_cpu_head_logits(bounds[i]);
        float dx[R * HC] = {0}, dbias[HV] = {0};
        double loss = be->head_loss(dx, dbias, x, w, bias, targets, R, HC, HV, 0.5f);
        ls_cpu_head_logits(was);
        assert_true(fabs(loss - loss0) <= 1e-12 * fabs(loss0));
        for (int j = 0; j < R * HC; j++) assert_true(fabsf(dx[j] - dx0[j]) <= 1e-5f * (fabsf(dx0[j]) + 1e-3f));
        for (int j = 0; j < HV; j++) assert_true(fabsf(dbias[j] - dbias0[j]) <= 1e-5f * (fabsf(dbias0[j]) + 1e-3f));
    }
    assert_int_equal(ls_cpu_head_logits(0), (size_t)160 << 20);
}

static void test_reductions_are_deterministic(void **state) {
    for (int bi = 0; bi < n_backends; bi++) {
        const ls_backend *be = backends[bi];
        size_t n = 1000003;
        float *x = fresh(n, 1);
        double a = be->sum_squares(x, n), b = be->sum_squares(x, n), ref = 0;
        for (size_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
        assert_true(a == b);
        assert_true(fabs(a - ref) < 1e-9 * ref);
        free(x);
    }
}

int main(void) {
    backends[n_backends++] = ls_backend_cpu();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_rope_table),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_swiglu_error_bound),
        cmocka_unit_test(test_head_loss),
        cmocka_unit_test(test_head_loss_chunks),
        cmocka_unit_test(test_reductions_are_deterministic),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
