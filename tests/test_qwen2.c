/*
 * test_qwen2.c: the forward and backward passes on a small random model, checked by finite
 * differences through every LoRA target and the head bias, plus invariants (padding, batching).
 * The golden end-to-end comparison lives in test_score.c.
 */
#include <math.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"
#include "lorasweep/model.h"
#include "lorasweep/qwen2.h"
#include "testing.h"
#include "toy_model.h"

enum { B = 2, T = 6 };
static int32_t ids[B * T], targets[B * T];

static void make_batch(void) {
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(toy_uniform(0, 1) * toy_config.vocab_size) % toy_config.vocab_size;
    /* next-token targets; sequence 1 is padded after 4 tokens */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int valid = b == 1 ? 4 : T;
            targets[b * T + t] = t + 1 < valid ? ids[b * T + t + 1] : -1;
        }
}

static double loss_of(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_activations *a) {
    return ls_qwen2_forward(be, m, lora, a, ids, targets, B, T, NULL, 1.0f);
}

/* d loss / d every LoRA parameter and head bias entry against central differences. */
static void test_gradients_finite_difference(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_model m;
    toy_model(&m, &toy_config);
    make_batch();
    ls_lora lora, grads;
    ls_lora_init(&lora, &toy_config, 2, 4.0f, (1u << LS_PROJ_COUNT) - 1, 1);
    for (size_t i = 0; i < lora.arena_floats; i++) lora.arena[i] = toy_uniform(-0.3f, 0.3f); /* B != 0 too */
    ls_lora_like(&grads, &lora, &toy_config);
    ls_activations a;
    assert_int_equal(ls_activations_init(&a, be, &toy_config, &lora, B, T), LS_OK);

    double loss = ls_qwen2_forward(be, &m, &lora, &a, ids, targets, B, T, &grads, 1.0f);
    ls_qwen2_backward(be, &m, &lora, &a, &grads, B, T);
    assert_true(loss > 0 && isfinite(loss));
    assert_true(fabs(loss - loss_of(be, &m, &lora, &a)) < 1e-6 * loss); /* forward repeats exactly-ish */

    double num = 0, den = 0, worst = 0;
    const float eps = 1e-2f;
    for (size_t i = 0; i < lora.arena_floats; i++) {
        float keep = lora.arena[i];
        lora.arena[i] = keep + eps;
        double up = loss_of(be, &m, &lora, &a);
        lora.arena[i] = keep - eps;
        double down = loss_of(be, &m, &lora, &a);
        lora.arena[i] = keep;
        double fd = (up - down) / (2.0 * eps), g = grads.arena[i];
        num += (fd - g) * (fd - g);
        den += g * g;
        double err = fabs(fd - g) / (fabs(g) + 1e-2);
        if (err > worst) worst = err;
    }
    double rel = sqrt(num / den);
    print_message("FD over %zu parameters: relative error %.2e, worst element %.2e\n", lora.arena_floats, rel, worst);
    assert_true(den > 0);
    assert_true(rel < 2e-3);
    assert_true(worst < 2e-2);

    ls_activations_free(&a, be);
    ls_lora_free(&grads);
    ls_lora_free(&lora);
    ls_model_free(&m);
}

/* Padding changes nothing: the batch's loss is the sum of each sequence scored alone at its
 * own length, and changing the tokens in the padding does not move it (causality + masking). */
static void test_padding_and_causality(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_model m;
    toy_model(&m, &toy_config);
    make_batch();
    ls_activations batch, alone0, alone1;
    assert_int_equal(ls_activations_init(&batch, be, &toy_config, NULL, B, T), LS_OK);
    assert_int_equal(ls_activations_init(&alone0, be, &toy_config, NULL, 1, T), LS_OK);
    assert_int_equal(ls_activations_init(&alone1, be, &toy_config, NULL, 1, 4), LS_OK);
    double both = ls_qwen2_forward(be, &m, NULL, &batch, ids, targets, B, T, NULL, 1.0f);
    double seq0 = ls_qwen2_forward(be, &m, NULL, &alone0, ids, targets, 1, T, NULL, 1.0f);
    double seq1 = ls_qwen2_forward(be, &m, NULL, &alone1, ids + T, targets + T, 1, 4, NULL, 1.0f);
    assert_true(fabs(seq0 + seq1 - both) < 1e-5 * both);
    int32_t padded[B * T];
    memcpy(padded, ids, sizeof ids);
    padded[T + 4] = (padded[T + 4] + 1) % toy_config.vocab_size;
    padded[T + 5] = (padded[T + 5] + 7) % toy_config.vocab_size;
    double both_changed = ls_qwen2_forward(be, &m, NULL, &batch, padded, targets, B, T, NULL, 1.0f);
    assert_true(fabs(both - both_changed) < 1e-6 * both);
    ls_activations_free(&batch, be);
    ls_activations_free(&alone0, be);
    ls_activations_free(&alone1, be);
    ls_model_free(&m);
}

/* A LoRA with B = 0 (a fresh adapter) changes nothing, whatever A is. */
static void test_fresh_adapter_is_identity(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_model m;
    toy_model(&m, &toy_config);
    make_batch();
    ls_lora lora;
    ls_lora_init(&lora, &toy_config, 4, 8.0f, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V), 1);
    ls_lora_reset(&lora, &toy_config, 3);
    ls_activations a;
    assert_int_equal(ls_activations_init(&a, be, &toy_config, &lora, B, T), LS_OK);
    double base = ls_qwen2_forward(be, &m, NULL, &a, ids, targets, B, T, NULL, 1.0f);
    double with = ls_qwen2_forward(be, &m, &lora, &a, ids, targets, B, T, NULL, 1.0f);
    assert_true(fabs(base - with) < 1e-9 * base);
    ls_activations_free(&a, be);
    ls_lora_free(&lora);
    ls_model_free(&m);
}

/* The KV cache: a prompt fed at once, in chunks or token by token gives the same next-token
 * logits; a restricted head gives exactly those of its ids; forked samples equal the original. */
static void test_kv_cache_decoding(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_model m;
    toy_model(&m, &toy_config);
    ls_lora lora;
    ls_lora_init(&lora, &toy_config, 2, 4.0f, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V), 1);
    for (size_t i = 0; i < lora.arena_floats; i++) lora.arena[i] = toy_uniform(-0.3f, 0.3f);
    enum { P = 9 };
    int32_t prompt[P];
    for (int i = 0; i < P; i++) prompt[i] = (int32_t)(i * 5 + 2) % toy_config.vocab_size;
    int V = toy_config.vocab_size;
    float at_once[37], chunked[37], stepwise[37], restricted[37], forked[3 * 37];
    ls_kv_state a, b, c;
    assert_int_equal(ls_kv_init(&a, be, &toy_config, &lora, 3, 16, P), LS_OK);
    assert_int_equal(ls_kv_init(&b, be, &toy_config, &lora, 1, 16, 4), LS_OK);
    assert_int_equal(ls_kv_init(&c, be, &toy_config, &lora, 1, 16, 1), LS_OK);
    assert_int_equal(ls_qwen2_decode(be, &m, &lora, &a, prompt, 1, P, at_once), LS_OK);
    assert_int_equal(ls_qwen2_decode(be, &m, &lora, &b, prompt, 1, P, chunked), LS_OK);
    for (int t = 0; t < P; t++) assert_int_equal(ls_qwen2_decode(be, &m, &lora, &c, prompt + t, 1, 1, stepwise), LS_OK);
    for (int j = 0; j < V; j++) {
        assert_float_equal(chunked[j], at_once[j], 1e-5);
        assert_float_equal(stepwise[j], at_once[j], 1e-5);
    }
    /* fork the prompt to 3 sequences, feed each the same token: identical logits */
    ls_kv_fork(be, &toy_config, &a);
    int32_t next[3] = {7, 7, 7};
    assert_int_equal(ls_qwen2_decode(be, &m, &lora, &a, next, 3, 1, forked), LS_OK);
    assert_int_equal(ls_qwen2_decode(be, &m, &lora, &c, next, 1, 1, stepwise), LS_OK);
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < V; j++) assert_float_equal(forked[k * V + j], stepwise[j], 1e-5);
    /* a restricted head fills exactly its ids */
    int32_t head_ids[4] = {3, 11, 0, 36};
    assert_int_equal(ls_kv_restrict_head(&c, be, &m, &lora, head_ids, 4), LS_OK);
    for (int j = 0; j < V; j++) restricted[j] = -12345.0f;
    c.len--; /* feed the last token again at the same position */
    assert_int_equal(ls_qwen2_decode(be, &m, &lora, &c, next, 1, 1, restricted), LS_OK);
    for (int j = 0; j < V; j++) {
        int kept = j == 3 || j == 11 || j == 0 || j == 36;
        if (kept) assert_float_equal(restricted[j], stepwise[j], 1e-5);
        else assert_float_equal(restricted[j], -12345.0f, 0);
    }
    ls_kv_free(&a, be);
    ls_kv_free(&b, be);
    ls_kv_free(&c, be);
    ls_lora_free(&lora);
    ls_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_finite_difference),
        cmocka_unit_test(test_padding_and_causality),
        cmocka_unit_test(test_fresh_adapter_is_identity),
        cmocka_unit_test(test_kv_cache_decoding),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
