/*
 * generate.c: token sampling and the generation loop over a KV cache.
 *
 * Sampling keeps Hugging Face's order (temperature, top-k, top-p) and its tie rule for greedy
 * decoding (the first maximum). Top-p sorts only the tokens that can matter: those within
 * exp(-30) of the most likely one, which with a 151936-token vocabulary is usually a few hundred.
 */
#include "lorasweep/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

typedef struct {
    float p;
    int32_t id;
} candidate;

static int by_prob_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t ls_sample(const ls_sampler *sp, float *logits, int V, const int32_t *allowed, int n_allowed,
                  uint64_t *rng) {
    /* Candidates: the allowed ids, or every id. */
    int n = allowed ? n_allowed : V;
    int32_t best = allowed ? allowed[0] : 0;
    for (int i = 0; i < n; i++) {
        int32_t id = allowed ? allowed[i] : i;
        if (logits[id] > logits[best] || (logits[id] == logits[best] && id < best)) best = id;
    }
    if (sp->greedy) return best;
    float mx = logits[best], temp = sp->temperature > 0 ? sp->temperature : 1.0f;
    candidate *c = ls_malloc(sizeof(candidate) * (size_t)n);
    int kept = 0;
    double total = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = allowed ? allowed[i] : i;
        float z = (logits[id] - mx) / temp;
        if (z < -30.0f) continue; /* below exp(-30) of the best: cannot change a draw */
        c[kept++] = (candidate){expf(z), id};
        total += expf(z);
    }
    int limit = kept;
    if ((sp->top_k > 0 && sp->top_k < kept) || sp->top_p < 1.0f) {
        qsort(c, (size_t)kept, sizeof *c, by_prob_desc);
        if (sp->top_k > 0 && sp->top_k < limit) limit = sp->top_k;
        if (sp->top_p < 1.0f) {
            double sum_k = 0, cum = 0;
            for (int i = 0; i < limit; i++) sum_k += c[i].p;
            for (int i = 0; i < limit; i++) {
                cum += c[i].p / sum_k;
                if (cum >= sp->top_p) {
                    limit = i + 1;
                    break;
                }
            }
        }
        total = 0;
        for (int i = 0; i < limit; i++) total += c[i].p;
    }
    double u = ls_rng_uniform(rng) * total, cum = 0;
    int32_t pick = c[limit - 1].id;
    for (int i = 0; i < limit; i++) {
        cum += c[i].p;
        if (u < cum) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    return pick;
}

/* ---- the LLMTIME grammar ------------------------------------------------------------------- */

int ls_grammar_init(ls_llmtime_grammar *g, const ls_tokenizer *tok, int vars, int decimals) {
    memset(g, 0, sizeof *g);
    char s[2] = {0, 0};
    for (int d = 0; d < 10; d++) {
        s[0] = (char)('0' + d);
        g->digit[d] = ls_tokenizer_token_id(tok, s);
    }
    g->dot = ls_tokenizer_token_id(tok, ".");
    g->comma = ls_tokenizer_token_id(tok, ",");
    g->semicolon = ls_tokenizer_token_id(tok, ";");
    for (int d = 0; d < 10; d++)
        if (g->digit[d] < 0) return ls_error("the tokenizer has no single-digit token '%d'", d);
    if (g->dot < 0 || g->comma < 0 || g->semicolon < 0)
        return ls_error("the tokenizer lacks one of the tokens '.', ',' and ';'");
    g->vars = vars;
    g->decimals = decimals;
    g->max_int_digits = LS_GRAMMAR_MAX_INT_DIGITS;
    return LS_OK;
}

int ls_grammar_allowed(const ls_llmtime_grammar *g, int32_t *out) {
    int n = 0;
    int32_t sep = g->var + 1 < g->vars ? g->comma : g->semicolon;
    if (!g->in_fraction) {
        if (g->count < g->max_int_digits)
            for (int d = 0; d < 10; d++) out[n++] = g->digit[d];
        if (g->count > 0) out[n++] = g->decimals > 0 ? g->dot : sep;
    } else if (g->count < g->decimals) {
        for (int d = 0; d < 10; d++) out[n++] = g->digit[d];
    } else {
        out[n++] = sep;
    }
    return n;
}

void ls_grammar_advance(ls_llmtime_grammar *g, int32_t id) {
    if (id == g->dot) {
        g->in_fraction = 1;
        g->count = 0;
    } else if (id == g->comma || id == g->semicolon) {
        g->var = id == g->comma ? g->var + 1 : 0;
        g->in_fraction = 0;
        g->count = 0;
    } else {
        g->count++;
    }
}

/* ---- the generation loop ------------------------------------------------------------------- */

void ls_generation_free(ls_generation *g) {
    free(g->ids);
    free(g->n);
    memset(g, 0, sizeof *g);
}

int ls_generate(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_kv_state *s,
                const int32_t *prompt, int prompt_len, int B, int max_new, const ls_sampler *sp,
                const ls_llmtime_grammar *grammar, int32_t stop_id, int stop_count, int32_t eos_id, uint64_t seed,
                ls_generation *out) {
    int V = m->cfg.vocab_size;
    if (B > s->B) return ls_error("generate: %d samples but the cache holds %d", B, s->B);
    if (prompt_len < 1) return ls_error("generate: the prompt is empty");
    memset(out, 0, sizeof *out);
    out->B = B;
    out->max_new = max_new;
    out->ids = ls_calloc((size_t)B * (max_new > 0 ? max_new : 1), sizeof(int32_t));
    out->n = ls_calloc((size_t)B, sizeof(int));
    float *logits = ls_malloc(sizeof(float) * (size_t)B * V);
    ls_llmtime_grammar *gram = ls_malloc(sizeof *gram * (size_t)B);
    uint64_t *rng = ls_malloc(sizeof(uint64_t) * (size_t)B);
    int *done = ls_calloc((size_t)B, sizeof(int)), *stops = ls_calloc((size_t)B, sizeof(int));
    int32_t *next = ls_malloc(sizeof(int32_t) * (size_t)B);
    for (int b = 0; b < B; b++) {
        if (grammar) gram[b] = *grammar;
        rng[b] = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(b + 1));
    }
    s->len = 0;
    int rc = LS_OK;
    if (grammar) { /* only the grammar's tokens can be drawn: compute only their logits */
        int32_t ids[13] = {grammar->dot, grammar->comma, grammar->semicolon};
        memcpy(ids + 3, grammar->digit, sizeof grammar->digit);
        rc = ls_kv_restrict_head(s, be, m, lora, ids, 13);
    }
    if (rc == LS_OK) rc = ls_qwen2_decode(be, m, lora, s, prompt, 1, prompt_len, logits);
    if (rc == LS_OK) {
        ls_kv_fork(be, &m->cfg, s);
        for (int b = 1; b < B; b++) memcpy(logits + (size_t)b * V, logits, sizeof(float) * (size_t)V);
    }
    for (int step = 0; rc == LS_OK && step < max_new; step++) {
        int active = 0;
        for (int b = 0; b < B; b++) {
            if (done[b]) {
                next[b] = out->n[b] ? out->ids[(size_t)b * max_new + out->n[b] - 1] : prompt[prompt_len - 1];
                continue;
            }
            int32_t allowed[16];
            int n_allowed = grammar ? ls_grammar_allowed(&gram[b], allowed) : 0;
            int32_t id = ls_sample(sp, logits + (size_t)b * V, V, grammar ? allowed : NULL, n_allowed, &rng[b]);
            next[b] = id;
            if (id == eos_id && !grammar) {
                done[b] = 1;
                continue;
            }
            out->ids[(size_t)b * max_new + out->n[b]++] = id;
            if (grammar) ls_grammar_advance(&gram[b], id);
            if (id == stop_id && stop_count > 0 && ++stops[b] >= stop_count) done[b] = 1;
            active += !done[b];
        }
        if (!active || step + 1 == max_new) break;
        rc = ls_qwen2_decode(be, m, lora, s, next, B, 1, logits);
    }
    if (grammar) ls_kv_restrict_head(s, be, m, lora, NULL, 0);
    free(logits);
    free(gram);
    free(rng);
    free(done);
    free(stops);
    free(next);
    if (rc != LS_OK) ls_generation_free(out);
    return rc;
}
