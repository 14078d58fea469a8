/*
 * test_flops.c: the FLOPS accounting (src/flops.c) against hand-computed values.
 *
 * A toy config (C 8, F 16, L 1, NH 2, KVH 1, hd 4, V 10) is worked out by hand operation by
 * operation, for a forward of T = 4, a cached decode step, the loss, a training step and a
 * generation. The real Qwen2.5-0.5B config is checked against the textbook estimate
 * 2 x (matmul weights) x T + 4 L T^2 (NH hd): the matrix products exactly, the total within 2 %.
 * Then monotonicity (rank, targets, head bias, length, position) and argument checks.
 */
#include "testing.h"

#include <math.h>

#include "lorasweep/common.h"
#include "lorasweep/flops.h"

#define assert_near_rel(got, want, rel)                                                            \
    do {                                                                                           \
        double got_ = (got), want_ = (want);                                                       \
        if (!(fabs(got_ - want_) <= (rel) * fabs(want_)))                                          \
            fail_msg("%s = %.17g, want %.17g (relative tolerance %g)", #got, got_, want_, (double)(rel)); \
    } while (0)
/* Exact: every count here is an integer well below 2^53. */
#define assert_flops(got, want)                                                                    \
    do {                                                                                           \
        double got_ = (got), want_ = (want);                                                       \
        if (got_ != want_) fail_msg("%s = %.17g, want %.17g", #got, got_, want_);                  \
    } while (0)

static ls_model_config toy(void) {
    ls_model_config c = {0};
    c.vocab_size = 10;
    c.hidden = 8;
    c.intermediate = 16;
    c.layers = 1;
    c.heads = 2;
    c.kv_heads = 1;
    c.head_dim = 4;
    c.max_positions = 32;
    c.rms_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.tie_embeddings = 1;
    return c;
}

/* Qwen2.5-0.5B-Instruct's config.json, written out (test_real_config_file compares it with the file). */
static ls_model_config qwen05b(void) {
    ls_model_config c = {0};
    c.vocab_size = 151936;
    c.hidden = 896;
    c.intermediate = 4864;
    c.layers = 24;
    c.heads = 14;
    c.kv_heads = 2;
    c.head_dim = 64;
    c.max_positions = 32768;
    c.rms_eps = 1e-6f;
    c.rope_theta = 1e6f;
    c.tie_embeddings = 1;
    return c;
}

static const unsigned QV = (1u << LS_PROJ_Q) | (1u << LS_PROJ_V);

/* ---------------------------------------------------------------------------------------- */
/* the toy config by hand                                                                   */

static void test_toy_forward_by_hand(void **state) {
    (void)state;
    ls_model_config cfg = toy();
    ls_flops_lora lora = {2, QV, 1};
    ls_flops_breakdown b;
    assert_int_equal(ls_flops_forward(&cfg, 4, &lora, &b), LS_OK);
    /* T = 4; (m x n)(n x p) = m p (2n - 1); RMSNorm 4C + 12 = 44 per row; softmax 14n - 2. */
    static const double want[LS_FLOPS_OP_COUNT] = {
        [LS_FLOPS_ATTN_NORM] = 4 * 44,              /* 176 */
        [LS_FLOPS_Q_PROJ] = 4 * 8 * 15,             /* (4x8)(8x8) = 480 */
        [LS_FLOPS_K_PROJ] = 4 * 4 * 15,             /* (4x8)(8x4) = 240 */
        [LS_FLOPS_V_PROJ] = 4 * 4 * 15,             /* 240 */
        [LS_FLOPS_QKV_BIAS] = 4 * (8 + 4 + 4),      /* 64 */
        [LS_FLOPS_ROPE_TABLE] = 4 * 2 * 21,         /* 4 positions x hd/2 x (mul + sin + cos) = 168 */
        [LS_FLOPS_ROPE] = 3 * 4 * (8 + 4),          /* 3 per element of q and k = 144 */
        [LS_FLOPS_SCORES] = 2 * 4 * 4 * 7,          /* 2 heads x (4x4)(4x4) = 224 */
        [LS_FLOPS_SCALE] = 2 * 16,                  /* 32 */
        [LS_FLOPS_MASK] = 2 * 16,                   /* full 4x4 per head = 32 */
        [LS_FLOPS_SOFTMAX] = 2 * 4 * 54,            /* 8 rows of 14*4 - 2 = 432 */
        [LS_FLOPS_ATTN_V] = 2 * 4 * 4 * 7,          /* 2 heads x (4x4)(4x4) = 224 */
        [LS_FLOPS_O_PROJ] = 4 * 8 * 15,             /* 480 */
        [LS_FLOPS_ATTN_RESIDUAL] = 32,
        [LS_FLOPS_MLP_NORM] = 176,
        [LS_FLOPS_GATE_PROJ] = 4 * 16 * 15,         /* (4x8)(8x16) = 960 */
        [LS_FLOPS_UP_PROJ] = 960,
        [LS_FLOPS_SILU] = 4 * 16 * 13,              /* 832 */
        [LS_FLOPS_GLU_MUL] = 64,
        [LS_FLOPS_DOWN_PROJ] = 4 * 8 * 31,          /* (4x16)(16x8) = 992 */
        [LS_FLOPS_MLP_RESIDUAL] = 32,
        /* q: (4x8)(8x2) 120 + (4x2)(2x8) 96 + scale and add 2*32 = 280;
         * v: (4x8)(8x2) 120 + (4x2)(2x4) 48 + 2*16 = 200 */
        [LS_FLOPS_LORA] = 280 + 200,
        [LS_FLOPS_FINAL_NORM] = 176,
        [LS_FLOPS_HEAD] = 4 * 10 * 15,              /* (4x8)(8x10) = 600 */
        [LS_FLOPS_HEAD_BIAS] = 40,
    };
    double sum = 0;
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) {
        if (b.op[i] != want[i]) fail_msg("%s = %.17g, want %.17g", ls_flops_op_names[i], b.op[i], want[i]);
        sum += want[i];
    }
    assert_flops(sum, 8280);
    assert_flops(b.total, 8280);

    /* Without the adapter: the LoRA and head-bias lines vanish, nothing else changes. */
    ls_flops_breakdown base;
    assert_int_equal(ls_flops_forward(&cfg, 4, NULL, &base), LS_OK);
    assert_flops(base.total, 8280 - 480 - 40);
    ls_flops_lora rank0 = {0, QV, 0};
    assert_int_equal(ls_flops_forward(&cfg, 4, &rank0, &b), LS_OK);
    assert_flops(b.total, base.total);

    /* Two layers double every per-layer line, but not the table, final norm or head. */
    cfg.layers = 2;
    assert_int_equal(ls_flops_forward(&cfg, 4, &lora, &b), LS_OK);
    assert_flops(b.total, 2 * 8280 - 168 - 176 - 600 - 40);
}

static void test_toy_decode_step_by_hand(void **state) {
    (void)state;
    ls_model_config cfg = toy();
    ls_flops_lora lora = {2, QV, 1};
    ls_flops_breakdown b;
    /* One token at position 4: 5 keys, no mask. */
    assert_int_equal(ls_flops_decode_step(&cfg, 4, &lora, &b), LS_OK);
    assert_flops(b.op[LS_FLOPS_ATTN_NORM], 44);
    assert_flops(b.op[LS_FLOPS_Q_PROJ], 8 * 15);
    assert_flops(b.op[LS_FLOPS_ROPE_TABLE], 2 * 21);
    assert_flops(b.op[LS_FLOPS_ROPE], 3 * 12);
    assert_flops(b.op[LS_FLOPS_SCORES], 2 * 5 * 7); /* (1x4)(4x5) per head */
    assert_flops(b.op[LS_FLOPS_SCALE], 2 * 5);
    assert_flops(b.op[LS_FLOPS_MASK], 0);
    assert_flops(b.op[LS_FLOPS_SOFTMAX], 2 * (14 * 5 - 2));
    assert_flops(b.op[LS_FLOPS_ATTN_V], 2 * 4 * 9); /* (1x5)(5x4) per head */
    assert_flops(b.op[LS_FLOPS_LORA], (30 + 24 + 16) + (30 + 12 + 8));
    assert_flops(b.op[LS_FLOPS_HEAD], 10 * 15);
    /* 44 + 120 + 60 + 60 + 16 + 42 + 36 + 70 + 10 + 0 + 136 + 72 + 120 + 8 + 44 + 240 + 240 + 208 +
     * 16 + 248 + 8 + 120 + 44 + 150 + 10 */
    assert_flops(b.total, 2122);
    /* Position 5: 6 keys, only the attention lines grow: 14 + 2 + 28 + 16. */
    assert_int_equal(ls_flops_decode_step(&cfg, 5, &lora, &b), LS_OK);
    assert_flops(b.total, 2122 + 60);
}

static void test_toy_loss_train_generate(void **state) {
    (void)state;
    ls_model_config cfg = toy();
    ls_flops_lora lora = {2, QV, 1};
    double loss, step, total;
    /* Per position 13V + 10 = 140. */
    assert_int_equal(ls_flops_loss(&cfg, 4, &loss), LS_OK);
    assert_flops(loss, 4 * 140);
    /* B 3: 3 x 3 x (8280 + 560). */
    assert_int_equal(ls_flops_train_step(&cfg, 4, 3, &lora, &step), LS_OK);
    assert_flops(step, 79560);
    assert_int_equal(ls_flops_train_total(&cfg, 4, 3, 1000, &lora, &total), LS_OK);
    assert_flops(total, 79560000);
    assert_int_equal(ls_flops_train_total(&cfg, 4, 3, 0, &lora, &total), LS_OK);
    assert_flops(total, 0);

    /* Prompt 4, 3 new tokens, 2 samples: prefill 8280, decode steps at positions 4 and 5,
     * sampling 3 x (17V - 3). */
    ls_flops_gen g;
    assert_int_equal(ls_flops_generate(&cfg, &lora, 4, 3, 2, &g), LS_OK);
    assert_flops(g.prefill, 8280);
    assert_flops(g.decode, 2122 + 2182);
    assert_flops(g.sampling, 3 * 167);
    assert_flops(g.total, 2 * (8280 + 4304 + 501));
    /* One new token needs only the prefill. */
    assert_int_equal(ls_flops_generate(&cfg, &lora, 4, 1, 1, &g), LS_OK);
    assert_flops(g.decode, 0);
    assert_flops(g.total, 8280 + 167);
}

/* ---------------------------------------------------------------------------------------- */
/* the real model                                                                           */

/* Weights of every matrix product (non-embedding linear layers and the head). */
static double matmul_weights(const ls_model_config *c) {
    double C = c->hidden, F = c->intermediate, q = (double)c->heads * c->head_dim,
           kv = (double)c->kv_heads * c->head_dim;
    return c->layers * (C * q + 2 * C * kv + q * C + 3 * C * F) + (double)c->vocab_size * C;
}

static void test_qwen_matches_parameter_estimate(void **state) {
    (void)state;
    ls_model_config cfg = qwen05b();
    const double T = 512, L = cfg.layers, NH = cfg.heads, hd = cfg.head_dim, C = cfg.hidden,
                 F = cfg.intermediate, KVH = cfg.kv_heads, V = cfg.vocab_size;
    ls_flops_breakdown b;
    assert_int_equal(ls_flops_forward(&cfg, (int)T, NULL, &b), LS_OK);
    const double N = matmul_weights(&cfg);
    assert_flops(N, 357826560.0 + 136134656.0); /* 24 layers x 14,909,440 and the 151936 x 896 head */

    /* The products exactly: a weight of `out` rows costs 2 T in - T per row, so 2 T N minus
     * T x (the output widths); the two attention products 2 T^2 hd - T^2 and 2 T^2 hd - T hd per
     * head and layer. */
    const double weights = b.op[LS_FLOPS_Q_PROJ] + b.op[LS_FLOPS_K_PROJ] + b.op[LS_FLOPS_V_PROJ] +
                           b.op[LS_FLOPS_O_PROJ] + b.op[LS_FLOPS_GATE_PROJ] + b.op[LS_FLOPS_UP_PROJ] +
                           b.op[LS_FLOPS_DOWN_PROJ] + b.op[LS_FLOPS_HEAD];
    const double outs = L * (NH * hd + 2 * KVH * hd + C + 2 * F + C) + V;
    assert_flops(weights, 2 * T * N - T * outs);
    assert_flops(b.op[LS_FLOPS_SCORES] + b.op[LS_FLOPS_ATTN_V], L * NH * (4 * T * T * hd - T * T - T * hd));

    /* The total: the estimate plus the element-wise work (softmax 14 T^2 per head, SiLU 13 T F, ...),
     * a little over half a percent at T = 512. */
    const double estimate = 2 * T * N + 4 * L * T * T * NH * hd;
    double ratio = b.total / estimate;
    print_message("Qwen2.5-0.5B, T 512: forward %.6g, estimate %.6g, ratio %.5f\n", b.total, estimate, ratio);
    assert_true(ratio >= 1.0);
    assert_true(ratio <= 1.02);
    assert_near_rel(b.total, estimate, 0.02);

    /* Train step: B 4, rank 4 on q and v: 3 x 4 x (forward + loss). */
    ls_flops_lora lora = {4, QV, 0};
    ls_flops_breakdown f;
    double loss, step;
    assert_int_equal(ls_flops_forward(&cfg, (int)T, &lora, &f), LS_OK);
    assert_int_equal(ls_flops_loss(&cfg, (int)T, &loss), LS_OK);
    assert_int_equal(ls_flops_train_step(&cfg, (int)T, 4, &lora, &step), LS_OK);
    assert_flops(step, 12 * (f.total + loss));
    /* The adapter's branch, per layer: q (T x C)(C x R) + (T x R)(R x NH hd) + 2 T NH hd, v the same
     * with KVH hd. */
    const double R = 4;
    assert_flops(f.op[LS_FLOPS_LORA], L * (2 * T * R * (2 * C - 1) + T * NH * hd * (2 * R - 1) + 2 * T * NH * hd +
                                           T * KVH * hd * (2 * R - 1) + 2 * T * KVH * hd));
    assert_flops(f.total - b.total, f.op[LS_FLOPS_LORA]);
}

/* The written-out config is the real config.json, as the model loader reads it. */
static void test_real_config_file(void **state) {
    (void)state;
    const char *path = shared_path("qwen/Qwen2.5-0.5B-Instruct.config.json");
    ls_model_config file, mine = qwen05b();
    assert_int_equal(ls_model_config_load(path, &file), LS_OK);
    ls_flops_lora lora = {4, QV, 1};
    ls_flops_breakdown a, b;
    assert_int_equal(ls_flops_forward(&file, 512, &lora, &a), LS_OK);
    assert_int_equal(ls_flops_forward(&mine, 512, &lora, &b), LS_OK);
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) assert_flops(a.op[i], b.op[i]);
    assert_flops(a.total, 530809559040.0); /* docs/flops.md's worked example */
}

static void test_generate_is_prefill_plus_steps(void **state) {
    (void)state;
    ls_model_config cfg = qwen05b();
    ls_flops_lora lora = {4, QV, 1};
    ls_flops_gen g;
    assert_int_equal(ls_flops_generate(&cfg, &lora, 960, 240, 10, &g), LS_OK);
    ls_flops_breakdown b;
    assert_int_equal(ls_flops_forward(&cfg, 960, &lora, &b), LS_OK);
    assert_flops(g.prefill, b.total);
    double decode = 0;
    for (int pos = 960; pos < 960 + 239; pos++) {
        assert_int_equal(ls_flops_decode_step(&cfg, pos, &lora, &b), LS_OK);
        decode += b.total;
    }
    assert_near_rel(g.decode, decode, 1e-15);
    assert_near_rel(g.total, 10 * (g.prefill + g.decode + g.sampling), 1e-15);
    /* A decode step costs about 2 x weights + 4 L NH hd x keys. */
    assert_int_equal(ls_flops_decode_step(&cfg, 1000, &lora, &b), LS_OK);
    double est = 2 * matmul_weights(&cfg) + 4.0 * cfg.layers * cfg.heads * cfg.head_dim * 1001;
    assert_near_rel(b.total, est, 0.02);
}

/* The causal count is the sum of T decode steps (row i is a step at position i: i + 1 keys, no
 * mask), exactly; attention is about half of the course's square; nothing else differs. */
static void test_forward_causal_is_decode_steps(void **state) {
    (void)state;
    ls_model_config cfg = qwen05b();
    ls_flops_lora lora = {8, QV, 1};
    for (int T = 1; T <= 300; T += 37) {
        ls_flops_breakdown causal, square, step;
        assert_int_equal(ls_flops_forward_causal(&cfg, T, &lora, &causal), LS_OK);
        assert_int_equal(ls_flops_forward(&cfg, T, &lora, &square), LS_OK);
        double sum[LS_FLOPS_OP_COUNT] = {0};
        for (int pos = 0; pos < T; pos++) {
            assert_int_equal(ls_flops_decode_step(&cfg, pos, &lora, &step), LS_OK);
            for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) sum[i] += step.op[i];
        }
        double total = 0;
        for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) {
            assert_flops(causal.op[i], sum[i]);
            total += causal.op[i];
            if (i == LS_FLOPS_SCORES || i == LS_FLOPS_ATTN_V)
                assert_near_rel(causal.op[i], square.op[i] * (T + 1.0) / (2.0 * T), 1.0 / T);
            else if (i != LS_FLOPS_SCALE && i != LS_FLOPS_MASK && i != LS_FLOPS_SOFTMAX)
                assert_flops(causal.op[i], square.op[i]);
        }
        assert_flops(causal.total, total);
        assert_true(causal.op[LS_FLOPS_MASK] == 0 && (T == 1 || causal.total < square.total));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* monotonicity                                                                             */

static double forward_total(const ls_model_config *cfg, int T, int rank, unsigned targets, int head_bias) {
    ls_flops_lora lora = {rank, targets, head_bias};
    ls_flops_breakdown b;
    assert_int_equal(ls_flops_forward(cfg, T, &lora, &b), LS_OK);
    return b.total;
}

static void test_monotonic(void **state) {
    (void)state;
    const ls_model_config cfgs[2] = {toy(), qwen05b()};
    for (int c = 0; c < 2; c++) {
        const ls_model_config *cfg = &cfgs[c];
        /* More rank, more FLOPS; rank 0 is the base model. */
        double prev = forward_total(cfg, 16, 0, QV, 0);
        for (int r = 1; r <= 64; r++) {
            double t = forward_total(cfg, 16, r, QV, 0);
            assert_true(t > prev);
            prev = t;
        }
        /* Each added target adds FLOPS, whatever was there before. */
        const unsigned all = (1u << LS_PROJ_COUNT) - 1;
        for (unsigned set = 0; set <= all; set++)
            for (int p = 0; p < LS_PROJ_COUNT; p++)
                if (!(set & (1u << p))) assert_true(forward_total(cfg, 8, 4, set | (1u << p), 0) > forward_total(cfg, 8, 4, set, 0));
        assert_true(forward_total(cfg, 8, 4, QV, 1) > forward_total(cfg, 8, 4, QV, 0));
        /* Longer sequences, later decode positions, more steps and samples cost more. */
        for (int T = 1; T < 30; T++) assert_true(forward_total(cfg, T + 1, 4, QV, 1) > forward_total(cfg, T, 4, QV, 1));
        ls_flops_lora lora = {4, QV, 1};
        ls_flops_breakdown a, b;
        for (int pos = 0; pos < 30; pos++) {
            assert_int_equal(ls_flops_decode_step(cfg, pos, &lora, &a), LS_OK);
            assert_int_equal(ls_flops_decode_step(cfg, pos + 1, &lora, &b), LS_OK);
            assert_true(b.total > a.total);
        }
        ls_flops_gen g1, g2;
        assert_int_equal(ls_flops_generate(cfg, &lora, 8, 5, 1, &g1), LS_OK);
        assert_int_equal(ls_flops_generate(cfg, &lora, 8, 6, 1, &g2), LS_OK);
        assert_true(g2.total > g1.total);
        assert_int_equal(ls_flops_generate(cfg, &lora, 8, 5, 3, &g2), LS_OK);
        assert_flops(g2.total, 3 * g1.total);
        double s1, s2;
        assert_int_equal(ls_flops_train_step(cfg, 8, 1, &lora, &s1), LS_OK);
        assert_int_equal(ls_flops_train_step(cfg, 8, 5, &lora, &s2), LS_OK);
        assert_flops(s2, 5 * s1);
    }
}

/* Every operation has a distinct name, and the total is the sum of the lines. */
static void test_names_and_sum(void **state) {
    (void)state;
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) {
        assert_non_null(ls_flops_op_names[i]);
        for (int j = 0; j < i; j++) assert_string_not_equal(ls_flops_op_names[i], ls_flops_op_names[j]);
    }
    ls_model_config cfg = qwen05b();
    ls_flops_lora lora = {8, (1u << LS_PROJ_COUNT) - 1, 1};
    ls_flops_breakdown b;
    assert_int_equal(ls_flops_forward(&cfg, 4096, &lora, &b), LS_OK);
    double sum = 0;
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) {
        assert_true(b.op[i] > 0);
        sum += b.op[i];
    }
    assert_flops(b.total, sum);
}

/* ---------------------------------------------------------------------------------------- */
/* bad arguments                                                                            */

static void expect_error(int rc, const char *fragment) {
    assert_int_equal(rc, LS_ERR);
    if (!strstr(ls_last_error(), fragment)) fail_msg("error '%s' does not mention '%s'", ls_last_error(), fragment);
}

static void test_bad_arguments(void **state) {
    (void)state;
    ls_model_config cfg = toy();
    ls_flops_lora lora = {2, QV, 0};
    ls_flops_breakdown b;
    b.total = 12345;
    double x = 12345;
    ls_flops_gen g = {.total = 12345};
    expect_error(ls_flops_forward(&cfg, 0, &lora, &b), "sequence length 0");
    expect_error(ls_flops_forward_causal(&cfg, 0, &lora, &b), "sequence length 0");
    expect_error(ls_flops_forward(&cfg, 33, &lora, &b), "past the model's 32 positions");
    expect_error(ls_flops_forward(NULL, 4, &lora, &b), "no model configuration");
    ls_flops_lora neg = {-1, QV, 0}, wide = {2, 1u << LS_PROJ_COUNT, 0};
    expect_error(ls_flops_forward(&cfg, 4, &neg, &b), "rank -1");
    expect_error(ls_flops_forward(&cfg, 4, &wide, &b), "targets");
    expect_error(ls_flops_decode_step(&cfg, -1, &lora, &b), "position -1");
    expect_error(ls_flops_decode_step(&cfg, 32, &lora, &b), "past the model's");
    expect_error(ls_flops_loss(&cfg, 0, &x), "sequence length 0");
    expect_error(ls_flops_train_step(&cfg, 4, 0, &lora, &x), "batch size 0");
    expect_error(ls_flops_train_total(&cfg, 4, 2, -1, &lora, &x), "-1 training steps");
    expect_error(ls_flops_generate(&cfg, &lora, 0, 3, 1, &g), "prompt of 0");
    expect_error(ls_flops_generate(&cfg, &lora, 4, 0, 1, &g), "0 new tokens");
    expect_error(ls_flops_generate(&cfg, &lora, 4, 3, 0, &g), "0 samples");
    expect_error(ls_flops_generate(&cfg, &lora, 30, 4, 1, &g), "past the model's");
    assert_int_equal(ls_flops_generate(&cfg, &lora, 30, 3, 1, &g), LS_OK); /* positions up to 31 */
    g.total = 12345;
    ls_model_config bad = cfg;
    bad.kv_heads = 3;
    expect_error(ls_flops_forward(&bad, 4, &lora, &b), "does not divide");
    bad = cfg;
    bad.vocab_size = 0;
    expect_error(ls_flops_forward(&bad, 4, &lora, &b), "vocab_size is 0");
    bad = cfg;
    bad.max_positions = 0; /* unknown limit: anything goes */
    assert_int_equal(ls_flops_forward(&bad, 100000, &lora, &b), LS_OK);
    b.total = 12345;
    expect_error(ls_flops_forward(&cfg, -5, &lora, &b), "sequence length -5");
    /* Failures leave the outputs alone. */
    assert_flops(b.total, 12345);
    assert_flops(x, 12345);
    assert_flops(g.total, 12345);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toy_forward_by_hand),
        cmocka_unit_test(test_toy_decode_step_by_hand),
        cmocka_unit_test(test_toy_loss_train_generate),
        cmocka_unit_test(test_qwen_matches_parameter_estimate),
        cmocka_unit_test(test_real_config_file),
        cmocka_unit_test(test_generate_is_prefill_plus_steps),
        cmocka_unit_test(test_forward_causal_is_decode_steps),
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_names_and_sum),
        cmocka_unit_test(test_bad_arguments),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
