/*
 * asha.h: the rules of early stopping, as pure functions of what was recorded at each rung: no
 * I/O, no clock, no randomness, so that the scheduler (sweep_run.c) can journal every decision
 * and a resumed sweep can rebuild the same state from the journal instead of recomputing it.
 *
 * A *unit* is what is judged: a configuration (the mean over its repeats, once every repeat has
 * reached the rung). Units are numbered 0..n-1; a lower number wins a tie.
 *
 *   ls_es e;
 *   ls_es_init(&e, n_configs, n_rungs, eta, min_trials);
 *   ls_es_record(&e, unit, rung, value);             // a unit reached a rung (paused there)
 *   if (ls_es_asha_next(&e, &u, &k, &cut, &n))       // a free worker: promote u from rung k
 *       ls_es_promote(&e, u, k);
 *   v = ls_es_median(&e, u, k, value, &cut, &n);    // median rule: continue or cut, then record
 *   ls_es_free(&e);
 *
 * ASHA, promotion form (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys
 * 2020, Algorithm 2): looking from the highest rung below the top down, the first unit that is
 * among the top floor(n_k / eta) of the n_k units recorded at rung k (lowest value first, ties to
 * the lower unit) and not yet promoted from k; a NaN is never promoted (it ranks last).
 *
 * Median rule: a unit whose value at a rung is worse than the median of the values recorded there
 * by at least min_trials other units is cut (a NaN is worse than anything; the median of an even
 * count is the mean of the middle two; a NaN among the others counts as +infinity).
 */
#ifndef LORASWEEP_ASHA_H
#define LORASWEEP_ASHA_H

#include <stddef.h>

enum { LS_ES_MAX_RUNGS = 40 }; /* min_steps >= 1, eta >= 2: 2^31 steps have at most 32 rungs */

/* The rungs: min_steps * eta^k (k = 0, 1, ...) while below max_steps, then max_steps itself (the
 * top). Writes at most cap of them and returns how many (>= 1 when max_steps >= 1). */
int ls_es_rungs(int min_steps, int eta, int max_steps, int *rungs, int cap);

/* How many of n units reach the top when every unit runs and each rung below the top keeps
 * floor(n_k / eta) of them (n_rungs - 1 halvings): 0 means all would be stopped below the top. */
size_t ls_es_asha_survivors(size_t n, int eta, int n_rungs);

/* What a decision says (the journal stores the code: never renumber). */
typedef enum {
    LS_ES_START = 1,    /* a unit starts at rung 0 (no promotable unit was there) */
    LS_ES_ARRIVED = 2,  /* one repeat of a unit reached the rung (the unit waits for the others) */
    LS_ES_PAUSED = 3,   /* asha: the unit's value at the rung is recorded; it waits for promotion */
    LS_ES_PROMOTED = 4, /* asha: promoted from the rung, it trains on to the next one */
    LS_ES_CONTINUE = 5, /* median: not worse than the median, trains on */
    LS_ES_CUT = 6,      /* median: worse than the median, stops at this rung */
    LS_ES_STOPPED = 7,  /* a trial ends at its rung: cut, or left paused when its stage ended */
    LS_ES_VERDICT_MAX = 7
} ls_es_verdict;
/* "start", "arrived", ...; "unknown" for other codes. */
const char *ls_es_verdict_name(int verdict);

typedef struct {
    int eta, min_trials, n_rungs;
    size_t n_units;
    double *value;           /* (n_units, n_rungs) */
    unsigned char *recorded; /* (n_units, n_rungs) */
    unsigned char *promoted; /* (n_units, n_rungs): promoted from that rung */
    size_t *count;           /* (n_rungs) units recorded at each rung */
} ls_es;

void ls_es_init(ls_es *e, size_t n_units, int n_rungs, int eta, int min_trials);
void ls_es_free(ls_es *e);

/* Record unit's value at rung. LS_ERR (nothing changes) for a unit or rung out of range, or a
 * rung the unit already has a value at. */
int ls_es_record(ls_es *e, size_t unit, int rung, double value);
/* Whether unit has a value at rung. */
int ls_es_recorded(const ls_es *e, size_t unit, int rung);

/* ASHA: the promotion a free worker takes, if any: 1 with the unit, the rung it is promoted from,
 * the cutoff there (the value of the last unit of the top floor(n_k / eta)) and n_k; 0 when no
 * unit is promotable. Rungs below the top only. */
int ls_es_asha_next(const ls_es *e, size_t *unit, int *rung, double *cutoff, size_t *n);
/* ASHA's cutoff at a rung now (NaN when floor(n_k / eta) is 0), and n_k. */
double ls_es_asha_cutoff(const ls_es *e, int rung, size_t *n);
/* Mark unit as promoted from rung. */
void ls_es_promote(ls_es *e, size_t unit, int rung);

/* Median rule: judge unit's value at rung against the values recorded there by the other units
 * (call it before recording this one): LS_ES_CUT or LS_ES_CONTINUE, with the median of the others
 * (NaN when there are none) and how many there are. */
ls_es_verdict ls_es_median(const ls_es *e, size_t unit, int rung, double value, double *cutoff, size_t *n);

#endif
