/*
 * test_cuda_backend.c: the CUDA backend held to the CPU backend (the reference): every op of the
 * table on random inputs, forward and backward, then the small random model and the golden tiny
 * checkpoint end to end (loss, every LoRA gradient, greedy ids).
 *
 * Without a CUDA build or without a device it prints "SKIPPED: ..." and exits 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE): a pass here means it really ran on a GPU.
 *
 * Tolerances are for fp32 on both sides (relative L2 error), loose enough for another summation
 * order (sums over T or V) and tight enough that an indexing bug (errors of order 1) fails;
 * LS_CUDA_MATH=tf32 widens them x100.
 * Plain C with its own small checker rather than cmocka: one binary, one skip decision.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"
#include "lorasweep/generate.h"
#include "lorasweep/model.h"
#include "lorasweep/qwen2.h"
#include "../toy_model.h"

#ifdef LS_HAVE_CUDA

static const ls_backend *cpu, *gpu;
static int failures, checks;
static double tol_scale = 1.0; /* x100 under TF32 */
static uint64_t rng = 7;

static float *host_random(size_t n, float scale) {
    float *x = ls_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = (float)(ls_rng_uniform(&rng) * 2 - 1) * scale;
    return x;
}
static void *to_gpu(const void *h, size_t bytes) {
    void *d = gpu->alloc(bytes);
    if (!d) {
        fprintf(stderr, "FATAL: cudaMalloc of %zu bytes failed\n", bytes);
        exit(1);
    }
    gpu->upload(d, h, bytes);
    return d;
}
static float *from_gpu(const float *d, size_t n) {
    float *h = ls_malloc(sizeof(float) * (n ? n : 1));
    gpu->download(h, d, sizeof(float) * n);
    return h;
}

/* Relative L2 distance of got from ref, against tol (scaled for TF32). */
static void expect_close(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double num = 0, den = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d, den += (double)ref[i] * ref[i];
        if (fabs(d) > worst || d != d) worst = fabs(d);
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    checks++;
    int ok = rel <= tol * tol_scale && rel == rel;
    if (!ok) failures++;
    printf("%-4s %-42s rel %.2e (tol %.0e) max|d| %.2e\n", ok ? "ok" : "FAIL", what, rel, tol * tol_scale, worst);
}
static void expect_scalar(const char *what, double got, double ref, double tol) {
    double rel = fabs(got - ref) / (fabs(ref) > 0 ? fabs(ref) : 1);
    int ok = rel <= tol * tol_scale;
    checks++;
    failures += !ok;
    printf("%-4s %-42s rel %.2e (tol %.0e) %.9g vs %.9g\n", ok ? "ok" : "FAIL", what, rel, tol * tol_scale, got, ref);
}
static void expect_no_error(const char *where) {
    if (gpu->check() != LS_OK) {
        failures++;
        printf("FAIL %s: %s\n", where, ls_last_error());
    }
}

/* ---- ops ---------------------------------------------------------------------------------- */

static void test_matmul(void) {
    int m = 67, n = 45, k = 33;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *a = host_random((size_t)m * k, 1), *b = host_random((size_t)k * n, 1), *c = host_random((size_t)m * n, 1);
            float *da = to_gpu(a, sizeof(float) * m * k), *db = to_gpu(b, sizeof(float) * k * n), *dc = to_gpu(c, sizeof(float) * m * n);
            cpu->matmul(c, a, b, m, n, k, ta, tb, 0.7f, 0.3f);
            gpu->matmul(dc, da, db, m, n, k, ta, tb, 0.7f, 0.3f);
            float *got = from_gpu(dc, (size_t)m * n);
            char what[64];
            snprintf(what, sizeof what, "matmul trans_a %d trans_b %d", ta, tb);
            expect_close(what, got, c, (size_t)m * n, 1e-6);
            free(a), free(b), free(c), free(got);
            gpu->release(da), gpu->release(db), gpu->release(dc);
        }
}

static void test_elementwise(void) {
    int rows = 19, cols = 300;
    size_t n = (size_t)rows * cols;
    float *y = host_random(n, 1), *x = host_random(n, 1), *bias = host_random((size_t)cols, 1);
    float *dy = to_gpu(y, sizeof(float) * n), *dx = to_gpu(x, sizeof(float) * n), *db = to_gpu(bias, sizeof(float) * cols);
    cpu->add_bias(y, bias, rows, cols), gpu->add_bias(dy, db, rows, cols);
    cpu->add(y, x, n), gpu->add(dy, dx, n);
    cpu->scale(y, 0.37f, n), gpu->scale(dy, 0.37f, n);
    float *got = from_gpu(dy, n);
    expect_close("add_bias, add, scale", got, y, n, 1e-7);
    expect_scalar("sum_squares", gpu->sum_squares(dy, n), cpu->sum_squares(y, n), 1e-12);
    gpu->copy(dx, dy, sizeof(float) * n);
    gpu->zero(dy, sizeof(float) * 7);
    free(got);
    got = from_gpu(dx, n);
    expect_close("copy", got, y, n, 0);
    free(got);
    got = from_gpu(dy, 7);
    float zeros[7] = {0};
    expect_close("zero", got, zeros, 7, 0);
    free(got), free(y), free(x), free(bias);
    gpu->release(dy), gpu->release(dx), gpu->release(db);
}

static void test_embedding(void) {
    int V = 50, C = 33, N = 21;
    float *table = host_random((size_t)V * C, 1), *out = ls_malloc(sizeof(float) * N * C);
    int32_t ids[21];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)((i * 17 + 3) % V);
    float *dt = to_gpu(table, sizeof(float) * V * C), *dout = gpu->alloc(sizeof(float) * N * C);
    int32_t *dids = to_gpu(ids, sizeof ids);
    cpu->embedding(out, ids, table, N, C);
    gpu->embedding(dout, dids, dt, N, C);
    float *got = from_gpu(dout, (size_t)N * C);
    expect_close("embedding", got, out, (size_t)N * C, 0);
    free(table), free(out), free(got);
    gpu->release(dt), gpu->release(dout), gpu->release(dids);
}

static void test_rmsnorm(void) {
    int rows = 13, C = 896; /* the real hidden size: more than one pass of 256 threads */
    size_t n = (size_t)rows * C;
    float *x = host_random(n, 2), *w = host_random((size_t)C, 1), *dy = host_random(n, 1), *dx = host_random(n, 1);
    float *y = ls_malloc(sizeof(float) * n), *rstd = ls_malloc(sizeof(float) * rows);
    float *gx = to_gpu(x, sizeof(float) * n), *gw = to_gpu(w, sizeof(float) * C), *gdy = to_gpu(dy, sizeof(float) * n);
    float *gdx = to_gpu(dx, sizeof(float) * n), *gy = gpu->alloc(sizeof(float) * n), *grstd = gpu->alloc(sizeof(float) * rows);
    cpu->rmsnorm_forward(y, rstd, x, w, rows, C, 1e-6f);
    gpu->rmsnorm_forward(gy, grstd, gx, gw, rows, C, 1e-6f);
    float *got = from_gpu(gy, n), *got_rstd = from_gpu(grstd, (size_t)rows);
    expect_close("rmsnorm_forward y", got, y, n, 1e-6);
    expect_close("rmsnorm_forward rstd", got_rstd, rstd, (size_t)rows, 1e-6);
    cpu->rmsnorm_backward(dx, dy, x, w, rstd, rows, C);
    gpu->rmsnorm_backward(gdx, gdy, gx, gw, grstd, rows, C);
    free(got);
    got = from_gpu(gdx, n);
    expect_close("rmsnorm_backward dx (+=)", got, dx, n, 1e-6);
    free(x), free(w), free(dy), free(dx), free(y), free(rstd), free(got), free(got_rstd);
    gpu->release(gx), gpu->release(gw), gpu->release(gdy), gpu->release(gdx), gpu->release(gy), gpu->release(grstd);
}

static void test_rope(void) {
    int rows = 40, T = 20, heads = 3, hd = 64;
    size_t n = (size_t)rows * heads * hd;
    for (int pos0 = 0; pos0 <= 1000; pos0 += 1000) {
        float *x = host_random(n, 1), *gx = to_gpu(x, sizeof(float) * n);
        cpu->rope_forward(x, rows, T, pos0, heads, hd, 1000000.0f);
        gpu->rope_forward(gx, rows, T, pos0, heads, hd, 1000000.0f);
        float *got = from_gpu(gx, n);
        expect_close(pos0 ? "rope_forward pos0 1000" : "rope_forward", got, x, n, 1e-6);
        cpu->rope_backward(x, rows, T, pos0, heads, hd, 1000000.0f);
        gpu->rope_backward(gx, rows, T, pos0, heads, hd, 1000000.0f);
        free(got);
        got = from_gpu(gx, n);
        expect_close(pos0 ? "rope_backward pos0 1000" : "rope_backward", got, x, n, 1e-6);
        free(x), free(got);
        gpu->release(gx);
    }
}

/* Attention forward and backward on shapes that exercise partial tiles (T not a multiple of 32,
 * more than one tile) and grouped heads; hd 64 (Qwen2.5-0.5B), 128 and 4 (the toy model). */
static void test_attention_shape(int B, int T, int NH, int KVH, int hd) {
    size_t QN = (size_t)B * T * NH * hd, KN = (size_t)B * T * KVH * hd, LN = (size_t)B * NH * T;
    float *q = host_random(QN, 1), *k = host_random(KN, 1), *v = host_random(KN, 1), *dout = host_random(QN, 1);
    float *out = ls_malloc(sizeof(float) * QN), *lse = ls_malloc(sizeof(float) * LN);
    float *dq = ls_malloc(sizeof(float) * QN), *dk = ls_malloc(sizeof(float) * KN), *dv = ls_malloc(sizeof(float) * KN);
    float *gq = to_gpu(q, sizeof(float) * QN), *gk = to_gpu(k, sizeof(float) * KN), *gv = to_gpu(v, sizeof(float) * KN);
    float *gdout = to_gpu(dout, sizeof(float) * QN), *gout = gpu->alloc(sizeof(float) * QN), *glse = gpu->alloc(sizeof(float) * LN);
    float *gdq = gpu->alloc(sizeof(float) * QN), *gdk = gpu->alloc(sizeof(float) * KN), *gdv = gpu->alloc(sizeof(float) * KN);
    cpu->attention_forward(out, lse, q, k, v, B, T, NH, KVH, hd);
    gpu->attention_forward(gout, glse, gq, gk, gv, B, T, NH, KVH, hd);
    cpu->attention_backward(dq, dk, dv, dout, out, lse, q, k, v, B, T, NH, KVH, hd);
    gpu->attention_backward(gdq, gdk, gdv, gdout, gout, glse, gq, gk, gv, B, T, NH, KVH, hd);
    char what[80];
    const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    const float *gd[5] = {gout, glse, gdq, gdk, gdv}, *ref[5] = {out, lse, dq, dk, dv};
    size_t count[5] = {QN, LN, QN, KN, KN};
    for (int i = 0; i < 5; i++) {
        float *got = from_gpu(gd[i], count[i]);
        snprintf(what, sizeof what, "attention %s B%d T%d NH%d KVH%d hd%d", names[i], B, T, NH, KVH, hd);
        expect_close(what, got, ref[i], count[i], i < 2 ? 1e-5 : 1e-4); /* backward sums over T */
        free(got);
    }
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
    gpu->release(gq), gpu->release(gk), gpu->release(gv), gpu->release(gdout), gpu->release(gout);
    gpu->release(glse), gpu->release(gdq), gpu->release(gdk), gpu->release(gdv);
}

static void test_attention_cached(void) {
    int B = 3, T_new = 5, T_total = 41, T_max = 48, NH = 4, KVH = 2, hd = 64;
    size_t QN = (size_t)B * T_new * NH * hd, KN = (size_t)B * T_max * KVH * hd;
    float *q = host_random(QN, 1), *k = host_random(KN, 1), *v = host_random(KN, 1), *out = ls_malloc(sizeof(float) * QN);
    float *gq = to_gpu(q, sizeof(float) * QN), *gk = to_gpu(k, sizeof(float) * KN), *gv = to_gpu(v, sizeof(float) * KN);
    float *gout = gpu->alloc(sizeof(float) * QN);
    cpu->attention_cached(out, q, k, v, B, T_new, T_total, T_max, NH, KVH, hd);
    gpu->attention_cached(gout, gq, gk, gv, B, T_new, T_total, T_max, NH, KVH, hd);
    float *got = from_gpu(gout, QN);
    expect_close("attention_cached", got, out, QN, 1e-5);
    free(q), free(k), free(v), free(out), free(got);
    gpu->release(gq), gpu->release(gk), gpu->release(gv), gpu->release(gout);
}

static void test_swiglu(void) {
    size_t n = 4099;
    float *g = host_random(n, 4), *u = host_random(n, 2), *dh = host_random(n, 1);
    float *h = ls_malloc(sizeof(float) * n), *dg = ls_malloc(sizeof(float) * n), *du = ls_malloc(sizeof(float) * n);
    float *gg = to_gpu(g, sizeof(float) * n), *gu = to_gpu(u, sizeof(float) * n), *gdh = to_gpu(dh, sizeof(float) * n);
    float *gh = gpu->alloc(sizeof(float) * n), *gdg = gpu->alloc(sizeof(float) * n), *gdu = gpu->alloc(sizeof(float) * n);
    cpu->swiglu_forward(h, g, u, n), gpu->swiglu_forward(gh, gg, gu, n);
    cpu->swiglu_backward(dg, du, dh, g, u, n), gpu->swiglu_backward(gdg, gdu, gdh, gg, gu, n);
    float *a = from_gpu(gh, n), *b = from_gpu(gdg, n), *c = from_gpu(gdu, n);
    expect_close("swiglu_forward", a, h, n, 1e-6);
    expect_close("swiglu_backward dg", b, dg, n, 1e-6);
    expect_close("swiglu_backward du", c, du, n, 1e-6);
    free(g), free(u), free(dh), free(h), free(dg), free(du), free(a), free(b), free(c);
    gpu->release(gg), gpu->release(gu), gpu->release(gdh), gpu->release(gh), gpu->release(gdg), gpu->release(gdu);
}

/* V above the 8192-column chunk (three chunks, the last partial), some rows without a target,
 * with and without the bias and the gradients. */
static void test_head_loss(void) {
    int rows = 37, C = 48, V = 20011;
    float *x = host_random((size_t)rows * C, 1), *w = host_random((size_t)V * C, 1), *bias = host_random((size_t)V, 1);
    int32_t targets[37];
    for (int r = 0; r < rows; r++) targets[r] = r % 5 == 4 ? -1 : (int32_t)((r * 7919) % V);
    targets[0] = V - 1, targets[1] = 8191, targets[2] = 8192;
    float *dx = host_random((size_t)rows * C, 1), *dbias = host_random((size_t)V, 1);
    float *gx = to_gpu(x, sizeof(float) * rows * C), *gw = to_gpu(w, sizeof(float) * V * C), *gb = to_gpu(bias, sizeof(float) * V);
    float *gdx = to_gpu(dx, sizeof(float) * rows * C), *gdb = to_gpu(dbias, sizeof(float) * V);
    int32_t *gt = to_gpu(targets, sizeof targets);
    double l_cpu = cpu->head_loss(NULL, NULL, x, w, NULL, targets, rows, C, V, 1.0f);
    double l_gpu = gpu->head_loss(NULL, NULL, gx, gw, NULL, gt, rows, C, V, 1.0f);
    expect_scalar("head_loss, no bias, no gradient", l_gpu, l_cpu, 1e-5);
    l_cpu = cpu->head_loss(dx, dbias, x, w, bias, targets, rows, C, V, 0.03f);
    l_gpu = gpu->head_loss(gdx, gdb, gx, gw, gb, gt, rows, C, V, 0.03f);
    expect_scalar("head_loss with bias", l_gpu, l_cpu, 1e-5);
    float *a = from_gpu(gdx, (size_t)rows * C), *b = from_gpu(gdb, (size_t)V);
    expect_close("head_loss dx (+=)", a, dx, (size_t)rows * C, 1e-4); /* sums over V in another order */
    expect_close("head_loss dbias (+=)", b, dbias, (size_t)V, 1e-5);
    free(x), free(w), free(bias), free(dx), free(dbias), free(a), free(b);
    gpu->release(gx), gpu->release(gw), gpu->release(gb), gpu->release(gdx), gpu->release(gdb), gpu->release(gt);
}

static void test_optimisers(void) {
    size_t n = 1000;
    float *p = host_random(n, 1), *g = host_random(n, 1), *m = host_random(n, 0.1f), *v = host_random(n, 0.1f);
    for (size_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    float *gp = to_gpu(p, sizeof(float) * n), *gg = to_gpu(g, sizeof(float) * n), *gm = to_gpu(m, sizeof(float) * n);
    float *gv = to_gpu(v, sizeof(float) * n);
    for (int t = 1; t <= 3; t++) {
        cpu->adamw(p, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
        gpu->adamw(gp, gg, gm, gv, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
    }
    float *a = from_gpu(gp, n), *b = from_gpu(gm, n), *c = from_gpu(gv, n);
    expect_close("adamw param", a, p, n, 1e-6);
    expect_close("adamw m", b, m, n, 1e-6);
    expect_close("adamw v", c, v, n, 1e-6);
    for (int t = 1; t <= 3; t++) {
        cpu->sgd(p, g, m, n, 1e-2f, 0.9f, 0.01f, t);
        gpu->sgd(gp, gg, gm, n, 1e-2f, 0.9f, 0.01f, t);
    }
    free(a), free(b);
    a = from_gpu(gp, n), b = from_gpu(gm, n);
    expect_close("sgd param", a, p, n, 1e-6);
    expect_close("sgd momentum buffer", b, m, n, 1e-6);
    free(p), free(g), free(m), free(v), free(a), free(b), free(c);
    gpu->release(gp), gpu->release(gg), gpu->release(gm), gpu->release(gv);
}

/* ---- issue 13's defects, on the device ---------------------------------------------------- */

/* Multiples of 1/8 in [-1, 1]: their products and short sums are exact in float, so the
 * attention below is exact whatever the order or contraction of its sums. */
static float *host_eighths(size_t n) {
    float *x = ls_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)(ls_rng_next(&rng) % 17) - 8) / 8.0f;
    return x;
}

/* attention_delta_kernel over more rows (B*NH*T) than blocks_for's capped grid has warps
 * (65535*16*256/32 = 8388480): with T = 1 every row attends to its own key alone (p = 1), so
 * out = v, D = dO.v = dp and dq = dk = 0 exactly, dv = dO; a row whose D is never written gives
 * dq != 0. hd 2 keeps it small (8 tensors of 84 MB). */
static void test_attention_many_rows(void) {
    const int B = 65535, T = 1, NH = 160, KVH = 160, hd = 2;
    size_t nq = (size_t)B * T * NH * hd, rows = (size_t)B * NH * T;
    float *q = host_eighths(nq), *k = host_eighths(nq), *v = host_eighths(nq), *dout = host_eighths(nq);
    float *gq = to_gpu(q, sizeof(float) * nq), *gk = to_gpu(k, sizeof(float) * nq), *gv = to_gpu(v, sizeof(float) * nq);
    float *gdout = to_gpu(dout, sizeof(float) * nq), *gout = to_gpu(q, sizeof(float) * nq);
    float *glse = to_gpu(q, sizeof(float) * rows), *gdq = to_gpu(q, sizeof(float) * nq);
    float *gdk = to_gpu(q, sizeof(float) * nq), *gdv = to_gpu(q, sizeof(float) * nq);
    gpu->attention_forward(gout, glse, gq, gk, gv, B, T, NH, KVH, hd);
    gpu->attention_backward(gdq, gdk, gdv, gdout, gout, glse, gq, gk, gv, B, T, NH, KVH, hd);
    expect_no_error("attention over 10.5M rows");
    float *dq = from_gpu(gdq, nq), *dk = from_gpu(gdk, nq), *dv = from_gpu(gdv, nq), *out = from_gpu(gout, nq);
    size_t bad_dq = 0, bad_dk = 0, bad_dv = 0, bad_out = 0, first = nq;
    for (size_t i = 0; i < nq; i++) {
        bad_dq += dq[i] != 0, bad_dk += dk[i] != 0, bad_dv += dv[i] != dout[i], bad_out += out[i] != v[i];
        if ((dq[i] != 0 || dk[i] != 0) && first == nq) first = i;
    }
    checks++;
    int ok = !bad_dq && !bad_dk && !bad_dv && !bad_out;
    failures += !ok;
    printf("%-4s %-42s dq %zu, dk %zu, dv %zu, out %zu wrong of %zu (first at row %zu)\n", ok ? "ok" : "FAIL",
           "attention D past the capped grid", bad_dq, bad_dk, bad_dv, bad_out, nq, first == nq ? (size_t)0 : first / hd);
    void *all[] = {gq, gk, gv, gdout, gout, glse, gdq, gdk, gdv};
    for (int i = 0; i < 9; i++) gpu->release(all[i]);
    free(q), free(k), free(v), free(dout), free(dq), free(dk), free(dv), free(out);
}

/* A scratch buffer that cannot grow: check() says out of device memory (a trial's failure, not
 * the machine's), and nothing of it is left for the next launch: the same op runs clean once
 * memory is back. The device is filled with allocations around inputs made first. */
static void test_scratch_oom_recovers(void) {
    const int B = 65535, T = 1, NH = 256, KVH = 256, hd = 2; /* D needs 67 MB, more than the last test's */
    size_t nq = (size_t)B * T * NH * hd, rows = (size_t)B * NH * T;
    float *h = host_eighths(nq);
    float *t[9];
    for (int i = 0; i < 9; i++) t[i] = to_gpu(h, sizeof(float) * (i == 5 ? rows : nq));
    gpu->attention_forward(t[4], t[5], t[0], t[1], t[2], B, T, NH, KVH, hd);
    expect_no_error("attention forward before the fill");
    enum { MAX_FILL = 4096 };
    void **fill = ls_malloc(sizeof(void *) * MAX_FILL);
    int n_fill = 0;
    for (size_t chunk = (size_t)1 << 30; chunk >= ((size_t)1 << 20) && n_fill < MAX_FILL; chunk >>= 1)
        while (n_fill < MAX_FILL && (fill[n_fill] = gpu->alloc(chunk))) n_fill++;
    gpu->attention_backward(t[6], t[7], t[8], t[3], t[4], t[5], t[0], t[1], t[2], B, T, NH, KVH, hd);
    int rc = gpu->check();
    checks++;
    int ok = rc == LS_ERR && strstr(ls_last_error(), "out of device memory") && !ls_error_is_machine();
    failures += !ok;
    printf("%-4s %-42s %s\n", ok ? "ok" : "FAIL", "scratch OOM: a trial's error", rc == LS_OK ? "(no error)" : ls_last_error());
    for (int i = 0; i < n_fill; i++) gpu->release(fill[i]);
    free(fill);
    gpu->add(t[6], t[7], nq); /* the first launch after: it must not inherit the OOM */
    expect_no_error("the first launch after a scratch OOM");
    gpu->attention_backward(t[6], t[7], t[8], t[3], t[4], t[5], t[0], t[1], t[2], B, T, NH, KVH, hd);
    expect_no_error("the same backward with memory back");
    for (int i = 0; i < 9; i++) gpu->release(t[i]);
    free(h);
}

/* Last: an illegal address destroys the context. check() must say so as a machine fault (the
 * sweep stops, exit 4, for a resume in a fresh process), and keep saying so; the cached backend
 * is not handed out again, and auto does not fall back to the CPU. */
static void test_lost_context(void) {
    float *x = to_gpu(host_random(1024, 1), sizeof(float) * 1024);
    gpu->add((float *)(uintptr_t)0x1000, x, 1 << 20); /* a write far from any allocation */
    int rc1 = gpu->check(), m1 = ls_error_is_machine();
    char first[600];
    snprintf(first, sizeof first, "%s", ls_last_error());
    int rc2 = gpu->check(), m2 = ls_error_is_machine();
    const ls_backend *again = ls_backend_cuda();
    int m3 = ls_error_is_machine();
    int picked = -1;
    const ls_backend *autob = ls_backend_named("auto", &picked, NULL, 0);
    int ok = rc1 == LS_ERR && m1 && rc2 == LS_ERR && m2 && !again && m3 && !autob;
    checks++;
    failures += !ok;
    printf("%-4s %-42s %s (again: %s; cuda %p, auto %p)\n", ok ? "ok" : "FAIL", "illegal address: a machine fault",
           first, rc2 == LS_ERR && m2 ? "machine" : "not machine", (const void *)again, (const void *)autob);
}

/* ---- the model ---------------------------------------------------------------------------- */

/* Loss and every LoRA gradient (and the head bias's) of one batch, on be; grads_out host. */
static double model_step(const ls_backend *be, const ls_model *host_m, const ls_lora *host_lora, const int32_t *ids,
                         const int32_t *targets, int B, int T, float *grads_out) {
    ls_model m;
    ls_lora lora, grads_host, grads;
    ls_lora_like(&grads_host, host_lora, &host_m->cfg);
    if (ls_model_to_backend(be, host_m, &m) != LS_OK || ls_lora_to_backend(be, host_lora, &lora) != LS_OK ||
        ls_lora_to_backend(be, &grads_host, &grads) != LS_OK) {
        printf("FAIL model upload: %s\n", ls_last_error());
        failures++;
        return NAN;
    }
    ls_activations a;
    if (ls_activations_init(&a, be, &host_m->cfg, &lora, B, T) != LS_OK) {
        printf("FAIL activations: %s\n", ls_last_error());
        failures++;
        return NAN;
    }
    double loss = ls_qwen2_forward(be, &m, &lora, &a, ids, targets, B, T, &grads, 1.0f);
    ls_qwen2_backward(be, &m, &lora, &a, &grads, B, T);
    ls_lora_to_host(be, &grads, &grads_host);
    memcpy(grads_out, grads_host.arena, sizeof(float) * grads_host.arena_floats);
    if (be->check() != LS_OK) {
        printf("FAIL model step on %s: %s\n", be->name, ls_last_error());
        failures++;
    }
    ls_activations_free(&a, be);
    ls_lora_backend_free(be, &grads);
    ls_lora_backend_free(be, &lora);
    ls_model_backend_free(be, &m);
    ls_lora_free(&grads_host);
    return loss;
}

/* Greedy ids of max_new tokens after prompt, on be. */
static void model_greedy(const ls_backend *be, const ls_model *host_m, const ls_lora *host_lora, const int32_t *prompt,
                         int P, int max_new, int32_t *ids_out) {
    ls_model m;
    ls_lora lora;
    ls_kv_state kv;
    ls_generation gen;
    ls_sampler sp = {1, 1.0f, 1.0f, 0};
    memset(ids_out, 0xff, sizeof(int32_t) * (size_t)max_new);
    if (ls_model_to_backend(be, host_m, &m) != LS_OK || ls_lora_to_backend(be, host_lora, &lora) != LS_OK ||
        ls_kv_init(&kv, be, &host_m->cfg, &lora, 1, P + max_new, P) != LS_OK ||
        ls_generate(be, &m, &lora, &kv, prompt, P, 1, max_new, &sp, NULL, -1, 0, -1, 1, &gen) != LS_OK) {
        printf("FAIL greedy generation on %s: %s\n", be->name, ls_last_error());
        failures++;
        return;
    }
    memcpy(ids_out, gen.ids, sizeof(int32_t) * (size_t)gen.n[0]);
    ls_generation_free(&gen);
    ls_kv_free(&kv, be);
    ls_lora_backend_free(be, &lora);
    ls_model_backend_free(be, &m);
}

static void compare_model(const char *name, const ls_model *m, const ls_lora *lora, int B, int T, double tol_loss,
                          double tol_grad) {
    int V = m->cfg.vocab_size, N = B * T;
    int32_t *ids = ls_malloc(sizeof(int32_t) * N), *targets = ls_malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(ls_rng_next(&rng) % (uint64_t)V);
    for (int b = 0; b < B; b++) /* sequence 1 padded after T/2 tokens, as training batches are */
        for (int t = 0; t < T; t++) {
            int valid = b == 1 ? T / 2 : T;
            targets[b * T + t] = t + 1 < valid ? ids[b * T + t + 1] : -1;
        }
    float *g_cpu = ls_malloc(sizeof(float) * lora->arena_floats), *g_gpu = ls_malloc(sizeof(float) * lora->arena_floats);
    double l_cpu = model_step(cpu, m, lora, ids, targets, B, T, g_cpu);
    double l_gpu = model_step(gpu, m, lora, ids, targets, B, T, g_gpu);
    char what[96];
    snprintf(what, sizeof what, "%s: loss (%.6f)", name, l_cpu);
    expect_scalar(what, l_gpu, l_cpu, tol_loss);
    snprintf(what, sizeof what, "%s: LoRA + head-bias gradients", name);
    expect_close(what, g_gpu, g_cpu, lora->arena_floats, tol_grad);

    enum { P = 7, NEW = 12 };
    int32_t prompt[P], a[NEW], b[NEW];
    for (int i = 0; i < P; i++) prompt[i] = ids[i];
    model_greedy(cpu, m, lora, prompt, P, NEW, a);
    model_greedy(gpu, m, lora, prompt, P, NEW, b);
    int same = memcmp(a, b, sizeof a) == 0;
    checks++;
    failures += !same;
    printf("%-4s %s: greedy ids of %d tokens%s\n", same ? "ok" : "FAIL", name, NEW,
           same ? "" : " differ (a near-tie in the logits can do this; see the golden margins)");
    free(ids), free(targets), free(g_cpu), free(g_gpu);
}

static void test_toy_model(void) {
    ls_model m;
    toy_model(&m, &toy_config);
    ls_lora lora;
    ls_lora_init(&lora, &toy_config, 2, 4.0f, (1u << LS_PROJ_COUNT) - 1, 1);
    for (size_t i = 0; i < lora.arena_floats; i++) lora.arena[i] = toy_uniform(-0.3f, 0.3f);
    compare_model("toy model", &m, &lora, 2, 40, 1e-5, 1e-4);
    ls_lora_free(&lora);
    ls_model_free(&m);
}

static void test_golden_tiny(void) {
    const char *env = getenv("LS_SHARED_DIR");
    char dir[4096], adapter[4200];
    snprintf(dir, sizeof dir, "%s/golden/qwen2-tiny", env ? env : LS_SHARED_DIR);
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);
    if (access(dir, R_OK) != 0) {
        printf("skip golden tiny model: %s not found\n", dir);
        return;
    }
    ls_model m;
    ls_lora lora;
    if (ls_model_load(dir, &m) != LS_OK || ls_lora_load(adapter, &m.cfg, &lora) != LS_OK) {
        printf("FAIL loading %s: %s\n", dir, ls_last_error());
        failures++;
        return;
    }
    compare_model("golden qwen2-tiny (V 151936)", &m, &lora, 2, 64, 1e-5, 5e-4);
    ls_lora_free(&lora);
    ls_model_free(&m);
}

int main(void) {
    char why[256];
    if (!ls_cuda_available(why, sizeof why)) {
        printf("SKIPPED: no CUDA device (%s)\n", why);
        return 77;
    }
    cpu = ls_backend_cpu();
    gpu = ls_backend_cuda();
    if (!gpu) {
        printf("FAIL: the CUDA backend did not start: %s\n", ls_last_error());
        return 1;
    }
    const char *math = getenv("LS_CUDA_MATH");
    if (math && strcmp(math, "tf32") == 0) tol_scale = 100;
    test_matmul();
    test_elementwise();
    test_embedding();
    test_rmsnorm();
    test_rope();
    test_attention_shape(2, 70, 4, 2, 64);
    test_attention_shape(1, 33, 2, 1, 4);
    test_attention_shape(2, 130, 14, 2, 64); /* Qwen2.5-0.5B's heads */
    test_attention_shape(1, 97, 4, 2, 128);  /* head_dim of the larger Qwen2.5 sizes, the kernels' limit */
    test_attention_cached();
    test_swiglu();
    test_head_loss();
    test_optimisers();
    expect_no_error("ops");
    test_toy_model();
    test_golden_tiny();
    expect_no_error("model");
    test_attention_many_rows();
    test_scratch_oom_recovers();
    test_lost_context(); /* last: it destroys the context */
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

#else

int main(void) {
    printf("SKIPPED: no CUDA device (this build has no CUDA backend: configure with nvcc and LS_CUDA=AUTO or ON)\n");
    return 77;
}

#endif
