/*
 * asha.c: the rules of early stopping (asha.h). Pure: the scheduler journals what these return.
 *
 * Decisions: a rung's ranking is recomputed on each question (a sort of the n_k units recorded
 * there) rather than kept incrementally: a stage has at most LS_GRID_MAX_TRIALS units and a
 * question is asked once per free worker, so simplicity wins; the order is total (value, NaN
 * last, then the unit number), so the answer never depends on the order of arrival.
 */
#include "lorasweep/asha.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

int ls_es_rungs(int min_steps, int eta, int max_steps, int *rungs, int cap) {
    int n = 0;
    if (max_steps < 1 || cap < 1) return 0;
    for (double r = min_steps; min_steps >= 1 && eta >= 2 && r < max_steps && n < cap - 1; r *= eta) rungs[n++] = (int)r;
    rungs[n++] = max_steps;
    return n;
}

size_t ls_es_asha_survivors(size_t n, int eta, int n_rungs) {
    for (int k = 0; k + 1 < n_rungs && eta >= 2; k++) n /= (size_t)eta;
    return n;
}

const char *ls_es_verdict_name(int verdict) {
    static const char *const names[] = {"unknown", "start", "arrived", "paused", "promoted", "continue", "cut", "stopped"};
    return verdict >= 1 && verdict <= LS_ES_VERDICT_MAX ? names[verdict] : names[0];
}

void ls_es_init(ls_es *e, size_t n_units, int n_rungs, int eta, int min_trials) {
    memset(e, 0, sizeof *e);
    e->eta = eta, e->min_trials = min_trials, e->n_rungs = n_rungs, e->n_units = n_units;
    size_t cells = n_units * (size_t)n_rungs;
    if (cells == 0) cells = 1;
    e->value = ls_calloc(cells, sizeof *e->value);
    e->recorded = ls_calloc(cells, 1);
    e->promoted = ls_calloc(cells, 1);
    e->count = ls_calloc(n_rungs > 0 ? (size_t)n_rungs : 1, sizeof *e->count);
}

void ls_es_free(ls_es *e) {
    free(e->value), free(e->recorded), free(e->promoted), free(e->count);
    memset(e, 0, sizeof *e);
}

int ls_es_record(ls_es *e, size_t unit, int rung, double value) {
    if (unit >= e->n_units || rung < 0 || rung >= e->n_rungs) return ls_error("no unit %zu at rung %d", unit, rung);
    size_t at = unit * (size_t)e->n_rungs + (size_t)rung;
    if (e->recorded[at]) return ls_error("unit %zu already has a value at rung %d", unit, rung);
    e->recorded[at] = 1, e->value[at] = value;
    e->count[rung]++;
    return LS_OK;
}

int ls_es_recorded(const ls_es *e, size_t unit, int rung) {
    return unit < e->n_units && rung >= 0 && rung < e->n_rungs && e->recorded[unit * (size_t)e->n_rungs + (size_t)rung];
}

typedef struct {
    double value;
    size_t unit;
} ranked;

/* Lowest value first, NaN last, ties to the lower unit. */
static int by_rank(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    int xn = isnan(x->value), yn = isnan(y->value);
    if (xn != yn) return xn - yn;
    if (!xn && x->value != y->value) return x->value < y->value ? -1 : 1;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

/* The units recorded at rung in rank order (malloc'ed), *n of them; `except` is left out. */
static ranked *rank_at(const ls_es *e, int rung, size_t except, size_t *n) {
    ranked *r = ls_malloc((e->count[rung] ? e->count[rung] : 1) * sizeof *r);
    *n = 0;
    for (size_t u = 0; u < e->n_units; u++) {
        size_t at = u * (size_t)e->n_rungs + (size_t)rung;
        if (e->recorded[at] && u != except) r[(*n)++] = (ranked){e->value[at], u};
    }
    qsort(r, *n, sizeof *r, by_rank);
    return r;
}

double ls_es_asha_cutoff(const ls_es *e, int rung, size_t *n) {
    size_t m;
    ranked *r = rank_at(e, rung, (size_t)-1, &m);
    size_t top = m / (size_t)e->eta;
    double cut = top ? r[top - 1].value : NAN;
    free(r);
    if (n) *n = m;
    return cut;
}

int ls_es_asha_next(const ls_es *e, size_t *unit, int *rung, double *cutoff, size_t *n) {
    for (int k = e->n_rungs - 2; k >= 0; k--) { /* the top rung promotes to nothing */
        size_t m;
        ranked *r = rank_at(e, k, (size_t)-1, &m);
        size_t top = m / (size_t)e->eta;
        for (size_t i = 0; i < top; i++) {
            if (isnan(r[i].value) || e->promoted[r[i].unit * (size_t)e->n_rungs + (size_t)k]) continue;
            *unit = r[i].unit, *rung = k, *cutoff = r[top - 1].value, *n = m;
            free(r);
            return 1;
        }
        free(r);
    }
    return 0;
}

void ls_es_promote(ls_es *e, size_t unit, int rung) {
    if (unit < e->n_units && rung >= 0 && rung < e->n_rungs) e->promoted[unit * (size_t)e->n_rungs + (size_t)rung] = 1;
}

ls_es_verdict ls_es_median(const ls_es *e, size_t unit, int rung, double value, double *cutoff, size_t *n) {
    size_t m;
    ranked *r = rank_at(e, rung, unit, &m);
    double med = NAN;
    if (m > 0) { /* NaN ranks last: as a middle value it is +infinity */
        double a = r[(m - 1) / 2].value, b = r[m / 2].value;
        a = isnan(a) ? INFINITY : a, b = isnan(b) ? INFINITY : b;
        med = a == b ? a : 0.5 * (a + b);
    }
    free(r);
    *cutoff = med, *n = m;
    if (m < (size_t)e->min_trials) return LS_ES_CONTINUE;
    return isnan(value) || value > med ? LS_ES_CUT : LS_ES_CONTINUE;
}
