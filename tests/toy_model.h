/* toy_model.h: a small random Qwen2-shaped model for tests that need no files. */
#ifndef LORASWEEP_TOY_MODEL_H
#define LORASWEEP_TOY_MODEL_H

#include <stdlib.h>
#include <string.h>

#include "lorasweep/model.h"
#include "lorasweep/train.h"

static uint64_t toy_rng = 88172645463325252ull;
static inline float toy_uniform(float lo, float hi) { /* xorshift64: deterministic, independent of libc */
    toy_rng ^= toy_rng << 13;
    toy_rng ^= toy_rng >> 7;
    toy_rng ^= toy_rng << 17;
    return lo + (hi - lo) * (float)((toy_rng >> 11) * (1.0 / 9007199254740992.0));
}

static const ls_model_config toy_config = {
    .vocab_size = 37, .hidden = 16, .intermediate = 24, .layers = 2, .heads = 4, .kv_heads = 2,
    .head_dim = 4, .max_positions = 64, .rms_eps = 1e-6f, .rope_theta = 10000.0f, .tie_embeddings = 1,
    .bos_id = 0, .eos_id = 1,
};

/* A random model of config c, laid out by ls_model_alloc as ls_model_load lays it out. */
static inline void toy_model(ls_model *m, const ls_model_config *c) {
    ls_model_alloc(m, c);
    for (size_t i = 0; i < m->arena_floats; i++) m->arena[i] = toy_uniform(-0.5f, 0.5f);
    for (int l = 0; l < c->layers; l++)
        for (int j = 0; j < c->hidden; j++) m->layer[l].attn_norm[j] = 1.0f + 0.2f * m->layer[l].attn_norm[j];
}

/* A learnable stream: a repeating pattern of token ids (each token determines the next), cut into
 * windows of ctx tokens with stride ctx/2 like real text. The caller frees tokens, start, valid. */
static inline void toy_pattern_windows(ls_window_set *w, int ctx, int n_tokens, int offset) {
    memset(w, 0, sizeof *w);
    w->ctx = ctx;
    w->n_tokens = n_tokens;
    w->tokens = malloc(sizeof(int32_t) * (size_t)n_tokens);
    static const int32_t cycle[6] = {5, 17, 9, 30, 2, 21};
    for (int i = 0; i < n_tokens; i++) w->tokens[i] = cycle[(i + offset) % 6];
    w->n_windows = (n_tokens - 2) / (ctx / 2);
    w->start = malloc(sizeof(int64_t) * (size_t)w->n_windows);
    w->valid = malloc(sizeof(int) * (size_t)w->n_windows);
    for (int k = 0; k < w->n_windows; k++) {
        w->start[k] = (int64_t)k * (ctx / 2);
        w->valid[k] = (int)(n_tokens - w->start[k] < ctx ? n_tokens - w->start[k] : ctx);
    }
}

#endif
