/*
 * timemodel.c: the seconds work costs, measured per model, shape and device (timemodel.h).
 */
#include "lorasweep/timemodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

void ls_time_key(char *out, size_t cap, const char *model, int batch, int ctx, const char *device) {
    snprintf(out, cap, "%s|%dx%d|%s", model ? model : "", batch, ctx, device ? device : "");
}

void ls_time_key_of(char *out, size_t cap, const ls_trial_config *c, const char *device) {
    ls_time_key(out, cap, c->resolved.model_path[0] ? c->resolved.model_path : c->model.path, c->train.batch_size,
                c->train.ctx, device);
}

double ls_time_forecast_units(const ls_trial_config *c) {
    return c->eval.systems > 0 ? (double)c->eval.systems * c->eval.samples * c->eval.forecast_steps : 0;
}

ls_time_work ls_time_work_left(const ls_trial_config *c, int from, int pause_step) {
    int to = pause_step > 0 ? pause_step : c->train.max_steps;
    ls_time_work w = {to > from ? to - from : 0, c->train.batch_size, c->train.ctx, 0};
    if (pause_step == 0) w.forecast_units = ls_time_forecast_units(c);
    return w;
}

static ls_time_entry *entry_of(ls_time_model *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].key, key)) return &m->entries[i];
    if (m->n == m->cap) m->entries = ls_realloc(m->entries, sizeof *m->entries * (size_t)(m->cap = 2 * m->cap + 8));
    ls_time_entry *e = &m->entries[m->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    return e;
}

void ls_time_model_add(ls_time_model *m, const char *key, const ls_segment_cost *c) {
    int trained = c->steps > 0 && c->batch > 0 && c->ctx > 0 && c->train_s > 0 && isfinite(c->train_s);
    int forecast = c->gen_tokens > 0 && c->gen_units > 0 && c->gen_s > 0 && isfinite(c->gen_s);
    if (!trained && !forecast) return;
    ls_time_entry *e = entry_of(m, key);
    if (trained) e->train_tokens += (double)c->steps * c->batch * c->ctx, e->train_s += c->train_s;
    if (forecast) e->gen_tokens += c->gen_tokens, e->gen_s += c->gen_s, e->gen_units += c->gen_units;
    double overhead = c->wall_s - (trained ? c->train_s : 0) - (forecast ? c->gen_s : 0);
    if (isfinite(overhead) && overhead > e->overhead_s) e->overhead_s = overhead;
    e->runs++;
}

void ls_time_model_from_journal(ls_time_model *m, const ls_journal_state *st) {
    for (int i = 0; i < st->n_costs; i++) ls_time_model_add(m, st->costs[i].key, &st->costs[i].cost);
}

void ls_time_model_free(ls_time_model *m) {
    free(m->entries);
    memset(m, 0, sizeof *m);
}

static double predict_entry(const ls_time_entry *e, const ls_time_work *w) {
    double s = e->overhead_s;
    if (w->steps > 0) {
        if (e->train_tokens <= 0) return NAN;
        s += e->train_s / e->train_tokens * (double)w->steps * w->batch * w->ctx;
    }
    if (w->forecast_units > 0) { /* tokens per unit and seconds per token, as measured */
        if (e->gen_units <= 0) return NAN;
        s += e->gen_s / e->gen_tokens * (e->gen_tokens / e->gen_units * w->forecast_units);
    }
    return LS_TIME_SAFETY * s + LS_TIME_SLACK_S;
}

double ls_time_predict(const ls_time_model *m, const char *key, const ls_time_work *w) {
    size_t len = strlen(key);
    int any_device = len > 0 && key[len - 1] == '|';
    double worst = NAN;
    for (int i = 0; i < m->n; i++) {
        const ls_time_entry *e = &m->entries[i];
        if (any_device ? strncmp(e->key, key, len) != 0 : strcmp(e->key, key) != 0) continue;
        double p = predict_entry(e, w);
        if (!any_device) return p;
        if (isfinite(p) && !(p <= worst)) worst = p;
    }
    return worst;
}

/* ---- runs of a time limit ------------------------------------------------------------------ */

typedef struct {
    double s;
    int stage;
} piece;

static int by_stage_then_size(const void *a, const void *b) {
    const piece *x = a, *y = b;
    if (x->stage != y->stage) return x->stage - y->stage;
    return (x->s < y->s) - (x->s > y->s);
}

int ls_time_runs(const double *seconds, const int *stage, const unsigned char *splittable, size_t n, int workers,
                 double run_s, double *last_s, size_t *never) {
    if (last_s) *last_s = 0;
    if (n == 0) return 0;
    if (workers < 1) workers = 1;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (seconds[i] > run_s && !(splittable && splittable[i])) {
            if (never) *never = i;
            return -1;
        }
        cap += seconds[i] > run_s ? (size_t)ceil(seconds[i] / run_s) : 1;
    }
    /* a piece longer than a run: whole runs of one worker and the rest (checkpoints on the way) */
    piece *p = ls_malloc(cap * sizeof *p);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double s = seconds[i];
        for (; s > run_s; s -= run_s) p[m++] = (piece){run_s, stage[i]};
        p[m++] = (piece){s, stage[i]};
    }
    qsort(p, m, sizeof *p, by_stage_then_size);
    unsigned char *taken = ls_calloc(m, 1);
    double *free_at = ls_calloc((size_t)workers, sizeof *free_at);
    size_t left = m, first = 0; /* first: the first piece of the stage running now */
    int runs = 1;
    double stage_end = 0;
    while (left > 0) {
        size_t end = first; /* this stage's pieces: [first, end) */
        while (end < m && p[end].stage == p[first].stage) end++;
        int placed = 0;
        for (;;) { /* the earliest free worker takes the largest piece that fits */
            int w = 0;
            for (int k = 1; k < workers; k++)
                if (free_at[k] < free_at[w]) w = k;
            if (free_at[w] >= run_s) break;
            size_t i = first;
            while (i < end && (taken[i] || free_at[w] + p[i].s > run_s)) i++;
            if (i == end) {
                free_at[w] = run_s; /* nothing of this stage fits it any more in this run */
                continue;
            }
            taken[i] = 1, left--, placed = 1;
            free_at[w] += p[i].s;
            if (free_at[w] > stage_end) stage_end = free_at[w];
        }
        int stage_done = 1;
        for (size_t i = first; i < end; i++) stage_done &= taken[i];
        if (stage_done) { /* the next stage waits for this one's last piece */
            first = end;
            for (int k = 0; k < workers; k++) free_at[k] = stage_end;
            if (left == 0) break;
            if (stage_end < run_s) continue;
        }
        if (!placed && stage_end == 0) break; /* cannot happen: every piece fits an empty run */
        runs++;
        stage_end = 0;
        for (int k = 0; k < workers; k++) free_at[k] = 0;
    }
    if (last_s) *last_s = stage_end;
    free(p), free(taken), free(free_at);
    return runs;
}
