/*
 * eval.c: forecasting the test systems and scoring the forecasts (see eval.h).
 *
 * Decisions: a sample that stops short (the model ended the text, or it did not parse) still
 * gives the steps it did write; a step's statistics use the samples that reached it, and the
 * sample counts as failed. MSE and MAE of a system average the steps that have a forecast; the
 * split's figure is the mean over systems, each weighing the same.
 */
#include "lorasweep/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

int ls_forecast_token_budget(int steps, int decimals) {
    /* per value: up to 4 integer digits, '.', the decimals, then ',' or ';' */
    return ls_forecast_grammar_tokens(steps, decimals) + 8;
}

int ls_forecast_grammar_tokens(int steps, int decimals) {
    return steps * LS_LV_VARS * (LS_GRAMMAR_MAX_INT_DIGITS + 1 + decimals + 1);
}

int ls_forecast_new_tokens(int max_new_tokens, int forecast_steps, int decimals) {
    return max_new_tokens > 0 ? max_new_tokens : ls_forecast_token_budget(forecast_steps, decimals);
}

/* The prompt of system s: its first C steps as LLMTIME text at the system's alpha. */
static char *prompt_text(const ls_dataset *ds, int s, int C, const ls_encoding *enc, double dataset_alpha,
                         double *alpha, size_t *len) {
    *alpha = ls_encoding_alpha(enc, ds, s, C, dataset_alpha);
    ls_llmtime code = {*alpha, enc->decimals};
    return ls_llmtime_encode(&code, ds->traj + (size_t)s * ds->steps * LS_LV_VARS, C, LS_LV_VARS, len);
}

int ls_forecast_longest_prompt(const ls_tokenizer *tok, const ls_dataset *ds, const int *systems, int n_systems,
                               int context_steps, const ls_encoding *enc, double dataset_alpha, int *longest) {
    *longest = 0;
    if (context_steps < 1 || context_steps > ds->steps)
        return ls_error("a prompt of %d steps, the data has %d", context_steps, ds->steps);
    for (int i = 0; i < n_systems; i++) {
        double alpha;
        size_t len;
        char *text = prompt_text(ds, systems[i], context_steps, enc, dataset_alpha, &alpha, &len);
        if (!text) return LS_ERR;
        long n = (long)len;
        if (tok) {
            ls_tokens t = {0};
            int rc = ls_tokenizer_encode(tok, text, len, &t);
            n = (long)t.n;
            ls_tokens_free(&t);
            if (rc != LS_OK) {
                free(text);
                return LS_ERR;
            }
        }
        free(text);
        if (n > *longest) *longest = n > 1 << 30 ? 1 << 30 : (int)n;
    }
    return LS_OK;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Per-step statistics of one system over its samples, then its errors and failed samples. */
static void score_system(ls_forecast *f, int s, float *vals) {
    int H = f->steps, K = f->samples;
    double se[LS_METRIC_COUNT] = {0}, ae[LS_METRIC_COUNT] = {0};
    int counted[LS_METRIC_COUNT] = {0};
    f->failed[s] = 0;
    for (int k = 0; k < K; k++) { /* a sample without a value at some step stopped short */
        const float *x = f->sample_values + ((size_t)s * K + k) * H * LS_LV_VARS;
        int short_of = 0;
        for (int j = 0; j < H * LS_LV_VARS; j++) short_of |= isnan(x[j]);
        f->failed[s] += short_of;
    }
    for (int h = 0; h < H; h++)
        for (int v = 0; v < LS_LV_VARS; v++) {
            int n = 0;
            double sum = 0, sq = 0;
            for (int k = 0; k < K; k++) {
                float x = f->sample_values[(((size_t)s * K + k) * H + h) * LS_LV_VARS + v];
                if (isnan(x)) continue;
                vals[n++] = x;
                sum += x;
            }
            size_t at = ((size_t)s * H + h) * LS_LV_VARS + v;
            if (n == 0) {
                f->mean[at] = f->median[at] = f->std[at] = NAN;
                continue;
            }
            double mean = sum / n;
            for (int i = 0; i < n; i++) sq += (vals[i] - mean) * (vals[i] - mean);
            qsort(vals, (size_t)n, sizeof(float), cmp_float);
            f->mean[at] = (float)mean;
            f->median[at] = n % 2 ? vals[n / 2] : 0.5f * (vals[n / 2 - 1] + vals[n / 2]);
            f->std[at] = (float)sqrt(sq / n);
            double err = mean - f->truth[at];
            se[v] += err * err, ae[v] += fabs(err), counted[v]++;
            se[LS_METRIC_BOTH] += err * err, ae[LS_METRIC_BOTH] += fabs(err), counted[LS_METRIC_BOTH]++;
        }
    for (int m = 0; m < LS_METRIC_COUNT; m++) {
        f->mse[(size_t)s * LS_METRIC_COUNT + m] = counted[m] ? se[m] / counted[m] : NAN;
        f->mae[(size_t)s * LS_METRIC_COUNT + m] = counted[m] ? ae[m] / counted[m] : NAN;
    }
}

void ls_forecast_score(ls_forecast *f) {
    float *vals = ls_malloc(sizeof(float) * (size_t)(f->samples > 0 ? f->samples : 1));
    f->failed_total = 0;
    for (int s = 0; s < f->n_systems; s++) {
        score_system(f, s, vals);
        f->failed_total += f->failed[s];
    }
    free(vals);
    for (int mi = 0; mi < LS_METRIC_COUNT; mi++) {
        double se = 0, ae = 0;
        int n = 0;
        for (int s = 0; s < f->n_systems; s++) {
            double e = f->mse[(size_t)s * LS_METRIC_COUNT + mi];
            if (isnan(e)) continue;
            se += e, ae += f->mae[(size_t)s * LS_METRIC_COUNT + mi], n++;
        }
        f->mse_mean[mi] = n ? se / n : NAN;
        f->mae_mean[mi] = n ? ae / n : NAN;
    }
}

int ls_forecast_run(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_tokenizer *tok,
                    const ls_dataset *ds, const int *systems, int n_systems, const ls_encoding *enc,
                    double dataset_alpha, const ls_forecast_options *o, ls_forecast_progress progress, void *ctx,
                    ls_forecast *out) {
    int H = o->forecast_steps, K = o->samples, C = o->context_steps;
    memset(out, 0, sizeof *out);
    if (C < 1 || H < 1 || C + H > ds->steps)
        return ls_error("forecasting %d steps from %d needs %d steps, the data has %d", H, C, C + H, ds->steps);
    if (K < 1) return ls_error("forecasting needs at least one sample");
    int max_new = ls_forecast_new_tokens(o->max_new_tokens, H, enc->decimals);
    ls_llmtime_grammar grammar;
    if (ls_grammar_init(&grammar, tok, LS_LV_VARS, enc->decimals) != LS_OK) return LS_ERR;
    double t_start = ls_now();

    out->n_systems = n_systems, out->steps = H, out->samples = K;
    size_t per = (size_t)H * LS_LV_VARS;
    out->system = ls_malloc(sizeof(int) * (size_t)n_systems);
    out->alpha = ls_malloc(sizeof(double) * (size_t)n_systems);
    out->truth = ls_malloc(sizeof(float) * per * n_systems);
    out->mean = ls_malloc(sizeof(float) * per * n_systems);
    out->median = ls_malloc(sizeof(float) * per * n_systems);
    out->std = ls_malloc(sizeof(float) * per * n_systems);
    out->sample_values = ls_malloc(sizeof(float) * per * K * n_systems);
    out->failed = ls_calloc((size_t)n_systems, sizeof(int));
    out->mse = ls_malloc(sizeof(double) * LS_METRIC_COUNT * n_systems);
    out->mae = ls_malloc(sizeof(double) * LS_METRIC_COUNT * n_systems);

    /* Prompts first, to plan the cache for the longest. */
    ls_tokens *prompts = ls_calloc((size_t)n_systems, sizeof(ls_tokens));
    int rc = LS_OK, longest = 1;
    for (int i = 0; rc == LS_OK && i < n_systems; i++) {
        int s = systems[i];
        out->system[i] = s;
        size_t len;
        char *text = prompt_text(ds, s, C, enc, dataset_alpha, &out->alpha[i], &len);
        rc = text ? ls_tokenizer_encode(tok, text, len, &prompts[i]) : LS_ERR;
        free(text);
        if ((int)prompts[i].n > longest) longest = (int)prompts[i].n;
        memcpy(out->truth + per * i, ds->traj + ((size_t)s * ds->steps + C) * LS_LV_VARS, sizeof(float) * per);
    }
    ls_kv_state kv = {0};
    if (rc == LS_OK && longest + max_new > m->cfg.max_positions)
        rc = ls_error("a prompt of %d tokens plus %d new ones exceeds the model's %d positions", longest, max_new,
                      m->cfg.max_positions);
    if (rc == LS_OK) rc = ls_kv_init(&kv, be, &m->cfg, lora, K, longest + max_new, longest < 256 ? longest : 256);
    int32_t stop_id = grammar.semicolon;
    for (int i = 0; rc == LS_OK && i < n_systems; i++) {
        ls_generation gen;
        rc = ls_generate(be, m, lora, &kv, prompts[i].ids, (int)prompts[i].n, K, max_new, &o->sampler,
                         o->grammar ? &grammar : NULL, stop_id, H, m->cfg.eos_id,
                         o->seed ^ (0xA24BAED4963EE407ull * (uint64_t)(systems[i] + 1)), &gen);
        if (rc != LS_OK) break;
        out->prompt_tokens += (long)prompts[i].n;
        ls_llmtime code = {out->alpha[i], enc->decimals};
        for (int k = 0; k < K; k++) {
            float *dst = out->sample_values + ((size_t)i * K + k) * per;
            for (size_t j = 0; j < per; j++) dst[j] = NAN;
            out->generated_tokens += gen.n[k];
            size_t len;
            char *text = ls_tokenizer_decode(tok, gen.ids + (size_t)k * max_new, (size_t)gen.n[k], &len);
            if (!text) continue; /* cannot happen for ids the model produced; no values: a failed sample */
            ls_llmtime_decoded d = ls_llmtime_decode(&code, text, len, LS_LV_VARS, H);
            if (d.steps > 0) memcpy(dst, d.values, sizeof(float) * (size_t)d.steps * LS_LV_VARS); /* none: NULL */
            ls_llmtime_decoded_free(&d);
            free(text);
        }
        ls_generation_free(&gen);
        if (progress) progress(ctx, i + 1, n_systems);
    }
    if (rc == LS_OK) ls_forecast_score(out);
    out->seconds = ls_now() - t_start;
    ls_kv_free(&kv, be);
    for (int i = 0; i < n_systems; i++) ls_tokens_free(&prompts[i]);
    free(prompts);
    if (rc != LS_OK) ls_forecast_free(out);
    return rc;
}

void ls_forecast_free(ls_forecast *f) {
    free(f->system);
    free(f->alpha);
    free(f->truth);
    free(f->mean);
    free(f->median);
    free(f->std);
    free(f->sample_values);
    free(f->failed);
    free(f->mse);
    free(f->mae);
    memset(f, 0, sizeof *f);
}
