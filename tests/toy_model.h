/* toy_model.h: a small random Qwen2-shaped model for tests that need no files. */
#ifndef LORASWEEP_TOY_MODEL_H
#define LORASWEEP_TOY_MODEL_H

#include "lorasweep/model.h"

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

#endif
