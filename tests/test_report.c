/*
 * test_report.c: the report read from a results file made here with the results and journal
 * APIs, with every kind of trial: an untrained baseline, finished trials, a failed one whose row
 * was never written (only the journal knows), a skipped one, one interrupted mid-training, a
 * stage never started. Checks what the report concludes (best, baseline, statuses, the context
 * comparison, a live sweep seen through the lock) in every format, the figures, and the small
 * plotting helpers. A one-rank MPI program (the file is parallel HDF5).
 */
#include "testing.h"

#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/config.h"
#include "lorasweep/grid.h"
#include "lorasweep/journal.h"
#include "lorasweep/model.h"
#include "lorasweep/plot.h"
#include "lorasweep/report.h"
#include "lorasweep/results.h"
#include "lorasweep/trial.h"

static const char grid_text[] = "name: t\n"
                                "budget_flops: 1e16\n"
                                "base:\n"
                                "  model: {path: m}\n"
                                "  data: {path: d.h5}\n"
                                "stages:\n"
                                "  - name: baseline\n"
                                "    grid: {train.max_steps: [0]}\n"
                                "  - name: lr_rank\n"
                                "    grid: {train.lr: [1.0e-4, 1.0e-3], lora.rank: [2, 4]}\n"
                                "  - name: ctx\n"
                                "    select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}\n"
                                "    grid: {train.ctx: [256]}\n"
                                "  - name: final\n"
                                "    select: {from: ctx, metric: final_val_loss, keep: [train.lr, lora.rank, train.ctx]}\n"
                                "    grid: {train.max_steps: [40]}\n";

enum { N_TRIALS = 6, MAX_STEPS = 20 };
/* stage, lr, rank, ctx, max_steps of each trial; ids are 0x100 + index */
static const struct {
    int stage;
    double lr;
    int rank, ctx, max_steps;
} trial_def[N_TRIALS] = {
    {0, 1e-4, 4, 128, 0},         /* 0 baseline: done */
    {1, 1e-4, 2, 128, MAX_STEPS}, /* 1 done, val 2.0 */
    {1, 1e-4, 4, 128, MAX_STEPS}, /* 2 done, val 1.5: the best */
    {1, 1e-3, 2, 128, MAX_STEPS}, /* 3 failed (journal only) */
    {1, 1e-3, 4, 128, MAX_STEPS}, /* 4 skipped by the budget */
    {2, 1e-4, 4, 256, MAX_STEPS}, /* 5 interrupted at step 5 */
};
static const double val_of[N_TRIALS] = {3.0, 2.0, 1.5, NAN, NAN, NAN};

static char results_path[4200];

static char *config_yaml(int i) {
    ls_trial_config c;
    ls_config_defaults(&c);
    char buf[64];
    snprintf(buf, sizeof buf, "%g", trial_def[i].lr);
    assert_int_equal(ls_config_set(&c, "train.lr", buf), LS_OK);
    snprintf(buf, sizeof buf, "%d", trial_def[i].rank);
    assert_int_equal(ls_config_set(&c, "lora.rank", buf), LS_OK);
    snprintf(buf, sizeof buf, "%d", trial_def[i].ctx);
    assert_int_equal(ls_config_set(&c, "train.ctx", buf), LS_OK);
    snprintf(buf, sizeof buf, "%d", trial_def[i].max_steps);
    assert_int_equal(ls_config_set(&c, "train.max_steps", buf), LS_OK);
    char *yaml = ls_config_to_yaml(&c);
    ls_config_free(&c);
    return yaml;
}

static ls_result_metrics metrics_of(int i) {
    ls_result_metrics m;
    ls_result_metrics_init(&m);
    m.steps = trial_def[i].max_steps;
    m.final_train_loss = trial_def[i].max_steps ? val_of[i] - 0.1 : NAN;
    m.final_val_loss = val_of[i];
    for (int k = 0; k < 3; k++) m.mse[k] = 10 * val_of[i] + k, m.mae[k] = val_of[i] + 0.1 * k;
    m.flops_train = trial_def[i].max_steps ? 1e14 : 0;
    m.flops_validation = 1e12;
    m.flops_forecast = 1e13;
    m.flops_total = m.flops_train + m.flops_validation + m.flops_forecast;
    m.wall_seconds = 10 + i;
    m.tokens_per_s = 100;
    return m;
}

/* The results file and its journal, as a sweep interrupted in stage ctx leaves them. */
static int make_results(void **state) {
    (void)state;
    snprintf(results_path, sizeof results_path, "%s/sweep.h5", temp_dir());
    ls_results_meta meta = {"t", grid_text, 0x1234, "/nonexistent/d.h5", 0, 0};
    ls_results *r;
    assert_int_equal(ls_results_open(MPI_COMM_SELF, results_path, &meta, 0, &r, NULL), LS_OK);
    ls_results_trial_spec specs[N_TRIALS];
    char *yaml[N_TRIALS];
    for (int i = 0; i < N_TRIALS; i++) {
        yaml[i] = config_yaml(i);
        specs[i] = (ls_results_trial_spec){.id = 0x100 + (uint64_t)i, .stage = trial_def[i].stage,
                                           .config_yaml = yaml[i], .lr = trial_def[i].lr,
                                           .lora_rank = trial_def[i].rank, .ctx = trial_def[i].ctx,
                                           .batch_size = 4, .max_steps = trial_def[i].max_steps, .max_evals = 4,
                                           .forecast_systems = 2, .forecast_steps = 3};
    }
    assert_int_equal(ls_results_add_trials(r, specs, N_TRIALS), LS_OK);
    for (int i = 0; i < N_TRIALS; i++) free(yaml[i]);
    for (int i = 0; i < 3; i++) { /* the finished ones: rows, curves and a forecast */
        uint64_t id = 0x100 + (uint64_t)i;
        ls_result_metrics m = metrics_of(i);
        assert_int_equal(ls_results_write_metrics(r, id, &m), LS_OK);
        assert_int_equal(ls_results_write_status(r, id, LS_RESULT_DONE, NULL), LS_OK);
        if (trial_def[i].max_steps) {
            float loss[MAX_STEPS];
            for (int s = 0; s < MAX_STEPS; s++) loss[s] = (float)(val_of[i] + 1.0 / (s + 1));
            assert_int_equal(ls_results_write_train_loss(r, id, 1, MAX_STEPS, loss), LS_OK);
            int steps[3] = {0, 10, 20};
            float vl[3] = {3.0f, (float)val_of[i] + 0.2f, (float)val_of[i]};
            assert_int_equal(ls_results_write_evals(r, id, 3, steps, vl), LS_OK);
        }
        float mean[12], std[12], truth[12];
        for (int k = 0; k < 12; k++) mean[k] = 1.0f + k, std[k] = 0.1f, truth[k] = 1.5f + k;
        int systems[2] = {7, 9};
        ls_forecast fc = {0};
        fc.n_systems = 2, fc.steps = 3, fc.system = systems, fc.mean = mean, fc.std = std, fc.truth = truth;
        assert_int_equal(ls_results_write_forecast(r, id, &fc), LS_OK);
    }
    /* the interrupted trial wrote its first validation and 5 steps of loss */
    float loss5[5] = {3, 2.9f, 2.8f, 2.7f, 2.6f};
    assert_int_equal(ls_results_write_train_loss(r, 0x105, 1, 5, loss5), LS_OK);
    assert_int_equal(ls_results_write_status(r, 0x105, LS_RESULT_RUNNING, NULL), LS_OK);
    assert_int_equal(ls_results_close(r), LS_OK);

    ls_journal *j;
    assert_int_equal(ls_journal_open(results_path, "job-7", &j), LS_OK);
    assert_int_equal(ls_journal_sweep_start(j, 0x1234, "job-7"), LS_OK);
    for (int i = 0; i < 3; i++) {
        ls_result_metrics m = metrics_of(i);
        assert_int_equal(ls_journal_trial_start(j, 0x100 + (uint64_t)i, 1, 1, "host", -1), LS_OK);
        assert_int_equal(ls_journal_trial_done(j, 0x100 + (uint64_t)i, &m), LS_OK);
    }
    assert_int_equal(ls_journal_trial_start(j, 0x103, 1, 2, "host", -1), LS_OK);
    assert_int_equal(ls_journal_trial_failed(j, 0x103, "train: loss is NaN at step 3 | lr too high?"), LS_OK);
    assert_int_equal(ls_journal_trial_skipped(j, 0x104, "estimated 2e+16 FLOPS, 1e+16 left of the budget"), LS_OK);
    assert_int_equal(ls_journal_trial_start(j, 0x105, 1, 1, "host", -1), LS_OK);
    assert_int_equal(ls_journal_trial_progress(j, 0x105, 5, 2.6, NAN), LS_OK);
    assert_int_equal(ls_journal_close(j), LS_OK);
    return 0;
}

static int find(const ls_report *rep, uint64_t id) {
    for (int i = 0; i < rep->n_trials; i++)
        if (rep->trials[i].row.id == id) return i;
    return -1;
}

static char *print_to_string(const ls_report *rep, ls_report_format fmt, int stage) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(ls_report_print(f, rep, fmt, stage), LS_OK);
    fclose(f);
    char *copy = ls_strdup(buf); /* a heap string of its own (GCC otherwise sees buf's address escape) */
    free(buf);
    return copy;
}

static void test_conclusions(void **state) {
    (void)state;
    ls_report rep;
    if (ls_report_load(results_path, &rep) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(rep.n_trials, N_TRIALS);
    assert_int_equal(rep.n_stages, 4);
    assert_string_equal(rep.stage_names[3], "final");
    assert_true(rep.budget_flops == 1e16);
    assert_true(rep.have_journal);
    assert_string_equal(rep.lock_owner, "");                    /* no sweep holds it */
    assert_int_equal(rep.best, find(&rep, 0x102));              /* lowest val loss of a trained trial */
    assert_int_equal(rep.baseline, find(&rep, 0x100));          /* max_steps 0, though its loss is higher */
    assert_int_equal(rep.counts[LS_RESULT_DONE], 3);
    assert_int_equal(rep.counts[LS_RESULT_FAILED], 1);
    assert_int_equal(rep.counts[LS_RESULT_SKIPPED], 1);
    assert_int_equal(rep.counts[LS_RESULT_RUNNING], 1);
    assert_int_equal(rep.interrupted, 1);
    const ls_report_trial *failed = &rep.trials[find(&rep, 0x103)];
    assert_int_equal(failed->status, LS_RESULT_FAILED);         /* the journal's word: the row says pending */
    assert_int_equal(failed->row.status, LS_RESULT_PENDING);
    assert_non_null(strstr(failed->message, "loss is NaN"));
    const ls_report_trial *run = &rep.trials[find(&rep, 0x105)];
    assert_int_equal(run->progress_step, 5);
    assert_false(run->live);
    assert_null(run->train_loss); /* series are read when a figure asks, one trial at a time */
    assert_int_equal(ls_report_load_curves(&rep, find(&rep, 0x105)), LS_OK);
    assert_int_equal(run->n_train, MAX_STEPS);                   /* room for 20, 5 written */
    assert_true(run->train_loss[4] == 2.6f && isnan(run->train_loss[5]));
    ls_report_unload(&rep, find(&rep, 0x105));
    assert_null(run->train_loss);
    const ls_report_trial *best = &rep.trials[rep.best];
    assert_int_equal(ls_report_load_curves(&rep, rep.best), LS_OK);
    assert_int_equal(ls_report_load_forecast(&rep, rep.best), LS_OK);
    assert_int_equal(best->n_val, 3);
    assert_int_equal(best->val_step[2], 20);
    assert_int_equal(best->S, 2);
    assert_int_equal(best->systems[1], 9);
    assert_int_equal(ls_report_stage_find(&rep, "ctx"), 2);
    assert_int_equal(ls_report_stage_find(&rep, "nope"), -1);

    char *text = print_to_string(&rep, LS_REPORT_TABLE, -1);
    assert_non_null(strstr(text, "UNFINISHED: 1 interrupted, 0 pending"));
    assert_non_null(strstr(text, "stage final: not started yet"));
    assert_non_null(strstr(text, "interrupted at step 5/20"));
    assert_non_null(strstr(text, "0000000000000102 *"));
    /* the context comparison takes the lr_rank trial that differs in ctx only, and not trial 1 */
    char *ctx = strstr(text, "== Context length (stage ctx: lr 1e-04, rank 4)");
    assert_non_null(ctx);
    char *flops = strstr(ctx, "== FLOPS");
    assert_non_null(flops);
    *flops = '\0';
    assert_non_null(strstr(ctx, "128  lr_rank"));
    assert_non_null(strstr(ctx, "256  ctx"));
    assert_null(strstr(ctx, "2.0000"));
    *flops = '=';
    assert_non_null(strstr(text, "of the budget 1e+16"));
    assert_non_null(strstr(text, "estimated 2e+16 FLOPS, 1e+16 left of the budget"));
    assert_non_null(strstr(text, "2.00x")); /* validation loss: baseline 3.0 / best 1.5 */
    free(text);

    char *md = print_to_string(&rep, LS_REPORT_MARKDOWN, -1);
    assert_non_null(strstr(md, "## Failed and skipped trials"));
    assert_null(strstr(md, "step 3 | lr")); /* a | in a message would break the table */
    assert_non_null(strstr(md, "step 3 / lr"));
    free(md);

    char *csv = print_to_string(&rep, LS_REPORT_CSV, -1);
    int lines = 0;
    for (char *p = csv; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + N_TRIALS);
    assert_non_null(strstr(csv, "\n0000000000000102,lr_rank,done,"));  /* sorted: best first */
    free(csv);
    csv = print_to_string(&rep, LS_REPORT_CSV, 1);
    lines = 0;
    for (char *p = csv; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + 4);
    free(csv);

    char *json = print_to_string(&rep, LS_REPORT_JSON, -1);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "complete")));
    assert_string_equal(cJSON_GetObjectItem(root, "best")->valuestring, "0000000000000102");
    assert_string_equal(cJSON_GetObjectItem(root, "baseline")->valuestring, "0000000000000100");
    cJSON *trials = cJSON_GetObjectItem(root, "trials");
    assert_int_equal(cJSON_GetArraySize(trials), N_TRIALS);
    int seen_null = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, trials) {
        cJSON *cfg = cJSON_GetObjectItem(t, "config");
        assert_true(cJSON_IsObject(cfg));
        double lr = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "train"), "lr")->valuedouble;
        assert_true(lr == cJSON_GetObjectItem(cJSON_GetObjectItem(t, "hyperparameters"), "lr")->valuedouble);
        seen_null += cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "metrics"), "final_val_loss"));
    }
    assert_int_equal(seen_null, 3); /* NaN is null, never a bare NaN that breaks JSON parsers */
    cJSON_Delete(root);
    free(json);
    ls_report_free(&rep);
}

/* Repeats: configurations grouped from the trials' seeds, mean ± std and n, the best by the mean
 * of complete configurations (not the best single trial, not a partial mean), a later stage's
 * configuration whose repeats an earlier stage ran, every format. Hand-worked:
 *
 *   stage lr (3 repeats)   repeat 0  repeat 1  repeat 2   mean   std
 *   lr 1e-4 (config 0)     0.5       1.6       1.5        1.2    0.6083  holds the best single trial
 *   lr 1e-3 (config 1)     0.9       1.1       1.0        1.0    0.1     <- best
 *   lr 3e-3 (config 2)     0.2       failed    0.3        0.25   -       incomplete: does not compete
 *   stage ctx (4 repeats, on lr 1e-3): ctx 256: 1.3 1.4 1.5 1.6; ctx 512: repeats 0-2 are config 1's
 *   trials (the same configuration and seeds: run once, in stage lr), repeat 3 its own: 1.2
 * (A configuration all of whose trials an earlier stage ran is listed under that stage alone.)
 */
static const char repeats_grid[] = "name: r\n"
                                   "base: {model: {path: m}, data: {path: d.h5}}\n"
                                   "stages:\n"
                                   "  - name: baseline\n"
                                   "    grid: {train.max_steps: [0]}\n"
                                   "  - name: lr\n"
                                   "    repeats: 3\n"
                                   "    grid: {train.lr: [1.0e-4, 1.0e-3, 3.0e-3]}\n"
                                   "  - name: ctx\n"
                                   "    repeats: 4\n"
                                   "    select: {from: lr, keep: [train.lr]}\n"
                                   "    grid: {train.ctx: [256, 512]}\n";

static void test_repeats(void **state) {
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/repeats.h5", temp_dir());
    ls_grid g;
    assert_int_equal(ls_grid_load_string(repeats_grid, strlen(repeats_grid), "g.yaml", "/", &g), LS_OK);
    ls_grid_trial *t[3];
    size_t n[3];
    assert_int_equal(ls_grid_expand(&g, 0, NULL, &t[0], &n[0]), LS_OK);
    assert_int_equal(ls_grid_expand(&g, 1, NULL, &t[1], &n[1]), LS_OK);
    assert_int_equal(ls_grid_expand(&g, 2, &t[1][3].config, &t[2], &n[2]), LS_OK);
    for (int i = 0; i < 3; i++) assert_true(t[2][4 + i].id == t[1][3 + i].id); /* ctx 512 = lr 1e-3, 3 repeats */
    static const double val[3][9] = {{3.0}, {0.5, 1.6, 1.5, 0.9, 1.1, 1.0, 0.2, NAN, 0.3}, {1.3, 1.4, 1.5, 1.6, 1.2}};
    static const int ctx_rows[5] = {0, 1, 2, 3, 7}; /* ctx stage trials not run before */
    ls_results_meta meta = {"r", repeats_grid, 0x77, "", 0, 0};
    ls_results *r;
    assert_int_equal(ls_results_open(MPI_COMM_SELF, path, &meta, 0, &r, NULL), LS_OK);
    for (int s = 0; s < 3; s++) {
        int k = s == 2 ? 5 : (int)n[s];
        ls_results_trial_spec *spec = calloc((size_t)k, sizeof *spec);
        for (int j = 0; j < k; j++) ls_results_spec_from_config(&t[s][s == 2 ? ctx_rows[j] : j].config, s, &spec[j]);
        assert_int_equal(ls_results_add_trials(r, spec, k), LS_OK);
        for (int j = 0; j < k; j++) {
            int i = s == 2 ? ctx_rows[j] : j;
            free((char *)spec[j].config_yaml);
            if (s == 1 && i == 7) {
                assert_int_equal(ls_results_write_status(r, t[s][i].id, LS_RESULT_FAILED, "loss is NaN"), LS_OK);
                continue;
            }
            ls_result_metrics m;
            ls_result_metrics_init(&m);
            m.steps = t[s][i].config.train.max_steps;
            m.final_val_loss = val[s][j];
            for (int v = 0; v < 3; v++) m.mse[v] = 10 * val[s][j] + v, m.mae[v] = val[s][j];
            m.flops_total = 1e12;
            assert_int_equal(ls_results_write_metrics(r, t[s][i].id, &m), LS_OK);
            assert_int_equal(ls_results_write_status(r, t[s][i].id, LS_RESULT_DONE, NULL), LS_OK);
        }
        free(spec);
    }
    assert_int_equal(ls_results_close(r), LS_OK);

    ls_report rep;
    if (ls_report_load(path, &rep) != LS_OK) fail_msg("%s", ls_last_error());
    assert_true(rep.repeated);
    assert_int_equal(rep.n_trials, 1 + 9 + 5);
    assert_int_equal(rep.n_configs, 1 + 3 + 2);
    const ls_report_config *c1 = &rep.configs[2], *c2 = &rep.configs[3];
    assert_true(c1->id == t[1][3].id && c1->stage == 1 && c1->repeats == 3 && c1->n_trials == 3 && c1->complete);
    assert_int_equal(c1->stat[LS_REPORT_STAT_VAL_LOSS].n, 3);
    assert_true(fabs(c1->stat[LS_REPORT_STAT_VAL_LOSS].mean - 1.0) < 1e-12);
    assert_true(fabs(c1->stat[LS_REPORT_STAT_VAL_LOSS].std - 0.1) < 1e-12);
    assert_true(fabs(rep.configs[1].stat[LS_REPORT_STAT_VAL_LOSS].std - sqrt(0.37)) < 1e-12); /* 0.5, 1.6, 1.5 */
    assert_false(c2->complete);
    assert_int_equal(c2->stat[LS_REPORT_STAT_VAL_LOSS].n, 2);
    assert_true(fabs(c2->stat[LS_REPORT_STAT_VAL_LOSS].mean - 0.25) < 1e-12);
    assert_int_equal(rep.best_config, 2);              /* by the mean of complete configurations */
    assert_int_equal(rep.best, find(&rep, t[1][3].id)); /* its repeat 0 */
    assert_int_equal(rep.baseline_config, 0);
    for (int i = 0; i < 9; i++) {
        const ls_report_trial *tr = &rep.trials[find(&rep, t[1][i].id)];
        assert_int_equal(tr->repeat, i % 3);
        assert_int_equal(tr->configuration, 1 + i / 3);
    }
    /* the ctx stage: 512's first three repeats are configuration 1's trials, run once in stage lr */
    const ls_report_config *x256 = &rep.configs[5], *x512 = &rep.configs[4]; /* 512's first trial is earlier */
    assert_int_equal(rep.trials[x256->first].row.ctx, 256);
    assert_true(x256->stage == 2 && x256->complete && fabs(x256->stat[0].mean - 1.45) < 1e-12);
    assert_true(x512->stage == 2 && x512->id == c1->id && x512->n_trials == 4 && x512->complete);
    for (int i = 0; i < 3; i++) assert_int_equal(x512->trials[i], c1->trials[i]);
    assert_true(fabs(x512->stat[0].mean - 1.05) < 1e-12);
    assert_int_equal(rep.trials[c1->trials[0]].configuration, 2); /* a shared trial: its own stage's */
    assert_int_equal(rep.n_varying, 0); /* the seeds differ only by repeat: no seed columns */

    char *text = print_to_string(&rep, LS_REPORT_TABLE, -1);
    char *cfg = strstr(text, "== Configurations by mean final validation loss (over their repeats)");
    assert_non_null(cfg);
    char id[32];
    snprintf(id, sizeof id, "%016" PRIx64 " *", c1->id);
    assert_non_null(strstr(cfg, id));
    assert_non_null(strstr(cfg, "1.0000 ± 0.1000"));
    assert_non_null(strstr(cfg, "1 failed, 2 of 3 done"));
    assert_non_null(strstr(cfg, "  2/3  "));
    assert_non_null(strstr(text, "1 of 3")); /* the trials' repeat column */
    char *best = strstr(text, "== Best configuration and the untrained baseline");
    assert_non_null(best);
    assert_non_null(strstr(best, "repeats (n)"));
    assert_non_null(strstr(best, "3 of 3"));
    assert_non_null(strstr(best, "3.00x"));                 /* baseline 3.0 / mean 1.0 */
    assert_non_null(strstr(best, "0.9000, 1.1000, 1.0000")); /* the winner's spread, repeat by repeat */
    free(text);

    char *csv = print_to_string(&rep, LS_REPORT_CSV, -1);
    assert_non_null(strstr(csv, ",message,configuration,repeat"));
    free(csv);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(ls_report_print_configs_csv(f, &rep, 1), LS_OK);
    fclose(f);
    int lines = 0;
    for (char *p = buf; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + 3);
    char want[160];
    snprintf(want, sizeof want, "\n%016" PRIx64 ",lr,complete,3,3,0.001,", c1->id); /* the best first */
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, ",1,0.1,"));
    free(buf);

    char *json = print_to_string(&rep, LS_REPORT_JSON, -1);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    snprintf(id, sizeof id, "%016" PRIx64, c1->id);
    assert_string_equal(cJSON_GetObjectItem(root, "best_configuration")->valuestring, id);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "configurations"), 0);
    assert_string_equal(cJSON_GetObjectItem(first, "id")->valuestring, id);
    cJSON *vl = cJSON_GetObjectItem(first, "final_val_loss");
    assert_int_equal(cJSON_GetObjectItem(vl, "n")->valueint, 3);
    assert_true(fabs(cJSON_GetObjectItem(vl, "std")->valuedouble - 0.1) < 1e-9);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(first, "trials")), 3);
    cJSON *tj;
    int with_repeat = 0;
    cJSON_ArrayForEach(tj, cJSON_GetObjectItem(root, "trials")) with_repeat += cJSON_GetObjectItem(tj, "repeat")->valueint > 0;
    assert_int_equal(with_repeat, 6 + 4);
    cJSON_Delete(root);
    free(json);
    ls_report_free(&rep);
    for (int s = 0; s < 3; s++) ls_grid_trials_free(t[s], n[s]);
    ls_grid_free(&g);
}

/* While a sweep holds the lock (here: the journal opened by this process), the report says a
 * sweep is writing the file and running trials are live, not interrupted. */
static void test_live_sweep(void **state) {
    (void)state;
    ls_journal *j;
    assert_int_equal(ls_journal_open(results_path, "job-8", &j), LS_OK);
    ls_report rep;
    assert_int_equal(ls_report_load(results_path, &rep), LS_OK);
    assert_non_null(strstr(rep.lock_owner, "job job-8"));
    assert_int_equal(rep.interrupted, 0);
    assert_true(rep.trials[find(&rep, 0x105)].live);
    char *text = print_to_string(&rep, LS_REPORT_TABLE, -1);
    assert_non_null(strstr(text, "a sweep is writing this file now (job job-8"));
    assert_non_null(strstr(text, "running at step 5/20"));
    free(text);
    ls_report_free(&rep);
    assert_int_equal(ls_journal_close(j), LS_OK);
}

/* Without its journal the file's own status column is used, and the report says so. */
static void test_without_journal(void **state) {
    (void)state;
    char copy[4300], cmd[9000];
    snprintf(copy, sizeof copy, "%s/alone.h5", temp_dir());
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", results_path, copy);
    assert_int_equal(system(cmd), 0);
    ls_report rep;
    assert_int_equal(ls_report_load(copy, &rep), LS_OK);
    assert_false(rep.have_journal);
    assert_non_null(strstr(rep.journal_note, "no journal"));
    assert_int_equal(rep.trials[find(&rep, 0x103)].status, LS_RESULT_PENDING);
    assert_int_equal(rep.best, find(&rep, 0x102));
    ls_report_free(&rep);
}

static void test_not_results(void **state) {
    (void)state;
    ls_report rep;
    char path[4300];
    snprintf(path, sizeof path, "%s/none.h5", temp_dir());
    assert_int_equal(ls_report_load(path, &rep), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "No such file"));
    snprintf(path, sizeof path, "%s/text.h5", temp_dir());
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    assert_int_equal(ls_report_load(path, &rep), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "cannot open as HDF5"));
}

/* A sweep that has created its file and added nothing yet: every format and the figures work. */
static void test_empty_file(void **state) {
    (void)state;
    char path[4300], dir[4300];
    snprintf(path, sizeof path, "%s/empty.h5", temp_dir());
    snprintf(dir, sizeof dir, "%s/empty-figs", temp_dir());
    ls_results_meta meta = {"t", grid_text, 0x99, "", 0, 0};
    ls_results *r;
    assert_int_equal(ls_results_open(MPI_COMM_SELF, path, &meta, 0, &r, NULL), LS_OK);
    assert_int_equal(ls_results_close(r), LS_OK);
    ls_report rep;
    assert_int_equal(ls_report_load(path, &rep), LS_OK);
    assert_int_equal(rep.n_trials, 0);
    assert_int_equal(rep.best, -1);
    for (int f = 0; f < 4; f++) free(print_to_string(&rep, (ls_report_format)f, -1));
    char *text = print_to_string(&rep, LS_REPORT_TABLE, -1);
    assert_non_null(strstr(text, "(no trials)"));
    assert_non_null(strstr(text, "stage baseline: not started yet"));
    assert_non_null(strstr(text, "(no trained trial has finished yet)"));
    free(text);
    char *log = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&log, &len);
    ls_report_plot_options opt = {.stage = -1};
    assert_int_equal(ls_report_plots(&rep, dir, &opt, f), LS_OK);
    fclose(f);
    assert_non_null(strstr(log, "loss curves: none yet"));
    assert_non_null(strstr(log, "forecasts: none yet"));
    free(log);
    ls_report_free(&rep);

    /* a file claiming 32M steps per trial is refused before anything is allocated for them */
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t d = H5Dopen2(file, "/curves/train_loss", H5P_DEFAULT);
    hsize_t dims[2] = {0, (hsize_t)1 << 25};
    assert_true(d >= 0 && H5Dset_extent(d, dims) >= 0);
    H5Dclose(d);
    H5Fclose(file);
    assert_int_equal(ls_report_load(path, &rep), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "damaged results file: 33554432 steps per trial"));
}

static void test_figures(void **state) {
    (void)state;
    ls_report rep;
    assert_int_equal(ls_report_load(results_path, &rep), LS_OK);
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/figs", temp_dir());
    ls_report_plot_options opt = {.stage = -1};
    FILE *log = fopen("/dev/null", "w");
    if (ls_report_plots(&rep, dir, &opt, log) != LS_OK) fail_msg("%s", ls_last_error());
    static const char *const names[] = {"loss_curves", "val_loss_heatmap", "forecast_0000000000000102",
                                        "flops_vs_val_loss"};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++) {
            struct stat st;
            snprintf(path, sizeof path, "%s/%s.%s", dir, names[i], k ? "svg" : "png");
            assert_int_equal(stat(path, &st), 0);
            assert_true(st.st_size > 2000);
        }
    struct stat none; /* no stage with early stopping: no rungs figure */
    snprintf(path, sizeof path, "%s/rungs_lr_rank.png", dir);
    assert_int_equal(stat(path, &none), -1);
    /* options checked before anything is drawn or printed */
    opt.n_systems = 1, opt.systems[0] = 8;
    assert_int_equal(ls_report_plot_check(&rep, &opt), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "did not forecast system 8 (it forecast 7,9)"));
    opt.systems[0] = 9, opt.trial_id = "00000000000001";
    assert_int_equal(ls_report_plot_check(&rep, &opt), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "more than one trial"));
    opt.trial_id = "0000000000000103";
    assert_int_equal(ls_report_plot_check(&rep, &opt), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "has no forecast"));
    opt.trial_id = "0000000000000101";
    assert_int_equal(ls_report_plot_check(&rep, &opt), LS_OK);
    /* a directory that cannot be made: one message, no crash */
    assert_int_equal(ls_report_plots(&rep, "/proc/no/such/dir", &opt, log), LS_ERR);
    assert_true(strlen(ls_last_error()) > 0);
    fclose(log);
    ls_report_free(&rep);
}

/* Early stopping: an ASHA stage (rungs 2, 4, 8) with a trial run to the top, one stopped at rung 1
 * whose curve in the file holds only its last segment (a trial paused and resumed rewrites its
 * validation points from the segment's first: the journal's decisions have the earlier rung), and
 * one stopped at rung 0. The section, JSON, CSV and figure; FLOPS to the end as ls_trial_estimate*
 * make them (the model's config.json written here), then unknown without the model. */
static const char es_grid[] = "name: es\n"
                              "base: {model: {path: m}, data: {path: d.h5}, train: {max_steps: 8, eval_every: 4}}\n"
                              "stages:\n"
                              "  - name: lr\n"
                              "    grid: {train.lr: [1.0e-2, 1.0e-3, 1.0e-4]}\n"
                              "    early_stopping: {type: asha, min_steps: 2, eta: 2}\n";

static void test_early_stopping(void **state) {
    (void)state;
    char path[4300], model[4300], cfg_path[4400];
    snprintf(path, sizeof path, "%s/es.h5", temp_dir());
    snprintf(model, sizeof model, "%s/es-model", temp_dir());
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", model);
    ls_model_config mc;
    assert_int_equal(ls_model_config_preset("tiny", &mc), LS_OK);
    assert_int_equal(ls_mkdirs(model), LS_OK);
    assert_int_equal(ls_model_config_save(cfg_path, &mc), LS_OK);
    ls_results_meta meta = {"es", es_grid, 0x77, "/nonexistent/d.h5", 0, 0};
    ls_results *r;
    assert_int_equal(ls_results_open(MPI_COMM_SELF, path, &meta, 0, &r, NULL), LS_OK);
    static const double lr[3] = {1e-2, 1e-3, 1e-4};
    static const int steps[3] = {8, 4, 2};
    static const double val[3] = {1.0, 1.6, 1.9}, spent[3] = {9e9, 4e9, 2e9};
    ls_trial_config cfg[3];
    ls_results_trial_spec specs[3];
    char *yaml[3];
    for (int i = 0; i < 3; i++) {
        ls_config_defaults(&cfg[i]);
        char buf[64];
        snprintf(buf, sizeof buf, "%g", lr[i]);
        assert_int_equal(ls_config_set(&cfg[i], "train.lr", buf), LS_OK);
        assert_int_equal(ls_config_set(&cfg[i], "train.max_steps", "8"), LS_OK);
        assert_int_equal(ls_config_set(&cfg[i], "train.eval_every", "4"), LS_OK);
        assert_int_equal(ls_config_set(&cfg[i], "model.path", model), LS_OK);
        assert_int_equal(ls_config_set(&cfg[i], "data.path", "/nonexistent/d.h5"), LS_OK);
        yaml[i] = ls_config_to_yaml(&cfg[i]);
        specs[i] = (ls_results_trial_spec){.id = 0x300 + (uint64_t)i, .stage = 0, .config_yaml = yaml[i], .lr = lr[i],
                                           .lora_rank = cfg[i].lora.rank, .ctx = cfg[i].train.ctx, .batch_size = 4,
                                           .max_steps = 8, .max_evals = 6};
    }
    assert_int_equal(ls_results_add_trials(r, specs, 3), LS_OK);
    for (int i = 0; i < 3; i++) {
        ls_result_metrics m;
        ls_result_metrics_init(&m);
        m.steps = steps[i], m.final_val_loss = val[i], m.flops_total = spent[i];
        assert_int_equal(ls_results_write_metrics(r, 0x300 + (uint64_t)i, &m), LS_OK);
        free(yaml[i]);
    }
    int s0[5] = {0, 2, 4, 6, 8}, s1[1] = {4}, s2[2] = {0, 2};
    float v0[5] = {3, 2.0f, 1.5f, 1.2f, 1.0f}, v1[1] = {1.6f}, v2[2] = {3, 1.9f};
    assert_int_equal(ls_results_write_evals(r, 0x300, 5, s0, v0), LS_OK);
    assert_int_equal(ls_results_write_evals(r, 0x301, 1, s1, v1), LS_OK); /* its last segment only */
    assert_int_equal(ls_results_write_evals(r, 0x302, 2, s2, v2), LS_OK);
    assert_int_equal(ls_results_write_status(r, 0x300, LS_RESULT_DONE, NULL), LS_OK);
    assert_int_equal(ls_results_write_status(r, 0x301, LS_RESULT_STOPPED, "stopped early at rung 1 (step 4): val 1.6"), LS_OK);
    assert_int_equal(ls_results_write_status(r, 0x302, LS_RESULT_STOPPED, "stopped early at rung 0 (step 2): val 1.9"), LS_OK);
    assert_int_equal(ls_results_close(r), LS_OK);
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job-es", &j), LS_OK);
    assert_int_equal(ls_journal_sweep_start(j, 0x77, "job-es"), LS_OK);
    const ls_journal_decision dec[] = {
        {0x300, LS_ES_PAUSED, 0, 2, 1, 2.0, NAN, 1e9},  {0x301, LS_ES_PAUSED, 0, 2, 2, 1.8, NAN, 1e9},
        {0x300, LS_ES_PROMOTED, 0, 2, 2, 2.0, 2.0, 1e9}, {0x302, LS_ES_PAUSED, 0, 2, 3, 1.9, 1.8, 1e9},
        {0x301, LS_ES_PROMOTED, 0, 2, 3, 1.8, 1.8, 1e9}, {0x300, LS_ES_PAUSED, 1, 4, 1, 1.5, NAN, 3e9},
        {0x301, LS_ES_PAUSED, 1, 4, 2, 1.6, 1.5, 3e9},   {0x300, LS_ES_PROMOTED, 1, 4, 2, 1.5, 1.5, 3e9},
        {0x301, LS_ES_STOPPED, 1, 4, 2, 1.6, NAN, 4e9},  {0x302, LS_ES_STOPPED, 0, 2, 3, 1.9, NAN, 2e9},
    };
    assert_int_equal(ls_journal_trial_start(j, 0x300, 1, 1, "host", -1), LS_OK);
    for (size_t d = 0; d < sizeof dec / sizeof *dec; d++) assert_int_equal(ls_journal_trial_decision(j, &dec[d]), LS_OK);
    ls_result_metrics m0;
    ls_result_metrics_init(&m0);
    m0.steps = 8, m0.final_val_loss = 1.0, m0.flops_total = spent[0];
    assert_int_equal(ls_journal_trial_done(j, 0x300, &m0), LS_OK);
    assert_int_equal(ls_journal_close(j), LS_OK);

    ls_report rep;
    if (ls_report_load(path, &rep) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(rep.stage_es[0].type, LS_GRID_ES_ASHA);
    assert_int_equal(rep.stage_es[0].n_rungs, 3);
    assert_int_equal(rep.stage_es[0].rungs[2], 8);
    const ls_report_trial *top = &rep.trials[find(&rep, 0x300)], *at1 = &rep.trials[find(&rep, 0x301)],
                          *at0 = &rep.trials[find(&rep, 0x302)];
    assert_int_equal(at1->status, LS_RESULT_STOPPED);
    assert_int_equal(at1->rung, 1);
    assert_int_equal(at0->rung, 0);
    assert_int_equal(top->rung, -1);
    assert_true(at1->rung_val[0] == 1.8 && at1->rung_val[1] == 1.6 && isnan(at1->rung_val[2])); /* rung 0: the journal's */
    assert_true(top->rung_val[0] == 2.0 && top->rung_val[1] == 1.5 && top->rung_val[2] == 1.0);
    /* to the end: a stopped trial's estimate to max_steps; the done one's own less its validation at rung 2 */
    double full[3], with_rungs;
    for (int i = 0; i < 3; i++) assert_int_equal(ls_trial_estimate_flops(&cfg[i], &full[i]), LS_OK);
    assert_int_equal(ls_trial_estimate_flops_rungs(&cfg[0], rep.stage_es[0].rungs, 3, 8, &with_rungs), LS_OK);
    assert_true(with_rungs > full[0]); /* step 2 is no multiple of eval_every: one validation more */
    assert_true(at1->flops_to_end == full[1] && at0->flops_to_end == full[2]);
    assert_true(fabs(top->flops_to_end - (spent[0] - (with_rungs - full[0]))) < 1e-6 * spent[0]);
    ls_report_savings sv;
    assert_int_equal(ls_report_stage_savings(&rep, 0, &sv), 1);
    assert_int_equal(sv.stopped, 2);
    double to_end = top->flops_to_end + full[1] + full[2];
    assert_true(sv.spent == spent[0] + spent[1] + spent[2] && fabs(sv.to_end - to_end) < 1e-9 * to_end);

    char *text = print_to_string(&rep, LS_REPORT_TABLE, -1);
    char *sec = strstr(text, "== Stopped early (early stopping)\n");
    assert_non_null(sec);
    char *a = strstr(sec, "0000000000000301  lr"), *b = strstr(sec, "0000000000000302  lr");
    assert_true(a && b && a < b); /* the furthest first */
    assert_null(strstr(sec, "0000000000000300  lr"));
    assert_non_null(strstr(sec, "asha, eta 2     2, 4, 8"));
    char saved[64];
    snprintf(saved, sizeof saved, "%.3g (%.1f%%)", to_end - sv.spent, 100 * (to_end - sv.spent) / to_end);
    assert_non_null(strstr(sec, saved));
    free(text);
    char *csv = print_to_string(&rep, LS_REPORT_CSV, -1);
    assert_non_null(strstr(csv, ",repeat,rung,flops_run_to_end\n"));
    char row_end[96];
    snprintf(row_end, sizeof row_end, ",0000000000000302,0,0,%.9g\n", full[2]);
    assert_non_null(strstr(csv, row_end));
    free(csv);
    char *json = print_to_string(&rep, LS_REPORT_JSON, -1);
    cJSON *root = cJSON_Parse(json);
    cJSON *stopped = cJSON_GetObjectItem(root, "stopped"), *first = cJSON_GetArrayItem(stopped, 0);
    assert_int_equal(cJSON_GetArraySize(stopped), 2);
    assert_string_equal(cJSON_GetObjectItem(first, "id")->valuestring, "0000000000000301");
    assert_int_equal(cJSON_GetObjectItem(first, "rung")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(first, "step")->valueint, 4);
    assert_true(cJSON_GetObjectItem(first, "flops_run_to_end")->valuedouble == full[1]);
    cJSON *fs = cJSON_GetObjectItem(root, "flops_saved");
    assert_true(fabs(cJSON_GetObjectItem(fs, "flops_saved")->valuedouble - (to_end - sv.spent)) < 1e-6 * to_end);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(fs, "stages"), 0), "rungs")), 3);
    cJSON_Delete(root);
    free(json);
    char dir[4400], png[4500];
    snprintf(dir, sizeof dir, "%s/es-figs", temp_dir());
    ls_report_plot_options opt = {.stage = -1};
    FILE *log = fopen("/dev/null", "w");
    assert_int_equal(ls_report_plots(&rep, dir, &opt, log), LS_OK);
    fclose(log);
    struct stat st;
    snprintf(png, sizeof png, "%s/rungs_lr.png", dir);
    assert_int_equal(stat(png, &st), 0);
    assert_true(st.st_size > 10000);
    ls_report_free(&rep);

    /* without the model: no estimate, said once; the saving unknown (null, "-"), the rest as before */
    assert_int_equal(unlink(cfg_path), 0);
    if (ls_report_load(path, &rep) != LS_OK) fail_msg("%s", ls_last_error());
    assert_non_null(strstr(rep.estimate_note, "config.json"));
    assert_true(isnan(rep.trials[find(&rep, 0x301)].flops_to_end));
    text = print_to_string(&rep, LS_REPORT_TABLE, -1);
    assert_non_null(strstr(text, "no estimate to the end: trial 0000000000000300"));
    free(text);
    json = print_to_string(&rep, LS_REPORT_JSON, -1);
    root = cJSON_Parse(json);
    fs = cJSON_GetObjectItem(root, "flops_saved");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(fs, "flops_saved")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(fs, "estimate_note")));
    cJSON_Delete(root);
    free(json);
    ls_report_free(&rep);
    for (int i = 0; i < 3; i++) ls_config_free(&cfg[i]);
}

static void test_plot_helpers(void **state) {
    (void)state;
    char buf[32];
    const struct {
        double v;
        const char *want;
    } cases[] = {{1e-5, "1e-05"}, {3e-3, "0.003"}, {12.5, "12.5"}, {3.2e16, "3.2e+16"},
                 {0, "0"},        {NAN, "n/a"},   {-2e-4, "-2e-04"}, {1e5, "1e+05"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ls_plot_format(cases[i].v, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
    ls_axes ax;
    ls_axes_place(&ax, 0, 0, 600, 400);
    double v[3] = {1e11, NAN, 1e13};
    ls_axes_fit_x(&ax, v, 3, -1, 1.0); /* two decades: log */
    assert_true(ax.xlog);
    assert_true(ax.xmin < 1e11 && ax.xmax > 1e13);
    double a = ls_axes_px(&ax, 1e11), b = ls_axes_px(&ax, 1e12), c = ls_axes_px(&ax, 1e13);
    assert_true(a > ax.x && c < ax.x + ax.w);
    assert_true(fabs((b - a) - (c - b)) < 1e-9); /* decades equally spaced */
    assert_true(isnan(ls_axes_px(&ax, -1)));
    double y[2] = {2.0, 3.0};
    ls_axes_fit_y(&ax, y, 2, -1, 1.0);
    assert_false(ax.ylog);
    assert_true(ls_axes_py(&ax, 3.0) < ls_axes_py(&ax, 2.0)); /* up is larger */
    double one = 5;
    ls_axes_fit_y(&ax, &one, 1, 0, 0); /* a single value still gets a range */
    assert_true(ax.ymin < 5 && ax.ymax > 5);
    ls_rgb lo = ls_plot_viridis(0), hi = ls_plot_viridis(1), mid = ls_plot_viridis(NAN);
    assert_true(lo.r < 0.3 && hi.r > 0.9 && mid.r == lo.r);
    for (int i = 0; i < 12; i++) /* neighbouring series colours differ */
        assert_true(fabs(ls_plot_color(i).r - ls_plot_color(i + 1).r) + fabs(ls_plot_color(i).g - ls_plot_color(i + 1).g) +
                        fabs(ls_plot_color(i).b - ls_plot_color(i + 1).b) > 0.2);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest setup[] = {cmocka_unit_test(test_plot_helpers)};
    int fails = cmocka_run_group_tests_name("plot", setup, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conclusions), cmocka_unit_test(test_live_sweep), cmocka_unit_test(test_without_journal),
        cmocka_unit_test(test_not_results), cmocka_unit_test(test_figures),  cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_repeats),     cmocka_unit_test(test_early_stopping),
    };
    fails += cmocka_run_group_tests_name("report", tests, make_results, NULL);
    ls_plot_release_caches(); /* cairo's and fontconfig's caches: no suppression hides our surfaces */
    MPI_Finalize();
    return test_exit_status(fails);
}
