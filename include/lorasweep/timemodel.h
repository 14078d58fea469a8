/*
 * timemodel.h: what a sweep's work costs in seconds, and how many runs of a time limit it needs.
 *
 * Every run of a trial or rung segment on a worker is measured (ls_segment_cost: its training
 * steps and the loop's time, its generated tokens and their time, the rest as overhead: loading,
 * data, setup) and journalled by rank 0, so the model outlives the job: every run of the same
 * sweep, requeued or resubmitted, rebuilds it from the journal. Only durations are kept, never an
 * absolute time, so the hours a job waited in the queue count for nothing.
 *
 * Costs are kept per key: the model, the step's shape (batch x context) and the device (a GPU,
 * or the CPU and its threads). A prediction is deliberately pessimistic, since work predicted to
 * fit must not be cut by the time limit: seconds per training token and per generated token
 * averaged over every measurement of the key, the largest overhead seen, times LS_TIME_SAFETY,
 * plus LS_TIME_SLACK_S. A key never measured predicts NaN: unknown.
 */
#ifndef LORASWEEP_TIMEMODEL_H
#define LORASWEEP_TIMEMODEL_H

#include <stddef.h>

#include "lorasweep/config.h"
#include "lorasweep/journal.h"

#define LS_TIME_SAFETY 1.3
#define LS_TIME_SLACK_S 2.0

typedef struct {
    char key[LS_JOURNAL_TEXT_MAX];
    double train_tokens, train_s;   /* sums over the runs that trained */
    double gen_tokens, gen_s;       /* sums over the runs that forecast */
    double gen_units;               /* sum of their systems x samples x forecast steps */
    double overhead_s;              /* the largest wall time outside training and forecast */
    int runs;
} ls_time_entry;

typedef struct {
    ls_time_entry *entries;
    int n, cap;
} ls_time_model;

/* The key of work on `model` at batch x ctx on `device` ("cuda", "cpu 16 threads", ...; a
 * data-parallel group adds its size). device NULL: the key prefix that matches every device. */
void ls_time_key(char *out, size_t cap, const char *model, int batch, int ctx, const char *device);
/* Add one measured run under key (runs with nothing measured add nothing). */
void ls_time_model_add(ls_time_model *m, const char *key, const ls_segment_cost *c);
/* Every cost record of a journal, in order. */
void ls_time_model_from_journal(ls_time_model *m, const ls_journal_state *st);
void ls_time_model_free(ls_time_model *m);

/* A piece of work to predict: `steps` optimiser steps of batch x ctx tokens, then (forecast_units
 * > 0) a forecast of systems x samples x forecast steps. */
typedef struct {
    int steps, batch, ctx;
    double forecast_units;
} ls_time_work;

/* The key of trial c's work (its model, batch x ctx) on device (NULL: the prefix of any device). */
void ls_time_key_of(char *out, size_t cap, const ls_trial_config *c, const char *device);
/* c's forecast in the time model's units: systems x samples x forecast steps (0: none). */
double ls_time_forecast_units(const ls_trial_config *c);
/* What is left of trial c from step `from` (its last checkpoint) to pause_step (0: its end, and
 * then its forecast). */
ls_time_work ls_time_work_left(const ls_trial_config *c, int from, int pause_step);

/* Predicted wall seconds of w under key (a prefix from ls_time_key with device NULL: the slowest
 * device measured); NaN when the key (or, for work that forecasts, its forecast) was never
 * measured. */
double ls_time_predict(const ls_time_model *m, const char *key, const ls_time_work *w);

/* How many runs of run_s seconds `workers` workers need for n pieces of work of seconds[i] each,
 * stage by stage (stage[i] nondecreasing: a stage starts when the one before has ended): each
 * worker, when free, takes the largest piece of its stage that fits the time left in the run, and
 * a run ends when nothing left fits. A piece longer than a whole run is, when splittable[i] (it
 * checkpoints on the way), ceil(seconds / run_s) pieces of at most a run each; otherwise it never
 * fits: -1, and *never is its index. Else the number of runs (0 for no work), and *last_s how
 * long the last one lasts. */
int ls_time_runs(const double *seconds, const int *stage, const unsigned char *splittable, size_t n, int workers,
                 double run_s, double *last_s, size_t *never);

#endif
