/*
 * sweep_trial.c: what a sweep worker does with one assignment: load the trial's configuration
 * from its text, run it with progress going to rank 0 as heartbeats and rank 0's stop request
 * (or a signal) checkpointing it, write its files under the sweep's trial directory, and sum it
 * up for rank 0. No MPI here: the protocol passes its callbacks in.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lorasweep/common.h"
#include "lorasweep/fault.h"
#include "lorasweep/results.h"
#include "lorasweep/sweep.h"
#include "lorasweep/timemodel.h"
#include "lorasweep/trial.h"

typedef struct {
    void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb);
    int (*should_stop)(void *ctx);
    void *ctx;
    const ls_sweep_worker_options *opt;
    int leader; /* alone, or rank 0 of a data-parallel group: the one that reports and writes */
} relay;

static void relay_progress(void *ctx, const ls_train_progress *p) {
    relay *r = ctx;
    if (!r->leader) return; /* the same numbers as the leader's: reported once */
    ls_trial_heartbeat hb = {p->step, p->max_steps, p->loss, p->val_loss, p->tokens_per_s, p->eta_s};
    r->heartbeat(r->ctx, &hb);
}

/* Generation sends no training progress: a heartbeat per system forecast keeps the worker heard. */
static void relay_forecast(void *ctx, int done, int total) {
    relay *r = ctx;
    if (!r->leader) return;
    ls_trial_heartbeat hb = {-1, -1, NAN, NAN, NAN, NAN};
    (void)done, (void)total;
    r->heartbeat(r->ctx, &hb);
}

static int relay_stop(void *ctx) {
    relay *r = ctx;
    return r->should_stop(r->ctx) || (r->opt->local_stop && r->opt->local_stop());
}

int ls_sweep_run_trial_keep(const ls_sweep_worker_options *opt, const ls_sweep_item *item,
                            const ls_train_group *group, void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb), int (*should_stop)(void *ctx),
                            void *ctx, ls_trial_summary *out, ls_trial_result *res_out) {
    double t_start = ls_now();
    memset(out, 0, sizeof *out);
    ls_result_metrics_init(&out->metrics);
    ls_trial_config cfg;
    char name[64], dir[4200], ckpt[4300];
    snprintf(name, sizeof name, "trial %016" PRIx64, item->id);
    if (ls_config_load_string(item->payload, strlen(item->payload), name, &cfg) != LS_OK) {
        out->status = LS_TRIAL_FAILED;
        snprintf(out->message, sizeof out->message, "%s", ls_last_error());
        return LS_OK;
    }
    char site[64]; /* tests: a trial that takes its worker down (LS_FAULT=trial@<id>:1:kill) */
    snprintf(site, sizeof site, "trial@%016" PRIx64, item->id);
    ls_fault(site);
    snprintf(dir, sizeof dir, "%s/%016" PRIx64, opt->trials_dir, item->id);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint", dir);
    int leader = !group || group->rank == 0;
    relay r = {heartbeat, should_stop, ctx, opt, leader};
    ls_trial_hooks hooks = {
        .train = {relay_progress, NULL, relay_stop, &r},
        .forecast_progress = relay_forecast,
        .forecast_ctx = &r,
        .checkpoint_dir = ckpt, /* every rank resumes from it; the trial lets the leader write it */
        .group = group,
        .model_cache = opt->model_cache,
        .pause_step = item->pause_step,
    };
    ls_trial_result res = {0}; /* freed whatever happened: zeroed parts free as nothing */
    int rc = leader ? ls_mkdirs(dir) : LS_OK;
    if (rc == LS_OK) rc = ls_trial_run(&cfg, &hooks, &res);
    else ls_train_group_agree(group, 0); /* in place of the trial: its group learns (trial.h) */
    res.id = item->id; /* the sweep's id (the config here carries absolute paths) */
    if (rc == LS_OK && leader) rc = ls_trial_write_outputs(dir, &cfg, &res, 1);
    if (rc != LS_OK) { /* a full disk is not the trial's fault: the sweep stops instead */
        out->status = ls_error_is_machine() ? LS_TRIAL_MACHINE : LS_TRIAL_FAILED;
        snprintf(out->message, sizeof out->message, "%s", ls_last_error());
    } else {
        int paused = item->pause_step > 0 && res.train.step >= item->pause_step;
        out->status = res.train.step >= cfg.train.max_steps ? LS_TRIAL_DONE
                      : paused                             ? LS_TRIAL_PAUSED
                                                           : LS_TRIAL_INTERRUPTED;
        ls_results_metrics_from_trial(&res, &out->metrics);
    }
    /* What this run took, for the time model: its steps, its forecast, the rest is overhead. */
    ls_segment_cost *c = &out->cost;
    c->steps = res.train.step - res.resumed_step;
    c->batch = cfg.train.batch_size, c->ctx = cfg.train.ctx;
    c->train_s = res.train_run_seconds;
    if (res.has_forecast) {
        c->gen_tokens = (double)res.forecast.generated_tokens, c->gen_s = res.forecast.seconds;
        c->gen_units = ls_time_forecast_units(&cfg);
    }
    c->wall_s = ls_now() - t_start;
    if (res_out) *res_out = res;
    else ls_trial_result_free(&res);
    ls_config_free(&cfg);
    return LS_OK;
}

int ls_sweep_run_trial(void *user, const ls_sweep_item *item, const ls_train_group *group,
                       void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb), int (*should_stop)(void *ctx),
                       void *ctx, ls_trial_summary *out) {
    return ls_sweep_run_trial_keep(user, item, group, heartbeat, should_stop, ctx, out, NULL);
}
