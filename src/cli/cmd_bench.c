/*
 * cmd_bench.c: `lorasweep bench`: how fast a training step runs on this machine, against what
 * the same machine's OpenBLAS sgemm reaches in the same run. Prints one JSON object.
 *
 * The step is the real one (forward with the fused head loss, backward to the adapter, AdamW) on
 * random tokens; FLOPS are the course's accounting of that step (flops.h), so GFLOP/s compare
 * directly with sgemm's 2n^3 / time.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/backend.h"
#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/flops.h"
#include "lorasweep/qwen2.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char usage[] =
    "usage: lorasweep bench --model DIR --batch B --ctx T [--rank R] [--steps N]\n"
    "                       [--targets q_proj,v_proj] [--sgemm-size N] [--backend cpu|cuda] [--profile]\n"
    "\n"
    "Times N training steps (after one warm-up) of B sequences of T random tokens with a fresh\n"
    "rank-R adapter, and OpenBLAS sgemm on N x N matrices after each step. Prints JSON:\n"
    "tokens_per_s, step_seconds (forward, backward, optimizer), gflops (the course's FLOPS of a\n"
    "step / time; it counts weight gradients that frozen weights never need and attention over\n"
    "the full square), gflops_executed (the work a step must do: 2 x forward with causal\n"
    "attention, i.e. forward + input gradients), sgemm_gflops (the median of the probes), and\n"
    "fraction_of_sgemm (executed / sgemm).\n"
    "  DIR may be a checkpoint or a preset name (tiny, small, qwen2.5-0.5b: random weights).\n"
    "  --backend cuda times the CUDA backend (in builds that have it); sgemm stays OpenBLAS's.\n"
    "  --profile adds, on stderr, each op's time per step and each matrix product shape's rate.\n";

/* OpenBLAS sgemm on n x n matrices, the yardstick: timed between the training steps, so that
 * both see the same machine (on a shared machine the load moves from minute to minute). */
typedef struct {
    int n;
    float *a, *b, *c;
} sgemm_probe;

static void sgemm_probe_init(sgemm_probe *p, int n) {
    p->n = n;
    p->a = ls_malloc(sizeof(float) * (size_t)n * n), p->b = ls_malloc(sizeof(float) * (size_t)n * n);
    p->c = ls_malloc(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) p->a[i] = p->b[i] = (float)(i % 7) * 0.1f;
}

/* Best of `reps` products, in GFLOP/s. */
static double sgemm_probe_run(sgemm_probe *p, int reps) {
    int n = p->n;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = ls_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, p->a, n, p->b, n, 0.0f, p->c, n);
        t = ls_now() - t;
        if (t < best) best = t;
    }
    return 2.0 * n * (double)n * n / best / 1e9;
}

static void sgemm_probe_free(sgemm_probe *p) { free(p->a), free(p->b), free(p->c); }

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* --profile: every op of the backend timed. A table of the same ops that calls the real
 * backend's and adds up each op's seconds (the CPU backend's ops are synchronous, so the time
 * of a call is its work's; on a device it would be the launch's), and each distinct matrix
 * product shape's seconds and FLOPs. */
enum { PROF_OPS = 24, PROF_SHAPES = 64 };
static const ls_backend *prof_inner;
static struct {
    const char *name;
    long calls;
    double s;
} prof_op[PROF_OPS];
typedef struct {
    int m, n, k, ta, tb;
    long calls;
    double s;
} prof_shape;
static prof_shape prof_mm[PROF_SHAPES];
static int prof_n_mm;

static void prof_add(int op, const char *name, double t0) {
    prof_op[op].name = name;
    prof_op[op].calls++;
    prof_op[op].s += ls_now() - t0;
}
#define PROF(op, call)                                                                                              \
    do {                                                                                                           \
        double t0_ = ls_now();                                                                                     \
        prof_inner->call;                                                                                          \
        prof_add(op, #op, t0_);                                                                                    \
    } while (0)
enum { matmul, add_bias, add, embedding, rmsnorm_forward, rmsnorm_backward, rope_forward, rope_backward,
       attention_forward, attention_backward, attention_cached, swiglu_forward, swiglu_backward, head_loss, adamw,
       zero, copy };

static void p_matmul(float *c, const float *a, const float *b, int m, int n, int k, int ta, int tb, float alpha,
                     float beta) {
    double t0 = ls_now();
    prof_inner->matmul(c, a, b, m, n, k, ta, tb, alpha, beta);
    double dt = ls_now() - t0;
    prof_add(matmul, "matmul", t0);
    int i = 0;
    while (i < prof_n_mm && !(prof_mm[i].m == m && prof_mm[i].n == n && prof_mm[i].k == k && prof_mm[i].ta == ta &&
                              prof_mm[i].tb == tb))
        i++;
    if (i == prof_n_mm && prof_n_mm < PROF_SHAPES) prof_mm[prof_n_mm++] = (prof_shape){m, n, k, ta, tb, 0, 0};
    if (i < PROF_SHAPES) prof_mm[i].calls++, prof_mm[i].s += dt;
}
static void p_add_bias(float *y, const float *b, int r, int c) { PROF(add_bias, add_bias(y, b, r, c)); }
static void p_add(float *y, const float *x, size_t n) { PROF(add, add(y, x, n)); }
static void p_embedding(float *o, const int32_t *ids, const float *t, int n, int C) { PROF(embedding, embedding(o, ids, t, n, C)); }
static void p_rmsnorm_forward(float *y, float *r, const float *x, const float *w, int rows, int C, float eps) {
    PROF(rmsnorm_forward, rmsnorm_forward(y, r, x, w, rows, C, eps));
}
static void p_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, const float *r, int rows,
                               int C) {
    PROF(rmsnorm_backward, rmsnorm_backward(dx, dy, x, w, r, rows, C));
}
static void p_rope_forward(float *x, int rows, int T, int pos0, int heads, int hd, float theta) {
    PROF(rope_forward, rope_forward(x, rows, T, pos0, heads, hd, theta));
}
static void p_rope_backward(float *x, int rows, int T, int pos0, int heads, int hd, float theta) {
    PROF(rope_backward, rope_backward(x, rows, T, pos0, heads, hd, theta));
}
static void p_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int B, int T,
                                int NH, int KVH, int hd) {
    PROF(attention_forward, attention_forward(out, lse, q, k, v, B, T, NH, KVH, hd));
}
static void p_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                 const float *lse, const float *q, const float *k, const float *v, int B, int T, int NH,
                                 int KVH, int hd) {
    PROF(attention_backward, attention_backward(dq, dk, dv, dout, out, lse, q, k, v, B, T, NH, KVH, hd));
}
static void p_swiglu_forward(float *h, const float *g, const float *u, size_t n) { PROF(swiglu_forward, swiglu_forward(h, g, u, n)); }
static void p_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    PROF(swiglu_backward, swiglu_backward(dg, du, dh, g, u, n));
}
static double p_head_loss(float *dx, float *dbias, const float *x, const float *w, const float *bias,
                          const int32_t *targets, int rows, int C, int V, float grad_scale) {
    double t0 = ls_now();
    double loss = prof_inner->head_loss(dx, dbias, x, w, bias, targets, rows, C, V, grad_scale);
    prof_add(head_loss, "head_loss", t0);
    return loss;
}
static void p_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                    float wd, int t) {
    PROF(adamw, adamw(p, g, m, v, n, lr, b1, b2, eps, wd, t));
}
static void p_zero(void *p, size_t bytes) { PROF(zero, zero(p, bytes)); }
#undef PROF

static const ls_backend *profiled(const ls_backend *inner) {
    static ls_backend b;
    prof_inner = inner;
    b = *inner;
    b.matmul = p_matmul, b.add_bias = p_add_bias, b.add = p_add, b.embedding = p_embedding;
    b.rmsnorm_forward = p_rmsnorm_forward, b.rmsnorm_backward = p_rmsnorm_backward;
    b.rope_forward = p_rope_forward, b.rope_backward = p_rope_backward;
    b.attention_forward = p_attention_forward, b.attention_backward = p_attention_backward;
    b.swiglu_forward = p_swiglu_forward, b.swiglu_backward = p_swiglu_backward, b.head_loss = p_head_loss;
    b.adamw = p_adamw, b.zero = p_zero;
    return &b;
}

/* The table, per timed step, to stderr: ops by time, then matrix product shapes by time. */
/* Forgets what the warm-up step cost (first touches of scratch, thread start-up), so the table is
 * per timed step and adds up to the step time. */
static void profile_reset(void) {
    memset(prof_op, 0, sizeof prof_op);
    memset(prof_mm, 0, sizeof prof_mm);
    prof_n_mm = 0;
}

static void profile_print(long steps, double step_s) {
    double total = 0;
    for (int i = 0; i < PROF_OPS; i++) total += prof_op[i].s;
    fprintf(stderr, "profile: per step of %.3f s (ops %.3f s; the rest is the step's own work)\n", step_s,
            total / steps);
    for (int pass = 0; pass < PROF_OPS; pass++) { /* largest first, by selection */
        int best = -1;
        for (int i = 0; i < PROF_OPS; i++)
            if (prof_op[i].calls > 0 && (best < 0 || prof_op[i].s > prof_op[best].s)) best = i;
        if (best < 0) break;
        fprintf(stderr, "  %-20s %6ld calls %8.4f s %5.1f%%\n", prof_op[best].name, prof_op[best].calls / steps,
                prof_op[best].s / steps, 100 * prof_op[best].s / total);
        prof_op[best].calls = -prof_op[best].calls;
    }
    fprintf(stderr, "  matrix products (m x n x k, transposes): calls, s, GFLOP/s\n");
    for (int pass = 0; pass < prof_n_mm; pass++) {
        int best = -1;
        for (int i = 0; i < prof_n_mm; i++)
            if (prof_mm[i].calls > 0 && (best < 0 || prof_mm[i].s > prof_mm[best].s)) best = i;
        if (best < 0) break;
        double flop = 2.0 * prof_mm[best].m * prof_mm[best].n * (double)prof_mm[best].k * prof_mm[best].calls;
        fprintf(stderr, "  %6d x %6d x %6d %d%d %6ld %8.4f s %7.1f\n", prof_mm[best].m, prof_mm[best].n,
                prof_mm[best].k, prof_mm[best].ta, prof_mm[best].tb, prof_mm[best].calls / steps,
                prof_mm[best].s / steps, flop / prof_mm[best].s / 1e9);
        prof_mm[best].calls = -prof_mm[best].calls;
    }
}

static int parse_targets(const char *s, unsigned *out) {
    *out = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int p = 0; p < LS_PROJ_COUNT; p++)
            if (!strcmp(tok, ls_proj_names[p])) *out |= 1u << p, found = 1;
        if (!found) return ls_error("unknown target '%s'", tok);
    }
    return LS_OK;
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
        {"ctx", required_argument, 0, 't'},   {"rank", required_argument, 0, 'r'},
        {"steps", required_argument, 0, 's'}, {"targets", required_argument, 0, 'g'},
        {"sgemm-size", required_argument, 0, 'n'}, {"backend", required_argument, 0, 'k'},
        {"profile", no_argument, 0, 'p'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_arg = NULL, *targets_arg = "q_proj,v_proj", *backend_arg = "cpu";
    long B = 0, T = 0, R = 4, steps = 5, n_sgemm = 1024;
    int c, profile = 0;
    while ((c = getopt_long(argc, argv, ":m:b:t:r:s:g:n:k:ph", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model_arg = optarg; break;
        case 'b': bad = cli_long("bench", "batch", optarg, 1, 4096, &B); break;
        case 't': bad = cli_long("bench", "ctx", optarg, 2, 1 << 20, &T); break;
        case 'r': bad = cli_long("bench", "rank", optarg, 1, 4096, &R); break;
        case 's': bad = cli_long("bench", "steps", optarg, 1, 1000000, &steps); break;
        case 'g': targets_arg = optarg; break;
        case 'n': bad = cli_long("bench", "sgemm-size", optarg, 16, 16384, &n_sgemm); break;
        case 'k': backend_arg = optarg; break;
        case 'p': profile = 1; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("bench", argv);
        }
        if (bad) return bad;
    }
    if (optind < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!model_arg || !B || !T) return cli_usage_error("bench", "--model, --batch and --ctx are required");
    unsigned targets;
    if (parse_targets(targets_arg, &targets) != LS_OK) return cli_usage_error("bench", "--targets: %s", ls_last_error());

    const ls_backend *be = ls_backend_named(backend_arg, NULL, NULL, 0);
    if (!be) {
        ls_error_prefix("--backend");
        return cli_fail();
    }
    if (profile) be = profiled(be);
    ls_model model = {0}, dev_model;
    ls_model_config preset;
    if (ls_model_config_preset(model_arg, &preset) == LS_OK) { /* random weights of a preset's shape */
        ls_model_alloc(&model, &preset);
        uint64_t rng = 1;
        for (size_t i = 0; i < model.arena_floats; i++) model.arena[i] = (float)(ls_rng_uniform(&rng) - 0.5) * 0.04f;
    } else if (ls_model_load(model_arg, &model) != LS_OK) {
        return cli_fail();
    }
    if (T > model.cfg.max_positions) {
        ls_model_free(&model);
        ls_error("--ctx %ld is longer than the model's %d positions", T, model.cfg.max_positions);
        return cli_fail();
    }
    ls_lora lora, grads, m1, m2;
    ls_lora_init(&lora, &model.cfg, (int)R, (float)(2 * R), targets, 1);
    uint64_t rng = 7;
    for (size_t i = 0; i < lora.arena_floats; i++) lora.arena[i] = (float)(ls_rng_uniform(&rng) - 0.5) * 0.02f;
    ls_lora_like(&grads, &lora, &model.cfg);
    ls_lora_like(&m1, &lora, &model.cfg);
    ls_lora_like(&m2, &lora, &model.cfg);
    /* on a device, the model and the adapter's tensors go there (aliases on the CPU) */
    ls_lora d_lora, d_grads, d_m1, d_m2;
    ls_activations acts;
    if (ls_model_to_backend(be, &model, &dev_model) != LS_OK || ls_lora_to_backend(be, &lora, &d_lora) != LS_OK ||
        ls_lora_to_backend(be, &grads, &d_grads) != LS_OK || ls_lora_to_backend(be, &m1, &d_m1) != LS_OK ||
        ls_lora_to_backend(be, &m2, &d_m2) != LS_OK ||
        ls_activations_init(&acts, be, &model.cfg, &d_lora, (int)B, (int)T) != LS_OK) {
        ls_model_free(&model);
        return cli_fail();
    }
    size_t N = (size_t)B * T;
    int32_t *ids = ls_malloc(sizeof(int32_t) * N), *targets_ids = ls_malloc(sizeof(int32_t) * N);
    for (size_t i = 0; i < N; i++) ids[i] = 11 + (int32_t)(ls_rng_next(&rng) % 16); /* digits and separators */
    for (size_t i = 0; i < N; i++) targets_ids[i] = i % T + 1 < (size_t)T ? ids[i + 1] : -1;

    double t_fwd = 0, t_bwd = 0, t_opt = 0, *peaks = ls_malloc(sizeof(double) * (size_t)steps);
    sgemm_probe probe;
    sgemm_probe_init(&probe, (int)n_sgemm);
    sgemm_probe_run(&probe, 1); /* warms its caches and threads */
    for (long s = 0; s <= steps; s++) { /* step 0 warms up */
        double t0 = ls_now();
        be->zero(d_grads.arena, sizeof(float) * d_grads.arena_floats);
        ls_qwen2_forward(be, &dev_model, &d_lora, &acts, ids, targets_ids, (int)B, (int)T, &d_grads,
                         1.0f / (float)(N - B));
        int rc = be->check(); /* also waits for a device, so the times below are the work's */
        double t1 = ls_now();
        ls_qwen2_backward(be, &dev_model, &d_lora, &acts, &d_grads, (int)B, (int)T);
        rc |= be->check();
        double t2 = ls_now();
        be->adamw(d_lora.arena, d_grads.arena, d_m1.arena, d_m2.arena, lora.arena_floats, 1e-5f, 0.9f, 0.999f, 1e-8f,
                  0.0f, (int)s + 1);
        rc |= be->check();
        double t3 = ls_now();
        if (rc != LS_OK) return cli_fail();
        if (s == 0) {
            if (profile) profile_reset();
            continue;
        }
        t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2;
        peaks[s - 1] = sgemm_probe_run(&probe, 2);
    }
    sgemm_probe_free(&probe);
    qsort(peaks, (size_t)steps, sizeof *peaks, cmp_double);
    double peak = steps % 2 ? peaks[steps / 2] : (peaks[steps / 2 - 1] + peaks[steps / 2]) / 2; /* the median */
    free(peaks);
    double step_s = (t_fwd + t_bwd + t_opt) / steps, flops = 0, loss_flops = 0;
    ls_flops_lora fl = {(int)R, targets, 1};
    ls_flops_breakdown causal;
    ls_flops_train_step(&model.cfg, (int)T, (int)B, &fl, &flops);
    ls_flops_forward_causal(&model.cfg, (int)T, &fl, &causal);
    ls_flops_loss(&model.cfg, (int)T, &loss_flops);
    /* The course counts backward as 2 x forward (weight gradients included) and attention over
     * the full T x T square. What a step must do is less: the base weights are frozen, so
     * backward forms no weight gradients, only input gradients (about one more forward: a
     * product's dx costs what the product did), and attention needs only the causal triangle.
     * `executed` counts that: 2 x (forward with causal attention + loss), per sequence; work
     * done twice (backward recomputes attention's probabilities) is not counted again. */
    double executed = 2.0 * (double)B * (causal.total + loss_flops);
    double gflops = flops / step_s / 1e9, gflops_exec = executed / step_s / 1e9;
    int threads = ls_cpu_threads();
    printf("{\"model\": \"%s\", \"backend\": \"%s\", \"batch\": %ld, \"ctx\": %ld, \"rank\": %ld, \"steps\": %ld, \"threads\": %d,\n"
           " \"tokens_per_s\": %.1f, \"step_seconds\": %.4f,\n"
           " \"forward_seconds\": %.4f, \"backward_seconds\": %.4f, \"optimizer_seconds\": %.5f,\n"
           " \"step_flops\": %.4g, \"gflops\": %.2f, \"gflops_executed\": %.2f,\n"
           " \"sgemm_size\": %ld, \"sgemm_gflops\": %.2f, \"fraction_of_sgemm\": %.3f, \"activation_bytes\": %zu}\n",
           model_arg, be->name, B, T, R, steps, threads, (double)N / step_s, step_s, t_fwd / steps, t_bwd / steps,
           t_opt / steps, flops, gflops, gflops_exec, n_sgemm, peak, gflops_exec / peak, acts.arena_bytes);
    if (profile) profile_print(steps, step_s);
    free(ids);
    free(targets_ids);
    ls_activations_free(&acts, be);
    ls_lora_backend_free(be, &d_lora);
    ls_lora_backend_free(be, &d_grads);
    ls_lora_backend_free(be, &d_m1);
    ls_lora_backend_free(be, &d_m2);
    ls_model_backend_free(be, &dev_model);
    ls_lora_free(&lora);
    ls_lora_free(&grads);
    ls_lora_free(&m1);
    ls_lora_free(&m2);
    ls_model_free(&model);
    return CLI_EXIT_OK;
}
