/*
 * sweep_run.c: `lorasweep sweep run`: a whole sweep over MPI, stage by stage.
 *
 * Rank 0 loads the grid, opens the journal (the truth about which trials are done; it also holds
 * the lock that keeps a second sweep off the same results) and, with every rank, the parallel
 * HDF5 results file. Per stage: rank 0 expands the trials (a later stage from the winner of an
 * earlier one, by the journal's metrics), every rank adds them to the results file, rank 0 hands
 * out those not yet done (interrupted ones resume from their checkpoints), largest estimated
 * FLOPS first and within the budget; each worker runs its trial, writes its rows, and reports.
 * A trial counts as done only once rank 0 has journalled it, after the worker's rows are written.
 * A stage with early_stopping hands out rung segments instead (es_stage below): trials pause at
 * rungs, and ASHA or the median rule decides which go on, each decision journalled first.
 *
 * Exit status: 0 every trial done (or skipped with a reason), 1 some failed, 3 stopped on a
 * signal or the wall-clock limit with everything checkpointed (run again to continue).
 */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lorasweep/asha.h"
#include "lorasweep/check.h"
#include "lorasweep/common.h"
#include "lorasweep/fault.h"
#include "lorasweep/grid.h"
#include "lorasweep/journal.h"
#include "lorasweep/results.h"
#include "lorasweep/sweep.h"
#include "lorasweep/timemodel.h"
#include "lorasweep/train.h"
#include "lorasweep/trial.h"

static volatile sig_atomic_t signalled;
static void on_signal(int sig) { signalled = sig; }
static int local_stop(void) { return signalled != 0; }

/* ---- rank 0's view of the sweep ---------------------------------------------------------- */

typedef struct {
    const ls_sweep_run_options *opt;
    ls_journal *journal;
    ls_results *results;
    double t_start, deadline;  /* deadline: wall-clock stop (0 = none) */
    int running, total;        /* total: distinct trials of the stages so far (stages may share) */
    int finished_now, workers; /* trials finished by this job; worker ranks */
    double best;               /* best final validation loss so far */
    uint64_t best_id;
    int tty;
    double last_line;
    int io_error;              /* the journal could not be written: stop */
    char machine[600];         /* the first fault of the machine (a full disk): stop, exit 4 */
    char hung[400];            /* a worker that stopped answering: stop, exit 5 */
    struct es_stage *es;       /* the running stage's early stopping, or NULL */
    struct plain_stage *plain; /* the running stage's trials when it has no early stopping */
    const ls_grid_trial *trials; /* the running stage's trials (items index them) */
    int ranks_per_trial;
    /* the time limit (see "the time limit" below) */
    ls_time_model tm;          /* seconds per token per model, shape and device, from the journal */
    double run_s;              /* the length of one run: what the deadline allows from its start */
    char (*device)[64];        /* each worker rank's device, as the time model names it */
    char last_device[64];      /* the last asking worker's: the progress line's predictions */
    double *since, *need;      /* each worker rank's start of its work, and its prediction */
    int time_short;            /* work was left for the next run: it did not fit */
} scheduler;

static void es_result(struct es_stage *e, const ls_sweep_item *item, const ls_trial_summary *r);

/* A fault of the machine, not of a trial: the first one is kept (said at the end) and the sweep
 * stops: running trials checkpoint, nothing is recorded as failed, no later stage starts. */
static void machine_fault(scheduler *s, const char *message) {
    if (!s->machine[0]) snprintf(s->machine, sizeof s->machine, "%s", message);
    s->io_error = 1;
}

/* ---- the time limit (rank 0) ---------------------------------------------------------------
 *
 * With a deadline (--walltime, or the Slurm job's end less --stop-margin) a free worker is given
 * only work that the time model (timemodel.h, every run ever measured, from the journal) says
 * reaches its end before it: a rung's checkpoint, or the trial's end and its forecast. Largest
 * first, the first that fits. Work of a shape never measured on such a device starts (its run
 * measures it; the deadline may cut it, and its stop checkpoints it), so once one run of a shape
 * has been measured no later one of that shape is cut. Work longer than a whole run can only end
 * across runs: it starts when its next periodic checkpoint fits. A worker that nothing fits is
 * released (time only shrinks); when nothing runs any more the sweep exits 3 with everything
 * checkpointed, and the next run (the batch script requeues) goes on where this one stopped. */

static void worker_device(const ls_sweep_worker_info *w, int ranks_per_trial, char *out, size_t cap) {
    if (w->device >= 0) snprintf(out, cap, "gpu");
    else snprintf(out, cap, "cpu %d thread%s", w->threads, w->threads == 1 ? "" : "s");
    if (ranks_per_trial > 1) snprintf(out + strlen(out), cap - strlen(out), " x%d ranks", ranks_per_trial);
}

/* What is left of a trial up to pause_step (0: its end and forecast), from its last checkpoint. */
static ls_time_work work_left(const scheduler *s, const ls_trial_config *c, uint64_t id, int pause_step) {
    const ls_journal_trial *jt = ls_journal_find(ls_journal_current(s->journal), id);
    return ls_time_work_left(c, jt ? jt->checkpoint_step : 0, pause_step);
}

/* Predicted seconds of work w of trial c on this device (NaN: never measured). */
static double time_predict(const scheduler *s, const ls_trial_config *c, const char *device, const ls_time_work *w) {
    char key[LS_JOURNAL_TEXT_MAX];
    ls_time_key_of(key, sizeof key, c, device);
    return ls_time_predict(&s->tm, key, w);
}

static double time_need(const scheduler *s, const ls_trial_config *c, uint64_t id, int pause_step, const char *device) {
    ls_time_work w = work_left(s, c, id, pause_step);
    return time_predict(s, c, device, &w);
}

/* May this work start now on worker w? Always without a deadline. */
static int time_allows(scheduler *s, const ls_trial_config *c, uint64_t id, int pause_step,
                       const ls_sweep_worker_info *w) {
    char device[64];
    worker_device(w, s->ranks_per_trial, device, sizeof device);
    snprintf(s->last_device, sizeof s->last_device, "%s", device);
    if (s->deadline <= 0) return 1;
    double left = s->deadline - ls_now();
    if (left <= 0) return 0;
    ls_time_work work = work_left(s, c, id, pause_step);
    double need = time_predict(s, c, device, &work);
    if (isnan(need) || need <= left) return 1;
    if (need <= s->run_s) return 0;
    /* longer than any run: it ends across runs, checkpoint by checkpoint */
    int every = c->train.checkpoint_every > 0 ? c->train.checkpoint_every : 1;
    if (work.steps > every) work.steps = every;
    work.forecast_units = 0;
    double part = time_predict(s, c, device, &work);
    return isfinite(part) && part <= left;
}

static void status_line(scheduler *s, const char *event);

/* Work that does not fit waits for the next run: said once per stage. */
static void time_short(scheduler *s, uint64_t id, const ls_trial_config *c, int pause_step) {
    if (s->time_short++) return;
    char event[400];
    snprintf(event, sizeof event, "time limit: trial %016" PRIx64 " needs about %.0fs to its %s, %.0fs are left: what "
             "does not fit waits for the next run", id, time_need(s, c, id, pause_step, s->last_device),
             pause_step > 0 ? "next rung" : "end", s->deadline - ls_now());
    status_line(s, event);
}

/* The scheduling ended with work left that did not fit: the run stops as at the deadline (exit 3,
 * everything checkpointed), early rather than idle. Returns 1 (stopped). */
static int time_stop(scheduler *s) {
    char event[200];
    snprintf(event, sizeof event, "time limit: nothing left fits in the %.0fs this run has left: stopping (everything "
             "is checkpointed; the next run goes on)", s->deadline - ls_now());
    status_line(s, event);
    return 1;
}

/* This run's deadline (rank 0): --walltime from its start, else the Slurm job's end
 * (SLURM_JOB_END_TIME, unix seconds, which Slurm sets for the job) less --stop-margin; and how
 * long one run is (SLURM_JOB_START_TIME to the end), for work longer than any run. */
static void set_deadline(scheduler *s, const ls_sweep_run_options *opt) {
    char event[300];
    if (opt->walltime_s > 0) {
        s->deadline = s->t_start + opt->walltime_s, s->run_s = opt->walltime_s;
        snprintf(event, sizeof event, "time limit: %.0fs (--walltime): only work the time model says ends before it "
                 "starts", opt->walltime_s);
        status_line(s, event);
        return;
    }
    const char *end_text = getenv("SLURM_JOB_END_TIME"), *start_text = getenv("SLURM_JOB_START_TIME");
    if (!end_text || !*end_text) return;
    char *tail;
    long long end = strtoll(end_text, &tail, 10), start = start_text ? strtoll(start_text, NULL, 10) : 0;
    if (*tail || end <= 0) {
        fprintf(stderr, "lorasweep: warning: SLURM_JOB_END_TIME '%s' is not a unix time: no time limit is known "
                        "(give --walltime)\n", end_text);
        return;
    }
    double left = (double)end - (double)time(NULL) - opt->stop_margin_s;
    s->run_s = start > 0 && end > start ? (double)(end - start) - opt->stop_margin_s : left;
    s->deadline = s->t_start + fmax(left, 0); /* none left: nothing starts */
    snprintf(event, sizeof event, "time limit: the Slurm job ends in %.0fs; work stops %.0fs before it (--stop-margin)",
             left + opt->stop_margin_s, opt->stop_margin_s);
    status_line(s, event);
}

/* A run's measurement: journalled (the next runs' model too), then learnt. */
static void record_cost(scheduler *s, const ls_sweep_item *item, int worker, const ls_segment_cost *c) {
    if (!s->trials || !s->device || c->wall_s <= 0) return;
    char key[LS_JOURNAL_TEXT_MAX];
    ls_time_key_of(key, sizeof key, &s->trials[item->index].config, s->device[worker]);
    if (ls_journal_trial_cost(s->journal, item->id, key, c) != LS_OK) {
        machine_fault(s, ls_last_error());
        return;
    }
    ls_time_model_add(&s->tm, key, c);
}

static double expected_left_s(const scheduler *s, int *lower_bound);

static void status_line(scheduler *s, const char *event) {
    if (s->opt->quiet) return;
    double now = ls_now(), elapsed = now - s->t_start;
    /* a heartbeat's refresh: only a terminal's line, at most twice a second (before the counts
     * and the time model's ETA, which walk the stage) */
    if (!event && (!s->tty || now - s->last_line < 0.5)) return;
    const ls_journal_state *js = ls_journal_current(s->journal); /* the counts, as the journal has them */
    int done = ls_journal_count(js, LS_RESULT_DONE), failed = ls_journal_count(js, LS_RESULT_FAILED),
        skipped = ls_journal_count(js, LS_RESULT_SKIPPED);
    int left = s->total - done - failed - skipped - ls_journal_count(js, LS_RESULT_STOPPED) - s->running;
    char eta[64] = "ETA ?";
    int lower = 0;
    double model = expected_left_s(s, &lower);
    if (isfinite(model)) { /* the time model's: the work of this stage left, spread over the workers */
        time_t finish = time(NULL) + (time_t)model;
        struct tm at;
        localtime_r(&finish, &at);
        snprintf(eta, sizeof eta, "finish %s%02d:%02d | ETA %.0fs", lower ? "after " : "~", at.tm_hour, at.tm_min,
                 model);
    } else if (s->finished_now > 0) { /* worker-seconds per trial so far, spread over the workers */
        double per_trial = elapsed * s->workers / s->finished_now;
        snprintf(eta, sizeof eta, "ETA %.0fs", per_trial * (left + 0.5 * s->running) / s->workers);
    }
    char best[64] = "-";
    if (s->best_id) snprintf(best, sizeof best, "%.4f (%016" PRIx64 ")", s->best, s->best_id);
    if (!event) {
        fprintf(stderr, "\r\033[Kdone %d  running %d  failed %d  skipped %d  left %d | best val %s | %.0fs, %s",
                done, s->running, failed, skipped, left, best, elapsed, eta);
    } else if (s->total == 0) { /* an event before the first stage: no counts yet */
        fprintf(stderr, "%s[%.0fs] %s\n", s->tty ? "\r\033[K" : "", elapsed, event);
    } else {
        fprintf(stderr, "%s[%.0fs] %s | done %d running %d failed %d skipped %d left %d | best val %s | %s\n",
                s->tty ? "\r\033[K" : "", elapsed, event, done, s->running, failed, skipped, left, best, eta);
    }
    s->last_line = now;
}

static void on_start(void *user, const ls_sweep_item *item, int worker, const ls_sweep_worker_info *w) {
    scheduler *s = user;
    const ls_journal_trial *jt = ls_journal_find(ls_journal_current(s->journal), item->id);
    int attempt = jt ? jt->attempts + 1 : 1;
    if (ls_journal_trial_start(s->journal, item->id, attempt, worker, w->host, w->device) != LS_OK)
        machine_fault(s, ls_last_error());
    ls_fault("trial_start"); /* tests: a crash with the start journalled, the trial not begun */
    s->running++;
    if (s->device && s->trials) { /* the time model: this worker's device, and what it expects */
        worker_device(w, s->ranks_per_trial, s->device[worker], sizeof s->device[worker]);
        s->since[worker] = ls_now();
        s->need[worker] = time_need(s, &s->trials[item->index].config, item->id, item->pause_step, s->device[worker]);
    }
    char event[256], where[96], again[32] = "";
    if (w->device >= 0) snprintf(where, sizeof where, "GPU %d", w->device);
    else snprintf(where, sizeof where, "%d thread%s", w->threads, w->threads == 1 ? "" : "s");
    if (s->es && item->pause_step > 0) snprintf(again, sizeof again, ", to step %d", item->pause_step);
    else if (s->es) snprintf(again, sizeof again, ", to the end"); /* a rung segment is not a new attempt */
    else if (attempt > 1) snprintf(again, sizeof again, ", attempt %d", attempt);
    snprintf(event, sizeof event, "trial %016" PRIx64 " started on rank %d (%s, %s%s)", item->id, worker, w->host, where,
             again);
    status_line(s, event);
}

static void on_heartbeat(void *user, const ls_sweep_item *item, int worker, const ls_trial_heartbeat *hb) {
    scheduler *s = user;
    if (!isnan(hb->val_loss) && ls_journal_trial_progress(s->journal, item->id, hb->step, hb->loss, hb->val_loss) != LS_OK)
        machine_fault(s, ls_last_error());
    status_line(s, NULL);
}

static void on_result(void *user, const ls_sweep_item *item, int worker, const ls_trial_summary *r) {
    scheduler *s = user;
    s->running--;
    if (r->status == LS_TRIAL_DONE || r->status == LS_TRIAL_FAILED) s->finished_now++;
    if (r->status == LS_TRIAL_DONE || r->status == LS_TRIAL_PAUSED || r->status == LS_TRIAL_INTERRUPTED)
        record_cost(s, item, worker, &r->cost);
    if (s->need) s->need[worker] = NAN, s->since[worker] = 0;
    char event[700];
    int rc = LS_OK;
    if (r->status == LS_TRIAL_DONE) {
        const ls_result_metrics *m = &r->metrics;
        rc = ls_journal_trial_done(s->journal, item->id, m);
        if (isfinite(m->final_val_loss) && (!s->best_id || m->final_val_loss < s->best))
            s->best = m->final_val_loss, s->best_id = item->id;
        snprintf(event, sizeof event, "trial %016" PRIx64 " done: val %.4f, MSE %.4g, %.0fs", item->id,
                 m->final_val_loss, m->mse[LS_METRIC_BOTH], m->wall_seconds);
    } else if (r->status == LS_TRIAL_FAILED) {
        rc = ls_journal_trial_failed(s->journal, item->id, r->message);
        snprintf(event, sizeof event, "trial %016" PRIx64 " FAILED: %s (sweep run --retry-failed runs it again)", item->id,
                 r->message);
    } else if (r->status == LS_TRIAL_MACHINE) { /* not failed: it resumes from its checkpoint */
        machine_fault(s, r->message);
        ls_journal_trial_checkpoint(s->journal, item->id, r->metrics.steps); /* a stop, not a crash (if it can) */
        snprintf(event, sizeof event, "trial %016" PRIx64 " stopped by the machine: %s", item->id, r->message);
    } else if (r->status == LS_TRIAL_PAUSED) { /* at a rung: the decision follows (es_result) */
        rc = ls_journal_trial_checkpoint(s->journal, item->id, r->metrics.steps);
        snprintf(event, sizeof event, "trial %016" PRIx64 " reached step %d: val %.4f", item->id, r->metrics.steps,
                 r->metrics.final_val_loss);
    } else {
        rc = ls_journal_trial_checkpoint(s->journal, item->id, r->metrics.steps);
        snprintf(event, sizeof event, "trial %016" PRIx64 " stopped at step %d (checkpointed)", item->id, r->metrics.steps);
    }
    if (rc != LS_OK) machine_fault(s, ls_last_error());
    if (r->status == LS_TRIAL_DONE) ls_fault("trial_done"); /* tests: a crash just after a trial counts */
    status_line(s, event);
    if (s->es && rc == LS_OK) es_result(s->es, item, r);
}

/* A worker that went silent: nothing it holds can be checkpointed; the others are (sweep.c). */
static void on_hung(void *user, const ls_sweep_item *item, int worker, const char *host, double silent_s) {
    scheduler *s = user;
    s->running--;
    snprintf(s->hung, sizeof s->hung,
             "rank %d on %s sent nothing for %.0f s while running trial %016" PRIx64 " (stopped, swapped out or "
             "deadlocked?)", worker, host[0] ? host : "?", silent_s, item->id);
    char event[700];
    snprintf(event, sizeof event, "HUNG: %s", s->hung);
    status_line(s, event);
}

static int should_stop(void *user) {
    scheduler *s = user;
    if (s->deadline > 0 && ls_now() > s->deadline && !signalled) signalled = SIGALRM;
    return signalled != 0 || s->io_error;
}

/* ---- the trials of a stage --------------------------------------------------------------- */

/* What a worker gets: the trial's YAML with absolute paths (it may run in another directory). */
static char *worker_payload(const ls_trial_config *c) {
    ls_trial_config abs;
    ls_config_copy(&abs, c);
    char **fields[3] = {&abs.model.path, &abs.data.path, &abs.model.tokenizer};
    const char *resolved[3] = {c->resolved.model_path, c->resolved.data_path, c->resolved.tokenizer};
    for (int f = 0; f < 3; f++) /* the YAML writer quotes them; "" (no tokenizer given) stays "" */
        if (resolved[f][0]) free(*fields[f]), *fields[f] = ls_strdup(resolved[f]);
    char *yaml = ls_config_to_yaml(&abs);
    ls_config_free(&abs);
    return yaml;
}

/* Every rank adds the stage's trials to the results file: rank 0 broadcasts their YAML, and the
 * validations early stopping adds at its rungs (extra_evals: rung steps that eval_every may miss),
 * so that every row has room for its curve. */
static int add_stage_trials(ls_results *res, int stage, ls_grid_trial *trials, int n, int extra_evals) {
    ls_sweep_broadcast_int(&n);
    ls_sweep_broadcast_int(&extra_evals);
    ls_results_trial_spec *specs = ls_calloc((size_t)(n > 0 ? n : 1), sizeof *specs);
    ls_trial_config *cfgs = ls_calloc((size_t)(n > 0 ? n : 1), sizeof *cfgs);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char *yaml = trials ? ls_config_to_yaml(&trials[i].config) : NULL;
        char *got = ls_sweep_broadcast_string(yaml);
        if (ls_config_load_string(got, strlen(got), "trial", &cfgs[i]) != LS_OK) bad = 1, ls_config_defaults(&cfgs[i]);
        ls_results_spec_from_config(&cfgs[i], stage, &specs[i]);
        specs[i].max_evals += extra_evals;
        if (trials) specs[i].id = trials[i].id; /* same value: the YAML round-trips exactly */
        free(yaml);
        if (got != yaml) free(got);
    }
    int rc = ls_results_add_trials(res, specs, n);
    for (int i = 0; i < n; i++) {
        free((char *)specs[i].config_yaml);
        ls_config_free(&cfgs[i]);
    }
    free(specs);
    free(cfgs);
    return bad ? ls_error("a trial's configuration did not reach every rank intact") : rc;
}

/* ---- workers ------------------------------------------------------------------------------ */

/* Worker: the trial runner, writing the trial's rows into the results file before reporting. */
typedef struct {
    ls_sweep_worker_options opt;
    ls_results *results;
} worker_state;

/* Rows written as the trial advances: the training losses since the last write and the
 * validation points so far go to the results file at every validation, so an interrupted sweep
 * keeps its curves; then the heartbeat goes on to rank 0. */
typedef struct {
    worker_state *w;
    uint64_t id;
    void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb);
    int (*should_stop)(void *ctx);
    void *ctx; /* the protocol's context of both */
    int first_step, n_loss, cap_loss, n_evals, cap_evals;
    float *loss, *val_loss;
    int *val_step;
} row_writer;

static void record_heartbeat(void *ctx, const ls_trial_heartbeat *hb) {
    row_writer *rw = ctx;
    if (hb->step > 0) {
        if (rw->n_loss == 0) rw->first_step = hb->step;
        if (rw->n_loss == rw->cap_loss) rw->loss = ls_realloc(rw->loss, sizeof(float) * (size_t)(rw->cap_loss = 2 * rw->cap_loss + 64));
        rw->loss[rw->n_loss++] = (float)hb->loss;
    }
    if (!isnan(hb->val_loss)) {
        if (rw->n_evals == rw->cap_evals) {
            rw->cap_evals = 2 * rw->cap_evals + 16;
            rw->val_loss = ls_realloc(rw->val_loss, sizeof(float) * (size_t)rw->cap_evals);
            rw->val_step = ls_realloc(rw->val_step, sizeof(int) * (size_t)rw->cap_evals);
        }
        rw->val_step[rw->n_evals] = hb->step;
        rw->val_loss[rw->n_evals++] = (float)hb->val_loss;
        /* best effort: the trial's final write (ls_results_write_trial) is what counts. A resumed
         * run's points are not the whole curve (its earlier points are in the file already and
         * would be overwritten from slot 0): the end of the run writes its whole curve instead. */
        if (rw->n_loss) ls_results_write_train_loss(rw->w->results, rw->id, rw->first_step, rw->n_loss, rw->loss);
        if (rw->first_step <= 1) ls_results_write_evals(rw->w->results, rw->id, rw->n_evals, rw->val_step, rw->val_loss);
        rw->n_loss = 0;
    }
    rw->heartbeat(rw->ctx, hb);
}

static int record_should_stop(void *ctx) {
    row_writer *rw = ctx;
    return rw->should_stop(rw->ctx);
}

static int run_and_record(void *user, const ls_sweep_item *item, const ls_train_group *group,
                          void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb), int (*should_stop_fn)(void *ctx),
                          void *ctx, ls_trial_summary *out) {
    worker_state *w = user;
    ls_trial_result res = {0};
    row_writer rw = {.w = w, .id = item->id, .heartbeat = heartbeat, .should_stop = should_stop_fn, .ctx = ctx};
    int rc = ls_sweep_run_trial_keep(&w->opt, item, group, record_heartbeat, record_should_stop, &rw, out, &res);
    free(rw.loss), free(rw.val_loss), free(rw.val_step);
    int leader = !group || group->rank == 0; /* a group's rows are written once, by its leader */
    if (rc == LS_OK && leader && (out->status == LS_TRIAL_DONE || out->status == LS_TRIAL_FAILED)) {
        ls_result_status st = out->status == LS_TRIAL_DONE ? LS_RESULT_DONE : LS_RESULT_FAILED;
        int wrote = out->status == LS_TRIAL_DONE ? ls_results_write_trial(w->results, &res, st, NULL)
                                                  : ls_results_write_status(w->results, item->id, st, out->message);
        if (wrote != LS_OK) { /* not durable, so not done; and the results file's fault, not the trial's */
            out->status = LS_TRIAL_MACHINE;
            snprintf(out->message, sizeof out->message, "%s", ls_last_error());
        }
        ls_fault("trial_written"); /* tests: a crash with the rows written and the journal not yet told */
    } else if (rc == LS_OK && leader && (out->status == LS_TRIAL_PAUSED || out->status == LS_TRIAL_INTERRUPTED) &&
               res.train.step > 0) {
        /* a paused or stopped run: the whole curve so far, earlier runs' points included (the trial's
         * state has them from its checkpoint); a trial stopped early keeps this as its curve */
        if (ls_results_write_train_loss(w->results, item->id, 1, res.train.step, res.train.train_loss) != LS_OK ||
            ls_results_write_evals(w->results, item->id, res.train.n_evals, res.train.eval_step, res.train.val_loss) != LS_OK) {
            out->status = LS_TRIAL_MACHINE;
            snprintf(out->message, sizeof out->message, "%s", ls_last_error());
        }
    }
    ls_trial_result_free(&res);
    return LS_OK;
}

/* Is `id` a trial of a stage before `stage`? (Stages may share trials: one runs once.) */
static int seen_in_earlier_stage(ls_grid_trial *const *stage_trials, const size_t *stage_n, int stage, uint64_t id) {
    for (int e = 0; e < stage; e++)
        for (size_t k = 0; k < stage_n[e]; k++)
            if (stage_trials[e][k].id == id) return 1;
    return 0;
}

/* Trials of a stage that did not end: neither done, failed by their own fault, nor skipped. */
static int stage_unfinished(const ls_journal_state *js, const ls_grid_trial *trials, size_t n) {
    int left = 0;
    for (size_t i = 0; i < n; i++) {
        ls_result_status st = ls_journal_status(js, trials[i].id);
        left += st != LS_RESULT_DONE && st != LS_RESULT_FAILED && st != LS_RESULT_SKIPPED && st != LS_RESULT_STOPPED;
    }
    return left;
}

/* ---- a stage without early stopping (rank 0) ------------------------------------------------
 * Its trials, largest estimate first; a free worker takes the first one the time limit lets start. */
typedef struct plain_stage {
    ls_sweep_item *items;
    int n;
    unsigned char *taken;
} plain_stage;

static int plain_next(void *user, const ls_sweep_worker_info *w, ls_sweep_item *item) {
    scheduler *s = user;
    plain_stage *p = s->plain;
    int first_left = -1;
    for (int k = 0; k < p->n; k++) {
        if (p->taken[k]) continue;
        const ls_trial_config *c = &s->trials[p->items[k].index].config;
        if (first_left < 0) first_left = k;
        if (!time_allows(s, c, p->items[k].id, 0, w)) continue;
        p->taken[k] = 1;
        *item = p->items[k];
        return 1;
    }
    if (first_left >= 0) time_short(s, p->items[first_left].id, &s->trials[p->items[first_left].index].config, 0);
    return -1;
}

static int plain_left(const plain_stage *p) {
    int left = 0;
    for (int k = 0; k < p->n; k++) left += !p->taken[k];
    return left;
}

/* ---- early stopping (rank 0) ----------------------------------------------------------------
 *
 * A stage with early_stopping hands out rung segments instead of whole trials: a trial trains to
 * its next rung (ls_sweep_item.pause_step), is validated and checkpointed there, and comes back
 * paused; the unit judged is a configuration (its repeats' mean, once all of them reached the
 * rung). A free worker takes, in this order: a segment already due (the other repeats of a
 * configuration just promoted, or one a killed job left unfinished), a promotion (asha), the next
 * configuration of the budget plan at rung 0; else it waits while trials run.
 *
 * Every decision is journalled before it acts (start, arrived, paused, promoted, continue, cut,
 * stopped: asha.h), with the value as an exact double, the cutoff and the count at the rung. A
 * resumed stage rebuilds its state by replaying those records in order and never recomputes one:
 * with asynchronous workers the order of arrival can be replayed but not reproduced. What the
 * records say was due and did not finish is handed out first, in the order it was decided. */
typedef struct es_stage {
    scheduler *s;
    const ls_grid_early_stopping *rule;
    const ls_grid_trial *trials;
    size_t n_trials, n_units, K;       /* units: configurations of K repeats, trials u*K .. u*K+K-1 */
    int rungs[LS_ES_MAX_RUNGS], n_rungs;
    ls_es es;
    ls_sweep_item *items;              /* (n_trials) payload NULL: not to run (settled or skipped) */
    unsigned char *arrived;            /* (n_trials, n_rungs) the trial's value at the rung is known */
    double *value;                     /* (n_trials, n_rungs) */
    double *flops;                     /* (n_trials) what it spent up to the last rung it reached */
    int *target;                       /* (n_units) the rung it trains toward; -1: not training */
    unsigned char *started, *dead;     /* (n_units) */
    unsigned char *retry;              /* (n_trials) failed before, run again (--retry-failed) */
    size_t *order, n_order, next_order; /* units to start, in the budget plan's order */
    size_t *queue, q_head, q_n, q_cap; /* trials whose segment is due (FIFO; each at most once) */
} es_stage;

static uint64_t es_unit_id(const es_stage *e, size_t u) { return e->trials[u * e->K].id; }

/* Whether trial t has ended for this run: done, stopped, failed (unless retried and not failed
 * again), or skipped by a budget plan that still skips it. */
static int es_terminal(const es_stage *e, size_t t) {
    ls_result_status st = ls_journal_status(ls_journal_current(e->s->journal), e->trials[t].id);
    return st == LS_RESULT_DONE || st == LS_RESULT_STOPPED || (st == LS_RESULT_FAILED && !e->retry[t]) ||
           (st == LS_RESULT_SKIPPED && !e->items[t].payload);
}

/* Journal one decision; a record that cannot be written stops the sweep (the decision is not taken). */
static int es_journal(es_stage *e, uint64_t id, ls_es_verdict v, int rung, double value, double cutoff, size_t n,
                      double flops) {
    ls_journal_decision d = {id, v, rung, e->rungs[rung], (int)n, value, cutoff, flops};
    if (ls_journal_trial_decision(e->s->journal, &d) != LS_OK) {
        machine_fault(e->s, ls_last_error());
        return LS_ERR;
    }
    if (v != LS_ES_ARRIVED && v != LS_ES_START) {
        char event[300];
        snprintf(event, sizeof event, "trial %016" PRIx64 " %s at rung %d (step %d): val %.4f, cutoff %.4f of %zu",
                 id, ls_es_verdict_name(v), rung, e->rungs[rung], value, cutoff, n);
        status_line(e->s, event);
    }
    ls_fault("es_decision"); /* tests: a crash just after a decision is durable */
    return LS_OK;
}

/* Queue the unit's trials that have not reached its target rung yet. */
static void es_queue_unit(es_stage *e, size_t u) {
    for (size_t t = u * e->K; t < (u + 1) * e->K; t++)
        if (e->items[t].payload && !es_terminal(e, t) && !e->arrived[t * (size_t)e->n_rungs + (size_t)e->target[u]])
            e->queue[(e->q_head + e->q_n++) % e->q_cap] = t;
}

/* A trial ends at the highest rung it reached: journalled, and its row says so. */
static void es_stop_trial(es_stage *e, size_t t, int k, double cutoff, size_t n) {
    double v = e->value[t * (size_t)e->n_rungs + (size_t)k];
    if (es_journal(e, e->trials[t].id, LS_ES_STOPPED, k, v, cutoff, n, e->flops[t]) != LS_OK) return;
    ls_result_metrics m;
    ls_result_metrics_init(&m);
    m.steps = e->rungs[k], m.final_val_loss = v, m.flops_total = e->flops[t];
    char why[160];
    snprintf(why, sizeof why, LS_JOURNAL_STOPPED_TEXT, k, e->rungs[k], v);
    if (ls_results_write_metrics(e->s->results, e->trials[t].id, &m) != LS_OK ||
        ls_results_write_status(e->s->results, e->trials[t].id, LS_RESULT_STOPPED, why) != LS_OK)
        machine_fault(e->s, ls_last_error());
}

/* Every repeat of unit u reached rung k: judge the unit by their mean (in repeat order). */
static void es_decide(es_stage *e, size_t u, int k) {
    double sum = 0, flops = 0;
    for (size_t t = u * e->K; t < (u + 1) * e->K; t++) sum += e->value[t * (size_t)e->n_rungs + (size_t)k], flops += e->flops[t];
    double mean = sum / (double)e->K, cutoff;
    size_t n;
    uint64_t id = es_unit_id(e, u);
    if (e->rule->type == LS_GRID_ES_ASHA) {
        ls_es_record(&e->es, u, k, mean);
        cutoff = ls_es_asha_cutoff(&e->es, k, &n);
        if (es_journal(e, id, LS_ES_PAUSED, k, mean, cutoff, n, flops) == LS_OK) e->target[u] = -1;
        return;
    }
    ls_es_verdict v = ls_es_median(&e->es, u, k, mean, &cutoff, &n);
    if (es_journal(e, id, v, k, mean, cutoff, n, flops) != LS_OK) return;
    ls_es_record(&e->es, u, k, mean);
    if (v == LS_ES_CONTINUE) {
        e->target[u] = k + 1;
        es_queue_unit(e, u);
        return;
    }
    e->target[u] = -1, e->dead[u] = 1;
    for (size_t t = u * e->K; t < (u + 1) * e->K && !e->s->io_error; t++) es_stop_trial(e, t, k, cutoff, n);
}

/* Whether every repeat of u has reached its target rung (a failed one never does). */
static int es_all_arrived(const es_stage *e, size_t u) {
    for (size_t t = u * e->K; t < (u + 1) * e->K; t++)
        if (!e->arrived[t * (size_t)e->n_rungs + (size_t)e->target[u]]) return 0;
    return 1;
}

/* The segment of trial t toward the unit's target rung: its pause step (0: to the end). */
static int es_pause_step(const es_stage *e, size_t t) {
    int k = e->target[t / e->K];
    return k >= 0 && k < e->n_rungs - 1 ? e->rungs[k] : 0;
}

/* The next segment for a free worker (ls_sweep_schedule_next): a due one, a promotion, a new
 * configuration, in that order, each only when the time limit lets it start (time_allows). */
static int es_next(void *user, const ls_sweep_worker_info *w, ls_sweep_item *item) {
    scheduler *s = user;
    es_stage *e = s->es;
    if (s->io_error) return -1;
    for (;;) {
        /* the due segments in order: the first that fits goes; the others keep their places */
        size_t n = e->q_n, chosen = e->n_trials;
        for (size_t j = 0; j < n; j++) {
            size_t t = e->queue[e->q_head];
            e->q_head = (e->q_head + 1) % e->q_cap, e->q_n--;
            size_t u = t / e->K;
            if (es_terminal(e, t) || e->target[u] < 0 || e->dead[u]) continue; /* a repeat failed: no verdict */
            if (chosen == e->n_trials && time_allows(s, &e->trials[t].config, e->trials[t].id, es_pause_step(e, t), w)) {
                chosen = t;
                continue;
            }
            e->queue[(e->q_head + e->q_n++) % e->q_cap] = t;
        }
        if (chosen < e->n_trials) {
            *item = e->items[chosen];
            item->pause_step = es_pause_step(e, chosen);
            return 1;
        }
        if (e->q_n > 0) time_short(s, e->trials[e->queue[e->q_head]].id, &e->trials[e->queue[e->q_head]].config,
                                   es_pause_step(e, e->queue[e->q_head]));
        size_t u;
        int k;
        double cutoff;
        if (e->rule->type == LS_GRID_ES_ASHA && ls_es_asha_next(&e->es, &u, &k, &cutoff, &n)) {
            size_t t = u * e->K; /* its segment to the next rung must fit before it is decided */
            int pause = k + 1 < e->n_rungs - 1 ? e->rungs[k + 1] : 0;
            if (time_allows(s, &e->trials[t].config, e->trials[t].id, pause, w)) {
                if (es_journal(e, es_unit_id(e, u), LS_ES_PROMOTED, k, e->es.value[u * (size_t)e->n_rungs + (size_t)k],
                               cutoff, n, NAN) != LS_OK)
                    return -1;
                ls_es_promote(&e->es, u, k);
                e->target[u] = k + 1;
                es_queue_unit(e, u);
                continue;
            }
            time_short(s, e->trials[t].id, &e->trials[t].config, pause);
        }
        while (e->next_order < e->n_order && e->started[e->order[e->next_order]]) e->next_order++;
        if (e->next_order < e->n_order) {
            u = e->order[e->next_order];
            size_t t = u * e->K;
            int pause = e->n_rungs > 1 ? e->rungs[0] : 0;
            if (time_allows(s, &e->trials[t].config, e->trials[t].id, pause, w)) {
                e->next_order++;
                if (es_journal(e, es_unit_id(e, u), LS_ES_START, 0, NAN, NAN, 0, NAN) != LS_OK) return -1;
                e->started[u] = 1, e->target[u] = 0;
                es_queue_unit(e, u);
                continue;
            }
            time_short(s, e->trials[t].id, &e->trials[t].config, pause);
        }
        return s->running > 0 ? 0 : -1;
    }
}

/* Whether the stage still has work to hand out: due segments, a promotion, a configuration not
 * started (after the scheduling ended: what the time limit left for the next run). */
static int es_work_left(es_stage *e) {
    for (size_t j = 0; j < e->q_n; j++) {
        size_t t = e->queue[(e->q_head + j) % e->q_cap];
        if (!es_terminal(e, t) && e->target[t / e->K] >= 0 && !e->dead[t / e->K]) return 1;
    }
    size_t u, n;
    int k;
    double cutoff;
    while (e->next_order < e->n_order && e->started[e->order[e->next_order]]) e->next_order++;
    return e->next_order < e->n_order ||
           (e->rule->type == LS_GRID_ES_ASHA && ls_es_asha_next(&e->es, &u, &k, &cutoff, &n));
}

/* The progress line's expectation: the stage's work left by the time model on the last asking
 * worker's device, spread over the workers (what runs counts its predicted rest). NaN when some
 * of it was never measured. An early-stopping stage counts what is due and the configurations
 * not started, to their first rung: promotions come on top (*lower_bound). */
static double expected_left_s(const scheduler *s, int *lower_bound) {
    if (!s->trials || !s->need || !s->last_device[0] || (!s->plain && !s->es)) return NAN;
    double sum = 0, now = ls_now();
    int size = s->workers * s->ranks_per_trial + 1;
    for (int r = 1; r < size; r++)
        if (s->since[r] > 0) {
            if (isnan(s->need[r])) return NAN;
            sum += fmax(0, s->need[r] - (now - s->since[r]));
        }
    if (s->plain) {
        for (int k = 0; k < s->plain->n; k++)
            if (!s->plain->taken[k])
                sum += time_need(s, &s->trials[s->plain->items[k].index].config, s->plain->items[k].id, 0, s->last_device);
    } else {
        const es_stage *e = s->es;
        *lower_bound = 1;
        for (size_t j = 0; j < e->q_n; j++) {
            size_t t = e->queue[(e->q_head + j) % e->q_cap];
            sum += time_need(s, &e->trials[t].config, e->trials[t].id, es_pause_step(e, t), s->last_device);
        }
        for (size_t o = e->next_order; o < e->n_order; o++)
            for (size_t t = e->order[o] * e->K; !e->started[e->order[o]] && t < (e->order[o] + 1) * e->K; t++)
                sum += time_need(s, &e->trials[t].config, e->trials[t].id, e->n_rungs > 1 ? e->rungs[0] : 0,
                                 s->last_device);
    }
    return sum / (s->workers > 0 ? s->workers : 1);
}

/* A segment's result (after on_result journalled it). */
static void es_result(es_stage *e, const ls_sweep_item *item, const ls_trial_summary *r) {
    size_t t = (size_t)item->index, u = t / e->K;
    if (t >= e->n_trials || e->trials[t].id != item->id) return;
    if (r->status == LS_TRIAL_FAILED) { /* its configuration can have no verdict: out of the stage */
        e->dead[u] = 1, e->retry[t] = 0;
        return;
    }
    int k = e->target[u];
    if (r->status != LS_TRIAL_PAUSED || k < 0 || r->metrics.steps != e->rungs[k]) return;
    e->arrived[t * (size_t)e->n_rungs + (size_t)k] = 1;
    e->value[t * (size_t)e->n_rungs + (size_t)k] = r->metrics.final_val_loss;
    e->flops[t] = r->metrics.flops_total; /* every step and validation so far, earlier segments' too */
    if (e->K > 1) {
        size_t n = 0;
        for (size_t x = u * e->K; x < (u + 1) * e->K; x++) n += e->arrived[x * (size_t)e->n_rungs + (size_t)k];
        if (es_journal(e, item->id, LS_ES_ARRIVED, k, r->metrics.final_val_loss, NAN, n, e->flops[t]) != LS_OK) return;
    }
    if (!e->dead[u] && es_all_arrived(e, u)) es_decide(e, u, k);
}

typedef struct {
    uint64_t id;
    size_t index;
} es_id;

static int es_id_cmp(const void *a, const void *b) {
    uint64_t x = ((const es_id *)a)->id, y = ((const es_id *)b)->id;
    return (x > y) - (x < y);
}

/* Set a stage up: its rungs, the order configurations start in (the items, which come in the
 * budget plan's order), and the state the journal's decisions describe, replayed in order. */
static void es_init(es_stage *e, scheduler *s, const ls_grid *grid, int stage, const ls_grid_trial *trials,
                    size_t n_trials, const ls_sweep_item *items, int n_items) {
    memset(e, 0, sizeof *e);
    const ls_grid_stage *gs = &grid->stages[stage];
    e->s = s, e->rule = &gs->early_stopping, e->trials = trials, e->n_trials = n_trials;
    e->K = gs->repeats, e->n_units = n_trials / gs->repeats;
    e->n_rungs = ls_es_rungs(e->rule->min_steps, e->rule->eta, grid->base.train.max_steps, e->rungs, LS_ES_MAX_RUNGS);
    ls_es_init(&e->es, e->n_units, e->n_rungs, e->rule->eta, e->rule->min_trials);
    size_t nt = n_trials ? n_trials : 1, cells = nt * (size_t)e->n_rungs;
    e->items = ls_calloc(nt, sizeof *e->items);
    e->arrived = ls_calloc(cells, 1);
    e->value = ls_calloc(cells, sizeof *e->value);
    e->flops = ls_calloc(nt, sizeof *e->flops);
    e->retry = ls_calloc(nt, 1);
    e->target = ls_malloc(sizeof *e->target * (e->n_units ? e->n_units : 1));
    e->started = ls_calloc(e->n_units ? e->n_units : 1, 1);
    e->dead = ls_calloc(e->n_units ? e->n_units : 1, 1);
    e->order = ls_calloc(e->n_units ? e->n_units : 1, sizeof *e->order);
    e->queue = ls_calloc(nt, sizeof *e->queue);
    e->q_cap = nt;
    for (size_t u = 0; u < e->n_units; u++) e->target[u] = -1;
    unsigned char *listed = ls_calloc(e->n_units ? e->n_units : 1, 1);
    for (int k = 0; k < n_items; k++) {
        size_t t = (size_t)items[k].index, u = t / e->K;
        e->items[t] = items[k];
        if (!listed[u]) e->order[e->n_order++] = u, listed[u] = 1;
    }
    free(listed);
    for (size_t t = 0; t < n_trials; t++) /* a failed trial handed out again is a retry (--retry-failed) */
        if (ls_journal_status(ls_journal_current(s->journal), trials[t].id) == LS_RESULT_FAILED) {
            if (e->items[t].payload) e->retry[t] = 1;
            else e->dead[t / e->K] = 1;
        }
    /* Replay: the decisions about this stage's trials, in the order they were taken. */
    const ls_journal_state *js = ls_journal_current(s->journal);
    size_t *activated = ls_calloc(e->n_units ? e->n_units : 1, sizeof *activated); /* 1 + decision index */
    size_t *cut = ls_calloc(e->n_units ? e->n_units : 1, sizeof *cut);             /* 1 + its cut's index */
    es_id *by_id = ls_malloc(nt * sizeof *by_id); /* this stage's trials by id: the lookups stay n log n */
    for (size_t i = 0; i < n_trials; i++) by_id[i] = (es_id){trials[i].id, i};
    qsort(by_id, n_trials, sizeof *by_id, es_id_cmp);
    for (int d = 0; d < js->n_decisions; d++) {
        const ls_journal_decision *dec = &js->decisions[d];
        es_id key = {dec->trial_id, 0}, *hit = n_trials ? bsearch(&key, by_id, n_trials, sizeof *by_id, es_id_cmp) : NULL;
        size_t t = hit ? hit->index : n_trials;
        if (t == n_trials || dec->rung < 0 || dec->rung >= e->n_rungs) continue;
        size_t u = t / e->K, at = t * (size_t)e->n_rungs + (size_t)dec->rung;
        switch (dec->verdict) {
        case LS_ES_START: e->started[u] = 1, e->target[u] = 0, activated[u] = (size_t)d + 1; break;
        case LS_ES_ARRIVED: e->arrived[at] = 1, e->value[at] = dec->value, e->flops[t] = dec->flops; break;
        case LS_ES_PAUSED:
        case LS_ES_CONTINUE:
        case LS_ES_CUT:
            if (e->K == 1) e->arrived[at] = 1, e->value[at] = dec->value, e->flops[t] = dec->flops;
            ls_es_record(&e->es, u, dec->rung, dec->value);
            e->target[u] = dec->verdict == LS_ES_CONTINUE ? dec->rung + 1 : -1;
            if (dec->verdict == LS_ES_CONTINUE) activated[u] = (size_t)d + 1;
            if (dec->verdict == LS_ES_CUT) e->dead[u] = 1, cut[u] = (size_t)d + 1;
            break;
        case LS_ES_PROMOTED:
            ls_es_promote(&e->es, u, dec->rung);
            e->target[u] = dec->rung + 1, activated[u] = (size_t)d + 1;
            break;
        default: break; /* stopped: the trial's status says it */
        }
    }
    free(by_id);
    /* A cut whose trials' stops were not all journalled (a crash between them): stopped now, with
     * the cut's cutoff and count, as they would have been right after it. */
    for (;;) {
        size_t best = e->n_units;
        for (size_t u = 0; u < e->n_units; u++)
            if (cut[u] && (best == e->n_units || cut[u] < cut[best])) best = u;
        if (best == e->n_units) break;
        const ls_journal_decision *dec = &js->decisions[cut[best] - 1];
        cut[best] = 0;
        for (size_t t = best * e->K; t < (best + 1) * e->K && !s->io_error; t++)
            if (e->items[t].payload && !es_terminal(e, t) && e->arrived[t * (size_t)e->n_rungs + (size_t)dec->rung])
                es_stop_trial(e, t, dec->rung, dec->cutoff, (size_t)dec->n_at_rung);
    }
    free(cut);
    /* What was due and did not finish, in the order it was decided: a unit whose repeats all
     * arrived without the decision being journalled is decided now (it never was). */
    for (;;) {
        size_t best = e->n_units;
        for (size_t u = 0; u < e->n_units; u++)
            if (activated[u] && e->target[u] >= 0 && (best == e->n_units || activated[u] < activated[best])) best = u;
        if (best == e->n_units) break;
        activated[best] = 0;
        if (e->target[best] < e->n_rungs - 1 && !e->dead[best] && es_all_arrived(e, best)) es_decide(e, best, e->target[best]);
        else es_queue_unit(e, best);
    }
    free(activated);
}

/* The stage ended with nothing running, nothing promotable and nothing left to start: the trials
 * left paused stop at the highest rung they reached. A repeat that never reached one (another
 * repeat of its configuration failed first, so no verdict could come) is skipped with the reason,
 * so that the stage counts as finished. */
static void es_finish(es_stage *e) {
    for (size_t t = 0; t < e->n_trials && !e->s->io_error; t++) {
        if (!e->items[t].payload || es_terminal(e, t)) continue;
        int k = -1;
        for (int r = 0; r < e->n_rungs; r++)
            if (e->arrived[t * (size_t)e->n_rungs + (size_t)r]) k = r;
        if (k < 0) {
            if (ls_journal_status(ls_journal_current(e->s->journal), e->trials[t].id) == LS_RESULT_SKIPPED) continue;
            char why[200];
            snprintf(why, sizeof why, "not run: another repeat of its configuration failed, so early stopping can "
                     "give the configuration no verdict");
            if (ls_journal_trial_skipped(e->s->journal, e->trials[t].id, why) != LS_OK ||
                ls_results_write_status(e->s->results, e->trials[t].id, LS_RESULT_SKIPPED, why) != LS_OK)
                machine_fault(e->s, ls_last_error());
            continue;
        }
        size_t n = 0;
        double cutoff = e->rule->type == LS_GRID_ES_ASHA ? ls_es_asha_cutoff(&e->es, k, &n) : NAN;
        es_stop_trial(e, t, k, cutoff, n);
    }
}

static void es_free(es_stage *e) {
    ls_es_free(&e->es);
    free(e->items), free(e->arrived), free(e->value), free(e->flops), free(e->target), free(e->started), free(e->dead);
    free(e->retry);
    free(e->order), free(e->queue);
    memset(e, 0, sizeof *e);
}

/* The budget plan of a stage, made when the stage starts: its trials largest estimate first,
 * admitted while they fit in what the earlier stages left of the budget. It is a pure function
 * of the grid and of the earlier stages' finished trials, never of how far this stage got, so a
 * sweep resumed at any point (however often) admits and skips exactly the trials an
 * uninterrupted one did: trials of this stage already done are charged their estimate like the
 * rest, not their spend on top of it. A trial an earlier stage had is settled there (0 here).
 * A configuration's repeats are admitted or skipped together (the winner is a configuration). */
static void plan_stage(const ls_grid *grid, int stage, const ls_grid_trial *trials, size_t n,
                       ls_grid_trial *const *stage_trials, const size_t *stage_n, const ls_journal_state *js,
                       ls_grid_budget_entry *plan) {
    double left = grid->budget_flops > 0 ? grid->budget_flops : INFINITY;
    for (int k = 0; k < js->n_trials; k++) { /* what the earlier stages spent, each trial once */
        const ls_journal_trial *jt = &js->trials[k];
        if ((jt->status == LS_RESULT_DONE || jt->status == LS_RESULT_STOPPED) && isfinite(jt->metrics.flops_total) &&
            seen_in_earlier_stage(stage_trials, stage_n, stage, jt->id))
            left -= jt->metrics.flops_total;
    }
    double *cost = ls_calloc(n ? n : 1, sizeof *cost);
    size_t *configuration = ls_calloc(n ? n : 1, sizeof *configuration);
    /* early stopping: each trial at its most, trained to the top and validated at every rung */
    const ls_grid_early_stopping *es = &grid->stages[stage].early_stopping;
    int rungs[LS_ES_MAX_RUNGS], n_rungs = 0;
    if (es->type != LS_GRID_ES_NONE)
        n_rungs = ls_es_rungs(es->min_steps, es->eta, grid->base.train.max_steps, rungs, LS_ES_MAX_RUNGS);
    ls_flops_estimator est = {0}; /* the model's config and the data read once for the stage */
    for (size_t i = 0; i < n; i++) {
        configuration[i] = trials[i].configuration; /* a configuration's repeats are admitted together */
        if (seen_in_earlier_stage(stage_trials, stage_n, stage, trials[i].id)) cost[i] = 0;
        else if (!isfinite(cost[i] = ls_flops_estimate(&est, &trials[i].config, rungs, n_rungs,
                                                      trials[i].config.train.max_steps, NULL)))
            cost[i] = 0; /* it fails on its own */
    }
    ls_flops_estimator_free(&est);
    ls_grid_budget_plan_groups(cost, configuration, n, &left, plan);
    free(cost);
    free(configuration);
}

/* The journal is the truth: a done or stopped trial whose row in the results file says otherwise
 * (a flipped bit, an update cut short, a crash between the journal and the row) gets the
 * journal's summary and status written back. Rank 0. */
static void repair_rows(ls_results *res, const ls_journal_state *js) {
    int repaired = 0, stopped = 0;
    for (int k = 0; k < js->n_trials; k++) {
        const ls_journal_trial *jt = &js->trials[k];
        ls_results_row_data row;
        if ((jt->status != LS_RESULT_DONE && jt->status != LS_RESULT_STOPPED) || ls_results_row(res, jt->id) < 0 ||
            ls_results_read_row(res, jt->id, &row) != LS_OK)
            continue;
        if (ls_result_metrics_take(&row.metrics, &jt->metrics) == 0 && row.status == jt->status) continue;
        if (ls_results_write_metrics(res, jt->id, &row.metrics) == LS_OK &&
            ls_results_write_status(res, jt->id, jt->status, jt->status == LS_RESULT_DONE ? "" : jt->message) == LS_OK)
            repaired++, stopped += jt->status == LS_RESULT_STOPPED;
    }
    if (stopped) /* a crash between a stop's journal record and its row: expected, not damage */
        fprintf(stderr, "lorasweep: %d stopped trial%s written to the results file from the journal\n", stopped,
                stopped == 1 ? "" : "s");
    if ((repaired -= stopped))
        fprintf(stderr, "lorasweep: the results file disagreed with its journal on %d done trial%s: rewritten from "
                        "the journal\n", repaired, repaired == 1 ? "" : "s");
}

/* The results path holds a file no journal speaks for: not ours to rebuild or overwrite. */
static int foreign_results(const char *results_path) {
    ls_error("%s already exists and no journal beside it says a sweep wrote it (not a lorasweep results file, or "
             "its %s.journal is gone): refusing to touch it; choose another --out", results_path, results_path);
    return 0;
}

/* A resumed sweep checks the results file it goes on with, as rank 0 alone reads it: the data it
 * was computed on must be the data named now (an unfinished trial must not continue on other
 * data), and when the journal has another grid, this grid must grow the one the file holds
 * (ls_grid_extends: stages added, axis values added). *grown tells the second case. A file that
 * cannot be read is left to the rebuild (ls_results_open), unless the grids differ. */
static int check_resumed(const char *results_path, const char *trials_dir, const char *grid_path, const ls_grid *grid,
                         uint64_t journal_grid, int *grown) {
    *grown = 0;
    ls_results *r = NULL;
    ls_results_info info = {0};
    int readable = access(results_path, F_OK) == 0 &&
                   ls_results_open(MPI_COMM_SELF, results_path, NULL, LS_RESULTS_READONLY, &r, NULL) == LS_OK &&
                   ls_results_read_info(r, &info) == LS_OK;
    if (r) ls_results_close(r);
    int rc = LS_OK;
    if (!readable) {
        if (journal_grid != grid->hash)
            rc = ls_error("%s: the journal belongs to another grid and the results file cannot tell which (%s); "
                          "choose another --out", results_path, ls_last_error());
        ls_results_info_free(&info);
        return rc;
    }
    uint64_t now = 0;
    char want[64] = "";
    if (grid->base.resolved.data_path[0] && ls_results_file_checksum(grid->base.resolved.data_path, &now) == LS_OK)
        snprintf(want, sizeof want, "fnv1a64:%016" PRIx64, now);
    if (want[0] && info.data_checksum[0] && strcmp(want, info.data_checksum)) {
        rc = ls_error("%s: data.path %s changed since these results were computed (%s then, %s now): restore it, "
                      "or choose another --out", results_path, grid->base.resolved.data_path, info.data_checksum, want);
    } else if (journal_grid != grid->hash) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", grid_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        ls_grid old = {0};
        if (ls_grid_load_string(info.grid_text, strlen(info.grid_text), "the results' grid", dir, &old) != LS_OK ||
            ls_grid_extends(&old, grid) != LS_OK) {
            char why[600];
            snprintf(why, sizeof why, "%s", ls_last_error());
            rc = ls_error("%s holds the results of another grid (%s): a sweep may grow (stages added at the end, "
                          "values added to an axis, budget_flops changed) but not change; choose another --out, or "
                          "move %s, %s.journal and %s aside to start again",
                          results_path, why, results_path, results_path, trials_dir);
        } else {
            *grown = 1;
        }
        ls_grid_free(&old);
    }
    ls_results_info_free(&info);
    return rc;
}

/* ---- the sweep ------------------------------------------------------------------------------ */

int ls_sweep_run(const ls_sweep_run_options *opt, const ls_sweep_place *place) {
    int is_root = place->rank == 0, ok = 1, exit_status = 0, grown = 0, had_journal = 0;
    ls_grid grid = {0};
    ls_journal *journal = NULL;
    char results_path[4096] = "", trials_dir[4200] = "";
    char *grid_text = NULL;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);

    /* Rank 0 reads the grid and takes the journal's lock; everyone learns whether that worked. */
    if (is_root) {
        size_t len;
        ok = ls_grid_load_file(opt->grid_path, &grid) == LS_OK && (grid_text = ls_read_file(opt->grid_path, &len));
        ok = ok && ls_check_grid(&grid, NULL) == LS_OK; /* files and fits of every trial, before any work */
        if (ok && ls_sweep_groups(place->size, grid.base.train.ranks_per_trial, NULL) == 0) {
            ls_error("%s: train.ranks_per_trial: %d, but there %s only %d worker rank%s (run with at least %d "
                     "MPI ranks: rank 0 schedules)", opt->grid_path, grid.base.train.ranks_per_trial,
                     place->size == 2 ? "is" : "are", place->size - 1, place->size == 2 ? "" : "s",
                     grid.base.train.ranks_per_trial + 1);
            ok = 0;
        }
        if (ok) {
            snprintf(results_path, sizeof results_path, "%s", opt->out_path ? opt->out_path : grid.results_path);
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", results_path);
            char *dot = strrchr(dir, '.');
            if (dot && !strcmp(dot, ".h5")) *dot = '\0';
            snprintf(trials_dir, sizeof trials_dir, "%s.trials", dir);
            /* nothing is created next to a file that is not ours */
            ok = ls_check_replaceable(results_path) == LS_OK; /* not a symlink, FIFO or device */
            char journal_path[4200], lock_path[4200];
            ls_journal_paths(results_path, journal_path, sizeof journal_path, lock_path, sizeof lock_path);
            if (ok && access(results_path, F_OK) == 0 && access(journal_path, F_OK) != 0)
                ok = foreign_results(results_path);
            char *slash = strrchr(dir, '/');
            if (ok && slash) {
                *slash = '\0';
                ok = ls_mkdirs(dir) == LS_OK;
            }
            ok = ok && ls_mkdirs(trials_dir) == LS_OK;
        }
        const char *job = getenv("SLURM_JOB_ID");
        ok = ok && ls_journal_open(results_path, job ? job : "", &journal) == LS_OK;
        if (ok) { /* a results file no journal speaks for is someone else's (or lost its journal) */
            had_journal = ls_journal_current(journal)->n_records > 0;
            if (!had_journal && access(results_path, F_OK) == 0) ok = foreign_results(results_path);
        }
        if (ok) {
            const ls_journal_state *js = ls_journal_current(journal);
            if (js->grid_hash) /* a resumed sweep */
                ok = check_resumed(results_path, trials_dir, opt->grid_path, &grid, js->grid_hash, &grown) == LS_OK;
            /* a grown grid: the journal learns it once the results file has it (below) */
            if (ok && !grown) ok = ls_journal_sweep_start(journal, grid.hash, job ? job : "") == LS_OK;
        }
        if (!ok) fprintf(stderr, "lorasweep: %s\n", ls_last_error());
    }
    ls_sweep_broadcast_int(&ok);
    if (!ok) {
        if (journal) ls_journal_close(journal);
        ls_grid_free(&grid);
        free(grid_text);
        return 1;
    }

    /* Every rank opens the results file with the same arguments. */
    char *path = ls_sweep_broadcast_string(is_root ? results_path : NULL);
    char *dir = ls_sweep_broadcast_string(is_root ? trials_dir : NULL);
    char *text = ls_sweep_broadcast_string(is_root ? grid_text : "");
    char *name = ls_sweep_broadcast_string(is_root ? grid.name : "");
    char hash_hex[32];
    snprintf(hash_hex, sizeof hash_hex, "%016" PRIx64, grid.hash);
    char *hash_text = ls_sweep_broadcast_string(is_root ? hash_hex : "");
    ls_results_meta meta = {name, text, strtoull(hash_text, NULL, 16), "", 0, 0};
    if (is_root) {
        meta.created = (long long)ls_journal_current(journal)->first_time; /* a rebuilt file keeps it */
        meta.data_path = grid.base.resolved.data_path;
        ls_results_file_checksum(grid.base.resolved.data_path, &meta.data_checksum);
    }
    char *data_path = ls_sweep_broadcast_string(meta.data_path);
    meta.data_path = data_path;
    MPI_Bcast(&meta.data_checksum, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    ls_results *res = NULL;
    ls_results_how how;
    ls_sweep_broadcast_int(&grown);
    ls_results_meta open_meta = meta;
    if (grown) open_meta.grid_hash = 0; /* the file has the grid this one grows: checked above */
    ls_sweep_broadcast_int(&had_journal);
    /* rebuild a damaged file only when the journal can refill it (a sweep wrote it) */
    ok = ls_results_open(MPI_COMM_WORLD, path, &open_meta, had_journal ? LS_RESULTS_REBUILD : 0, &res, &how) == LS_OK;
    if (ok && is_root && how == LS_RESULTS_REBUILT)
        fprintf(stderr, "lorasweep: %s was damaged (%s): moved to %s; rebuilding it from the journal and the trial "
                        "directories\n", path, ls_last_error(), ls_results_set_aside(res));
    if (ok && grown) { /* the results file first: a crash before the journal's record repeats this */
        ok = ls_results_set_grid(res, &meta) == LS_OK;
        if (ok && is_root) {
            const char *job = getenv("SLURM_JOB_ID");
            ok = ls_journal_sweep_start(journal, grid.hash, job ? job : "") == LS_OK;
            if (ok) fprintf(stderr, "lorasweep: %s: the grid grew; the trials done so far are kept\n", path);
        }
        ls_sweep_broadcast_int(&ok);
        if (!ok) {
            ls_results_close(res);
            res = NULL;
        }
    }
    if (!ok) {
        if (is_root) fprintf(stderr, "lorasweep: %s\n", ls_last_error());
        if (journal) ls_journal_close(journal);
        ls_grid_free(&grid);
        free(grid_text), free(path), free(dir), free(text), free(name), free(hash_text), free(data_path);
        return 1;
    }

    if (is_root && how != LS_RESULTS_REBUILT) repair_rows(res, ls_journal_current(journal));
    scheduler sched = {.opt = opt, .journal = journal, .results = res, .t_start = ls_now()};
    if (is_root) { /* the best so far counts the trials earlier runs finished */
        const ls_journal_state *js = ls_journal_current(journal);
        for (int k = 0; k < js->n_trials; k++) {
            const ls_journal_trial *jt = &js->trials[k];
            if (jt->status == LS_RESULT_DONE && isfinite(jt->metrics.final_val_loss) &&
                (!sched.best_id || jt->metrics.final_val_loss < sched.best))
                sched.best = jt->metrics.final_val_loss, sched.best_id = jt->id;
        }
    }
    if (is_root) { /* the time limit: this run's deadline, and the time model every run measured */
        ls_time_model_from_journal(&sched.tm, ls_journal_current(journal));
        sched.device = ls_calloc((size_t)place->size, sizeof *sched.device);
        sched.since = ls_calloc((size_t)place->size, sizeof *sched.since);
        sched.need = ls_calloc((size_t)place->size, sizeof *sched.need);
        set_deadline(&sched, opt);
    }
    sched.tty = isatty(2);
    /* Data parallel: one group size for the whole sweep (the grid refuses it as an axis). */
    int ranks_per_trial = is_root ? grid.base.train.ranks_per_trial : 1, idle = 0;
    ls_sweep_broadcast_int(&ranks_per_trial);
    sched.workers = ls_sweep_groups(place->size, ranks_per_trial, &idle); /* trials at a time */
    sched.ranks_per_trial = ranks_per_trial;
    if (is_root && ranks_per_trial > 1) {
        char event[200];
        snprintf(event, sizeof event, "data parallel: %d group%s of %d ranks, one trial each", sched.workers,
                 sched.workers == 1 ? "" : "s", ranks_per_trial);
        if (idle)
            snprintf(event + strlen(event), sizeof event - strlen(event),
                     "; %d worker rank%s idle (%d workers are not a multiple of %d)", idle, idle == 1 ? "" : "s",
                     place->size - 1, ranks_per_trial);
        status_line(&sched, event);
    }
    ls_model_cache models = {0}; /* a worker's model, kept from trial to trial and stage to stage */
    worker_state ws = {{dir, local_stop, &models}, res};
    int n_stages = is_root ? (int)grid.n_stages : 0, stopped = 0;
    ls_sweep_broadcast_int(&n_stages);
    /* Rank 0 keeps every stage's trials and finished results: a later stage picks its winner. */
    ls_grid_trial **stage_trials = ls_calloc((size_t)n_stages + 1, sizeof *stage_trials);
    size_t *stage_n = ls_calloc((size_t)n_stages + 1, sizeof *stage_n), *stage_n_done = ls_calloc((size_t)n_stages + 1, sizeof *stage_n_done);
    ls_grid_result **stage_done = ls_calloc((size_t)n_stages + 1, sizeof *stage_done);
    for (int stage = 0; stage < n_stages; stage++) {
        /* Rank 0: this stage's trials (a later stage starts from the winner of its source). */
        ls_grid_trial *trials = NULL;
        size_t n_trials = 0;
        int go = 1;
        if (is_root) {
            const ls_grid_stage *gs = &grid.stages[stage];
            const ls_trial_config *winner = NULL;
            int f = gs->select_from;
            size_t best;
            int unfinished = f >= 0 ? stage_unfinished(ls_journal_current(journal), stage_trials[f], stage_n[f]) : 0;
            if (f >= 0 && !unfinished &&
                ls_grid_select(stage_trials[f], stage_n[f], stage_done[f], stage_n_done[f], gs->metric, &best) == LS_OK)
                winner = &stage_trials[f][best].config;
            if (unfinished) { /* a winner of some of its trials is not the stage's winner */
                ls_error("stage %s: stage %s did not finish (%d of its %zu trials neither done, failed nor skipped "
                         "by the budget), so it hands on no winner", gs->name, grid.stages[f].name, unfinished, stage_n[f]);
                go = 0;
            } else if (f >= 0 && !winner) {
                ls_error("stage %s: stage %s has no finished trial to start from", gs->name, grid.stages[f].name);
                go = 0;
            } else if (ls_grid_expand(&grid, (size_t)stage, winner, &trials, &n_trials) != LS_OK) {
                go = 0;
            }
            for (size_t i = 0; go && i < n_trials; i++) /* the groups are formed once per sweep */
                if (trials[i].config.train.ranks_per_trial != ranks_per_trial) {
                    ls_error("stage %s: a trial has train.ranks_per_trial %d, the sweep runs groups of %d",
                             gs->name, trials[i].config.train.ranks_per_trial, ranks_per_trial);
                    go = 0;
                }
            if (!go) fprintf(stderr, "lorasweep: %s\n", ls_last_error());
        }
        ls_sweep_broadcast_int(&go);
        if (!go) {
            exit_status = 1;
            break;
        }
        int extra_evals = 0; /* rank 0: the rungs below the top, each a validation of its own */
        if (is_root && grid.stages[stage].early_stopping.type != LS_GRID_ES_NONE) {
            const ls_grid_early_stopping *es = &grid.stages[stage].early_stopping;
            int rungs[LS_ES_MAX_RUNGS];
            extra_evals = ls_es_rungs(es->min_steps, es->eta, grid.base.train.max_steps, rungs, LS_ES_MAX_RUNGS) - 1;
        }
        if (add_stage_trials(res, stage, trials, is_root ? (int)n_trials : 0, extra_evals) != LS_OK) {
            if (is_root) machine_fault(&sched, ls_last_error()); /* our own file, not a trial */
            ls_grid_trials_free(trials, n_trials);
            stopped = 1;
            break;
        }
        ls_fault("stage_added"); /* tests: a crash with a stage's rows just added */
        if (!is_root) ls_grid_trials_free(trials, n_trials);
        if (is_root) {
            if (how == LS_RESULTS_REBUILT) { /* a damaged file was set aside: refill what is known */
                ls_results_fill_from_journal(res, ls_journal_current(journal));
                for (size_t i = 0; i < n_trials; i++) {
                    if (ls_journal_status(ls_journal_current(journal), trials[i].id) != LS_RESULT_DONE) continue;
                    char tdir[4300];
                    snprintf(tdir, sizeof tdir, "%s/%016" PRIx64, dir, trials[i].id);
                    ls_results_fill_from_trial_dir(res, trials[i].id, tdir);
                }
            }
            /* Pending and interrupted trials, within the budget, largest estimate first. */
            const ls_journal_state *js = ls_journal_current(journal);
            ls_sweep_item *items = ls_calloc(n_trials ? n_trials : 1, sizeof *items);
            ls_grid_budget_entry *plan = ls_calloc(n_trials ? n_trials : 1, sizeof *plan);
            plan_stage(&grid, stage, trials, n_trials, stage_trials, stage_n, js, plan);
            int n_items = 0, n_skip = 0, n_before = 0;
            size_t *skip = ls_calloc(n_trials ? n_trials : 1, sizeof *skip); /* plan entries to skip now */
            for (size_t i = 0; i < n_trials; i++) sched.total += !seen_in_earlier_stage(stage_trials, stage_n, stage, trials[i].id);
            for (size_t k = 0; k < n_trials; k++) {
                size_t i = plan[k].trial;
                ls_result_status st = ls_journal_status(js, trials[i].id);
                const ls_journal_trial *jt = ls_journal_find(js, trials[i].id);
                if (st == LS_RESULT_RUNNING && jt->crashes >= grid.max_attempts &&
                    !seen_in_earlier_stage(stage_trials, stage_n, stage, trials[i].id)) {
                    /* it took the job down with it every time: do not loop through every requeue */
                    char why[300];
                    snprintf(why, sizeof why, "gave up after %d attempts that each ended with the job dying while it "
                             "ran (max_attempts: %d in the grid)", jt->crashes, grid.max_attempts);
                    if (ls_journal_trial_failed(journal, trials[i].id, why) != LS_OK ||
                        ls_results_write_status(res, trials[i].id, LS_RESULT_FAILED, why) != LS_OK)
                        machine_fault(&sched, ls_last_error());
                    char event[400];
                    snprintf(event, sizeof event, "trial %016" PRIx64 " FAILED: %s (sweep run --retry-failed runs it again)",
                             trials[i].id, why);
                    status_line(&sched, event);
                    st = LS_RESULT_FAILED;
                }
                int retry = st == LS_RESULT_FAILED && opt->retry_failed;
                if (seen_in_earlier_stage(stage_trials, stage_n, stage, trials[i].id) || st == LS_RESULT_DONE ||
                    st == LS_RESULT_STOPPED || (st == LS_RESULT_FAILED && !retry)) {
                    n_before++; /* settled by an earlier stage or an earlier run */
                } else if (plan[k].skipped) {
                    if (st != LS_RESULT_SKIPPED) skip[n_skip++] = k;
                    else n_before++; /* decided by an earlier run of this same plan */
                } else { /* pending, interrupted, retried, or skipped by an earlier plan this one affords */
                    items[n_items++] = (ls_sweep_item){trials[i].id, (int)i, plan[k].flops, worker_payload(&trials[i].config), 0};
                }
            }
            char event[300];
            snprintf(event, sizeof event, "stage %s: %zu trials: %d to run, %d skipped by the budget, %d settled before",
                     grid.stages[stage].name, n_trials, n_items, n_skip, n_before);
            status_line(&sched, event);
            for (int k = 0; k < n_skip; k++) {
                const ls_grid_budget_entry *e = &plan[skip[k]];
                if (ls_journal_trial_skipped(journal, trials[e->trial].id, e->reason) != LS_OK ||
                    ls_results_write_status(res, trials[e->trial].id, LS_RESULT_SKIPPED, e->reason) != LS_OK) {
                    machine_fault(&sched, ls_last_error());
                    break;
                }
                snprintf(event, sizeof event, "trial %016" PRIx64 " skipped: %s", trials[e->trial].id, e->reason);
                status_line(&sched, event);
            }
            free(skip);
            ls_sweep_hooks hooks = {on_start, on_heartbeat, on_result, should_stop, &sched, opt->hang_timeout_s, on_hung};
            sched.trials = trials, sched.time_short = 0;
            if (grid.stages[stage].early_stopping.type != LS_GRID_ES_NONE) { /* rung by rung */
                es_stage es;
                es_init(&es, &sched, &grid, stage, trials, n_trials, items, n_items);
                sched.es = &es;
                ls_sweep_schedule_next(es_next, ranks_per_trial, &hooks, &stopped);
                if (!stopped && sched.time_short && es_work_left(&es)) stopped = time_stop(&sched);
                if (!stopped && !sched.io_error && !sched.hung[0]) es_finish(&es);
                sched.es = NULL;
                es_free(&es);
            } else {
                ls_sweep_items_sort(items, n_items); /* largest estimate first */
                plain_stage plain = {items, n_items, ls_calloc(n_items ? (size_t)n_items : 1, 1)};
                sched.plain = &plain;
                ls_sweep_schedule_next(plain_next, ranks_per_trial, &hooks, &stopped);
                if (!stopped && plain_left(&plain)) stopped = time_stop(&sched);
                sched.plain = NULL;
                free(plain.taken);
            }
            sched.trials = NULL;
            if (sched.hung[0]) { /* its rank will never reach another collective call: end the job */
                fprintf(stderr, "lorasweep: a worker stopped answering: %s; the other trials were checkpointed; "
                                "run the same command to continue (the hung trial resumes from its last checkpoint)\n",
                        sched.hung);
                ls_journal_close(journal);
                fflush(NULL);
                ls_sweep_abort(5);
            }
            /* A stop that came while the last stage's last trials were finishing cut nothing short:
             * the sweep is complete (exit 0), not stopped (exit 3: a requeue with nothing to do). */
            if (stopped && stage == n_stages - 1 && !sched.machine[0] &&
                stage_unfinished(ls_journal_current(journal), trials, n_trials) == 0)
                stopped = 0;
            for (int k = 0; k < n_items; k++) free(items[k].payload);
            free(items);
            free(plan);
            /* This stage's finished results: later stages pick their winner from them. */
            js = ls_journal_current(journal);
            ls_grid_result *done = ls_calloc(n_trials ? n_trials : 1, sizeof *done);
            size_t n_done = 0;
            for (size_t i = 0; i < n_trials; i++) {
                const ls_journal_trial *jt = ls_journal_find(js, trials[i].id);
                if (!jt || jt->status != LS_RESULT_DONE) continue;
                done[n_done].id = trials[i].id;
                done[n_done].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = jt->metrics.final_val_loss;
                done[n_done].metric[LS_GRID_METRIC_MSE] = jt->metrics.mse[LS_METRIC_BOTH];
                done[n_done].metric[LS_GRID_METRIC_MAE] = jt->metrics.mae[LS_METRIC_BOTH];
                n_done++;
            }
            stage_trials[stage] = trials, stage_n[stage] = n_trials;
            stage_done[stage] = done, stage_n_done[stage] = n_done;
        }
        if (!is_root) ls_sweep_work(run_and_record, &ws, place, ranks_per_trial);
        if (ls_results_flush(res) != LS_OK && is_root) {
            machine_fault(&sched, ls_last_error());
            stopped = 1;
        }
        ls_sweep_broadcast_int(&stopped);
        if (stopped) break;
    }
    ls_model_cache_free(&models);
    ls_time_model_free(&sched.tm);
    free(sched.device), free(sched.since), free(sched.need);
    ls_results_close(res);
    if (is_root) {
        if (sched.tty && !opt->quiet) fputc('\n', stderr);
        const ls_journal_state *js = ls_journal_current(journal);
        int n_failed = ls_journal_count(js, LS_RESULT_FAILED);
        char early[48] = "";
        if (ls_journal_count(js, LS_RESULT_STOPPED))
            snprintf(early, sizeof early, ", %d stopped early", ls_journal_count(js, LS_RESULT_STOPPED));
        fprintf(stderr, "lorasweep sweep: %s: %d done, %d failed, %d skipped%s%s%s; results in %s\n", grid.name,
                ls_journal_count(js, LS_RESULT_DONE), n_failed, ls_journal_count(js, LS_RESULT_SKIPPED), early,
                stopped ? " (stopped: run the same command to continue)" : "",
                n_failed && !stopped ? " (add --retry-failed to run the failed ones again)" : "", path);
        if (sched.machine[0]) { /* the one line that says what happened, last */
            fprintf(stderr, "lorasweep: stopped by a fault of the machine, not of a trial: %s (no trial was marked "
                            "failed for it: fix it, e.g. free space, and run the same command to continue)\n",
                    sched.machine);
            exit_status = 4;
        }
        if (exit_status == 0) exit_status = stopped ? 3 : ls_journal_count(js, LS_RESULT_FAILED) > 0 ? 1 : 0;
        ls_journal_close(journal);
    }
    ls_sweep_broadcast_int(&exit_status);
    for (int k = 0; k < n_stages; k++) {
        ls_grid_trials_free(stage_trials[k], stage_n[k]);
        free(stage_done[k]);
    }
    free(stage_trials), free(stage_n), free(stage_n_done), free(stage_done);
    ls_grid_free(&grid);
    free(grid_text), free(path), free(dir), free(text), free(name), free(hash_text), free(data_path);
    return exit_status;
}
