/*
 * generate.h: sampling tokens from a model with a KV cache, optionally held to the LLMTIME
 * grammar so that every sample parses.
 */
#ifndef LORASWEEP_GENERATE_H
#define LORASWEEP_GENERATE_H

#include <stdint.h>

#include "lorasweep/qwen2.h"
#include "lorasweep/tokenizer.h"

typedef struct {
    int greedy;        /* argmax (the lowest id on a tie); the rest is ignored */
    float temperature; /* > 0 */
    float top_p;       /* keep the smallest set of tokens whose probability reaches top_p; 1 = all */
    int top_k;         /* keep the k most likely tokens; 0 = all */
} ls_sampler;

/* Pick a token from logits (V). Only ids in allowed[0..n_allowed) may be picked when allowed is
 * non-NULL. Order as in Hugging Face: temperature, top-k, top-p. logits is used as scratch. */
int32_t ls_sample(const ls_sampler *sp, float *logits, int V, const int32_t *allowed, int n_allowed,
                  uint64_t *rng);

/* The most integer digits the grammar lets a number have (the FLOPS estimate's longest sample). */
enum { LS_GRAMMAR_MAX_INT_DIGITS = 4 };

/* The LLMTIME grammar: `vars` numbers per step, each digits '.' exactly `decimals` digits,
 * separated by ',' and ended by ';'. At most max_int_digits digits before the point. */
typedef struct {
    int32_t digit[10], dot, comma, semicolon;
    int vars, decimals, max_int_digits;
    int var, in_fraction, count; /* where in the current step the text is */
} ls_llmtime_grammar;

/* LS_ERR if the tokenizer lacks one of the single-character tokens. */
int ls_grammar_init(ls_llmtime_grammar *g, const ls_tokenizer *tok, int vars, int decimals);
/* The ids allowed next (at most 12) into out; returns how many. */
int ls_grammar_allowed(const ls_llmtime_grammar *g, int32_t *out);
void ls_grammar_advance(ls_llmtime_grammar *g, int32_t id);

typedef struct {
    int B, max_new;
    int32_t *ids; /* (B, max_new) */
    int *n;       /* (B) tokens generated per sample */
} ls_generation;

void ls_generation_free(ls_generation *g);

/* Generate up to max_new tokens for B samples of one prompt: the prompt is fed once and its
 * cache copied to every sample. A sample stops at eos_id (not kept; ignored under a grammar),
 * or once it has generated stop_count tokens stop_id (e.g. 20 ';' for 20 steps; 0 = never).
 * Sample b draws from its own stream seeded by (seed, b), so a sample does not depend on how
 * many others run beside it. The state must hold B sequences of
 * prompt_len + max_new positions. */
int ls_generate(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_kv_state *s,
                const int32_t *prompt, int prompt_len, int B, int max_new, const ls_sampler *sp,
                const ls_llmtime_grammar *grammar, int32_t stop_id, int stop_count, int32_t eos_id, uint64_t seed,
                ls_generation *out);

#endif
