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
#include <unistd.h>

#include "lorasweep/check.h"
#include "lorasweep/common.h"
#include "lorasweep/grid.h"
#include "lorasweep/journal.h"
#include "lorasweep/results.h"
#include "lorasweep/sweep.h"
#include "lorasweep/train.h"

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
} scheduler;

static void status_line(scheduler *s, const char *event) {
    if (s->opt->quiet) return;
    double now = ls_now(), elapsed = now - s->t_start;
    const ls_journal_state *js = ls_journal_current(s->journal); /* the counts, as the journal has them */
    int done = ls_journal_count(js, LS_RESULT_DONE), failed = ls_journal_count(js, LS_RESULT_FAILED),
        skipped = ls_journal_count(js, LS_RESULT_SKIPPED);
    int left = s->total - done - failed - skipped - s->running;
    char eta[32] = "?";
    if (s->finished_now > 0) { /* worker-seconds per trial so far, spread over the workers */
        double per_trial = elapsed * s->workers / s->finished_now;
        snprintf(eta, sizeof eta, "%.0fs", per_trial * (left + 0.5 * s->running) / s->workers);
    }
    char best[64] = "-";
    if (s->best_id) snprintf(best, sizeof best, "%.4f (%016" PRIx64 ")", s->best, s->best_id);
    if (s->tty && !event) {
        if (now - s->last_line < 0.5) return;
        fprintf(stderr, "\r\033[Kdone %d  running %d  failed %d  skipped %d  left %d | best val %s | %.0fs, ETA %s",
                done, s->running, failed, skipped, left, best, elapsed, eta);
    } else if (event) {
        fprintf(stderr, "%s[%.0fs] %s | done %d running %d failed %d skipped %d left %d | best val %s\n",
                s->tty ? "\r\033[K" : "", elapsed, event, done, s->running, failed, skipped, left, best);
    }
    s->last_line = now;
}

static void on_start(void *user, const ls_sweep_item *item, int worker, int device) {
    scheduler *s = user;
    const ls_journal_trial *jt = ls_journal_find(ls_journal_current(s->journal), item->id);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    if (ls_journal_trial_start(s->journal, item->id, jt ? jt->attempts + 1 : 1, worker, host, device) != LS_OK)
        s->io_error = 1;
    s->running++;
    char event[128];
    if (device >= 0) snprintf(event, sizeof event, "trial %016" PRIx64 " started on rank %d, GPU %d", item->id, worker, device);
    else snprintf(event, sizeof event, "trial %016" PRIx64 " started on rank %d", item->id, worker);
    status_line(s, event);
}

static void on_heartbeat(void *user, const ls_sweep_item *item, int worker, const ls_trial_heartbeat *hb) {
    scheduler *s = user;
    if (!isnan(hb->val_loss) && ls_journal_trial_progress(s->journal, item->id, hb->step, hb->loss, hb->val_loss) != LS_OK)
        s->io_error = 1;
    status_line(s, NULL);
}

static void on_result(void *user, const ls_sweep_item *item, int worker, const ls_trial_summary *r) {
    scheduler *s = user;
    s->running--;
    if (r->status != LS_TRIAL_INTERRUPTED) s->finished_now++;
    char event[700];
    int rc = LS_OK;
    if (r->status == LS_TRIAL_DONE) {
        ls_result_metrics m;
        ls_result_metrics_init(&m);
        m.steps = r->steps;
        m.final_train_loss = r->final_train_loss;
        m.final_val_loss = r->final_val_loss;
        m.mse[LS_METRIC_BOTH] = r->mse;
        m.mae[LS_METRIC_BOTH] = r->mae;
        m.flops_total = r->flops_total;
        m.wall_seconds = r->wall_seconds;
        m.tokens_per_s = r->tokens_per_s;
        rc = ls_journal_trial_done(s->journal, item->id, &m);
        if (isfinite(r->final_val_loss) && (!s->best_id || r->final_val_loss < s->best))
            s->best = r->final_val_loss, s->best_id = item->id;
        snprintf(event, sizeof event, "trial %016" PRIx64 " done: val %.4f, MSE %.4g, %.0fs", item->id,
                 r->final_val_loss, r->mse, r->wall_seconds);
    } else if (r->status == LS_TRIAL_FAILED) {
        rc = ls_journal_trial_failed(s->journal, item->id, r->message);
        snprintf(event, sizeof event, "trial %016" PRIx64 " FAILED: %s", item->id, r->message);
    } else {
        rc = ls_journal_trial_checkpoint(s->journal, item->id, r->steps);
        snprintf(event, sizeof event, "trial %016" PRIx64 " stopped at step %d (checkpointed)", item->id, r->steps);
    }
    if (rc != LS_OK) s->io_error = 1;
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

/* Every rank adds the stage's trials to the results file: rank 0 broadcasts their YAML. */
static int add_stage_trials(ls_results *res, int stage, ls_grid_trial *trials, int n) {
    ls_sweep_broadcast_int(&n);
    ls_results_trial_spec *specs = ls_calloc((size_t)(n > 0 ? n : 1), sizeof *specs);
    ls_trial_config *cfgs = ls_calloc((size_t)(n > 0 ? n : 1), sizeof *cfgs);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char *yaml = trials ? ls_config_to_yaml(&trials[i].config) : NULL;
        char *got = ls_sweep_broadcast_string(yaml);
        if (ls_config_load_string(got, strlen(got), "trial", &cfgs[i]) != LS_OK) bad = 1, ls_config_defaults(&cfgs[i]);
        ls_results_spec_from_config(&cfgs[i], stage, &specs[i]);
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
        /* best effort: the trial's final write (ls_results_write_trial) is what counts */
        if (rw->n_loss) ls_results_write_train_loss(rw->w->results, rw->id, rw->first_step, rw->n_loss, rw->loss);
        ls_results_write_evals(rw->w->results, rw->id, rw->n_evals, rw->val_step, rw->val_loss);
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
    if (rc == LS_OK && leader && out->status != LS_TRIAL_INTERRUPTED) {
        ls_result_status st = out->status == LS_TRIAL_DONE ? LS_RESULT_DONE : LS_RESULT_FAILED;
        int wrote = out->status == LS_TRIAL_DONE ? ls_results_write_trial(w->results, &res, st, NULL)
                                                  : ls_results_write_status(w->results, item->id, st, out->message);
        if (wrote != LS_OK && out->status == LS_TRIAL_DONE) { /* not durable: not done */
            out->status = LS_TRIAL_FAILED;
            snprintf(out->message, sizeof out->message, "writing the results: %s", ls_last_error());
        }
    }
    ls_trial_result_free(&res);
    return LS_OK;
}

/* ---- the sweep ------------------------------------------------------------------------------ */

int ls_sweep_run(const ls_sweep_run_options *opt, const ls_sweep_place *place) {
    int is_root = place->rank == 0, ok = 1, exit_status = 0;
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
            char *slash = strrchr(dir, '/');
            if (slash) {
                *slash = '\0';
                ok = ls_mkdirs(dir) == LS_OK;
            }
            ok = ok && ls_mkdirs(trials_dir) == LS_OK;
        }
        const char *job = getenv("SLURM_JOB_ID");
        ok = ok && ls_journal_open(results_path, job ? job : "", &journal) == LS_OK;
        if (ok) {
            const ls_journal_state *js = ls_journal_current(journal);
            if (js->grid_hash && js->grid_hash != grid.hash) {
                ls_error("%s: the journal belongs to another grid (%016" PRIx64 ", this one is %016" PRIx64
                         "); choose another --out",
                         results_path, js->grid_hash, grid.hash);
                ok = 0;
            } else {
                ok = ls_journal_sweep_start(journal, grid.hash, job ? job : "") == LS_OK;
            }
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
    ls_results_meta meta = {name, text, strtoull(hash_text, NULL, 16), "", 0};
    if (is_root) {
        meta.data_path = grid.base.resolved.data_path;
        ls_results_file_checksum(grid.base.resolved.data_path, &meta.data_checksum);
    }
    char *data_path = ls_sweep_broadcast_string(meta.data_path);
    meta.data_path = data_path;
    MPI_Bcast(&meta.data_checksum, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    ls_results *res = NULL;
    ls_results_how how;
    ok = ls_results_open(MPI_COMM_WORLD, path, &meta, LS_RESULTS_REBUILD, &res, &how) == LS_OK;
    if (!ok) {
        if (is_root) fprintf(stderr, "lorasweep: %s\n", ls_last_error());
        if (journal) ls_journal_close(journal);
        ls_grid_free(&grid);
        free(grid_text), free(path), free(dir), free(text), free(name), free(hash_text), free(data_path);
        return 1;
    }

    scheduler sched = {.opt = opt, .journal = journal, .results = res, .t_start = ls_now()};
    sched.deadline = opt->walltime_s > 0 ? sched.t_start + opt->walltime_s : 0;
    sched.tty = isatty(2);
    /* Data parallel: one group size for the whole sweep (the grid refuses it as an axis). */
    int ranks_per_trial = is_root ? grid.base.train.ranks_per_trial : 1, idle = 0;
    ls_sweep_broadcast_int(&ranks_per_trial);
    sched.workers = ls_sweep_groups(place->size, ranks_per_trial, &idle); /* trials at a time */
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
    worker_state ws = {{dir, local_stop}, res};
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
            if (f >= 0 && ls_grid_select(stage_trials[f], stage_n[f], stage_done[f], stage_n_done[f], gs->metric, &best) == LS_OK)
                winner = &stage_trials[f][best].config;
            if (f >= 0 && !winner) {
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
        if (add_stage_trials(res, stage, trials, is_root ? (int)n_trials : 0) != LS_OK) {
            if (is_root) fprintf(stderr, "lorasweep: %s\n", ls_last_error());
            ls_grid_trials_free(trials, n_trials);
            exit_status = 1;
            break;
        }
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
            double *cost = ls_calloc(n_trials ? n_trials : 1, sizeof *cost);
            int n_items = 0;
            for (size_t i = 0; i < n_trials; i++)
                if (ls_trial_estimate_flops(&trials[i].config, &cost[i]) != LS_OK) cost[i] = 0;
            ls_grid_budget_entry *plan = ls_calloc(n_trials ? n_trials : 1, sizeof *plan);
            double left = grid.budget_flops > 0 ? grid.budget_flops : INFINITY;
            for (int k = 0; k < js->n_trials; k++) /* what earlier jobs already spent */
                if (js->trials[k].status == LS_RESULT_DONE && isfinite(js->trials[k].metrics.flops_total))
                    left -= js->trials[k].metrics.flops_total;
            ls_grid_budget_plan(cost, n_trials, &left, plan);
            for (size_t i = 0; i < n_trials; i++) { /* a trial an earlier stage had is counted once */
                int seen = 0;
                for (int e = 0; e < stage && !seen; e++)
                    for (size_t k = 0; k < stage_n[e] && !seen; k++) seen = stage_trials[e][k].id == trials[i].id;
                sched.total += !seen;
            }
            for (size_t k = 0; k < n_trials; k++) {
                size_t i = plan[k].trial;
                ls_result_status st = ls_journal_status(js, trials[i].id);
                if (st == LS_RESULT_DONE || st == LS_RESULT_FAILED || st == LS_RESULT_SKIPPED) continue;
                if (plan[k].skipped) {
                    ls_journal_trial_skipped(journal, trials[i].id, plan[k].reason);
                    ls_results_write_status(res, trials[i].id, LS_RESULT_SKIPPED, plan[k].reason);
                    continue;
                }
                items[n_items++] = (ls_sweep_item){trials[i].id, (int)i, cost[i], worker_payload(&trials[i].config)};
            }
            char event[200];
            snprintf(event, sizeof event, "stage %s: %zu trials, %d to run", grid.stages[stage].name, n_trials, n_items);
            status_line(&sched, event);
            ls_sweep_hooks hooks = {on_start, on_heartbeat, on_result, should_stop, &sched};
            ls_sweep_schedule(items, n_items, ranks_per_trial, &hooks, &stopped);
            for (int k = 0; k < n_items; k++) free(items[k].payload);
            free(items);
            free(cost);
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
        ls_results_flush(res);
        ls_sweep_broadcast_int(&stopped);
        if (stopped) break;
    }
    ls_results_close(res);
    if (is_root) {
        if (sched.tty && !opt->quiet) fputc('\n', stderr);
        const ls_journal_state *js = ls_journal_current(journal);
        if (!opt->quiet)
            fprintf(stderr, "lorasweep sweep: %s: %d done, %d failed, %d skipped%s; results in %s\n", grid.name,
                    ls_journal_count(js, LS_RESULT_DONE), ls_journal_count(js, LS_RESULT_FAILED),
                    ls_journal_count(js, LS_RESULT_SKIPPED),
                    stopped ? " (stopped: run the same command to continue)" : "", path);
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
