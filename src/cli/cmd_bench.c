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
    "                       [--targets q_proj,v_proj] [--sgemm-size N] [--backend cpu|cuda]\n"
    "\n"
    "Times N training steps (after one warm-up) of B sequences of T random tokens with a fresh\n"
    "rank-R adapter, and OpenBLAS sgemm on N x N matrices in the same run. Prints JSON:\n"
    "tokens_per_s, step_seconds (forward, backward, optimizer), gflops (the course's FLOPS of a\n"
    "step / time; it counts weight gradients that frozen weights never need), gflops_executed\n"
    "(2/3 of that: forward + input gradients), sgemm_gflops, and fraction_of_sgemm (executed).\n"
    "  DIR may be a checkpoint or a preset name (tiny, small, qwen2.5-0.5b: random weights).\n"
    "  --backend cuda times the CUDA backend (in builds that have it); sgemm stays OpenBLAS's.\n";

/* Best of `reps` timings of an n x n x n sgemm, in GFLOP/s. */
static double sgemm_gflops(int n, int reps) {
    float *a = ls_malloc(sizeof(float) * (size_t)n * n), *b = ls_malloc(sizeof(float) * (size_t)n * n),
          *c = ls_malloc(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t = ls_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = ls_now() - t;
        if (r > 0 && t < best) best = t; /* the first run warms caches and threads */
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)n * n / best / 1e9;
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
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_arg = NULL, *targets_arg = "q_proj,v_proj", *backend_arg = "cpu";
    long B = 0, T = 0, R = 4, steps = 5, n_sgemm = 1024;
    int c;
    while ((c = getopt_long(argc, argv, ":m:b:t:r:s:g:n:k:h", opts, NULL)) != -1) {
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

    double t_fwd = 0, t_bwd = 0, t_opt = 0;
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
        if (s == 0) continue;
        t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2;
    }
    double step_s = (t_fwd + t_bwd + t_opt) / steps, flops = 0;
    ls_flops_lora fl = {(int)R, targets, 1};
    ls_flops_train_step(&model.cfg, (int)T, (int)B, &fl, &flops);
    /* The course counts backward as 2 x forward (weight gradients included); with frozen base
     * weights the backward pass forms no weight gradients, so the work executed is about
     * forward + one more forward's worth (the input gradients). Both rates are reported. */
    double executed = flops * 2.0 / 3.0;
    double gflops = flops / step_s / 1e9, gflops_exec = executed / step_s / 1e9, peak = sgemm_gflops((int)n_sgemm, 3);
    int threads = ls_cpu_threads();
    printf("{\"model\": \"%s\", \"backend\": \"%s\", \"batch\": %ld, \"ctx\": %ld, \"rank\": %ld, \"steps\": %ld, \"threads\": %d,\n"
           " \"tokens_per_s\": %.1f, \"step_seconds\": %.4f,\n"
           " \"forward_seconds\": %.4f, \"backward_seconds\": %.4f, \"optimizer_seconds\": %.5f,\n"
           " \"step_flops\": %.4g, \"gflops\": %.2f, \"gflops_executed\": %.2f,\n"
           " \"sgemm_size\": %ld, \"sgemm_gflops\": %.2f, \"fraction_of_sgemm\": %.3f, \"activation_bytes\": %zu}\n",
           model_arg, be->name, B, T, R, steps, threads, (double)N / step_s, step_s, t_fwd / steps, t_bwd / steps,
           t_opt / steps, flops, gflops, gflops_exec, n_sgemm, peak, gflops_exec / peak, acts.arena_bytes);
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
