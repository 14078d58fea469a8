/*
 * report.c: read a results file (and its journal) into an ls_report, and print it as a text
 * table, markdown, CSV or JSON. The figures are in report_plots.c.
 */
#define _DEFAULT_SOURCE /* major, minor */
#include "lorasweep/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/config.h"
#include "lorasweep/grid.h"
#include "lorasweep/plot.h"
#include "lorasweep/trial.h"

int ls_report_format_parse(const char *name, ls_report_format *out) {
    static const char *const names[] = {"table", "md", "csv", "json"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *out = (ls_report_format)i;
            return LS_OK;
        }
    if (!strcmp(name, "markdown")) {
        *out = LS_REPORT_MARKDOWN;
        return LS_OK;
    }
    return ls_error("--format: '%s' is not one of table, md, csv, json", name);
}

/* ================================================================ loading */

/* Stage names, the budget and the stages' repeats from the grid text the file keeps (the grid is
 * kept: a trial's configuration and repeat are found with it). A grid that no longer parses
 * (written by another version) still leaves a usable report: stages are then "stage N", and
 * every trial its own configuration. */
static void read_grid(ls_report *rep) {
    const char *text = rep->info.grid_text;
    if (!text || !*text) return;
    ls_grid *g = &rep->grid;
    if (ls_grid_load_string(text, strlen(text), "/grid", NULL, g) != LS_OK) return;
    rep->have_grid = 1;
    rep->budget_flops = g->budget_flops;
    rep->n_stages = (int)g->n_stages;
    rep->stage_names = ls_calloc(g->n_stages ? g->n_stages : 1, sizeof *rep->stage_names);
    rep->stage_ctx_axis = ls_calloc(g->n_stages ? g->n_stages : 1, sizeof *rep->stage_ctx_axis);
    rep->stage_from = ls_calloc(g->n_stages ? g->n_stages : 1, sizeof *rep->stage_from);
    rep->stage_es = ls_calloc(g->n_stages ? g->n_stages : 1, sizeof *rep->stage_es);
    for (size_t i = 0; i < g->n_stages; i++) {
        const ls_grid_stage *st = &g->stages[i];
        rep->stage_names[i] = ls_strdup(st->name);
        const ls_grid_early_stopping *es = &st->early_stopping;
        ls_report_es *e = &rep->stage_es[i];
        e->type = es->type;
        if (es->type != LS_GRID_ES_NONE) { /* the rungs as the sweep makes them (sweep_run.c): from base's max_steps */
            e->eta = es->eta;
            e->n_rungs = ls_es_rungs(es->min_steps, es->eta, g->base.train.max_steps, e->rungs, LS_ES_MAX_RUNGS);
        }
        rep->stage_from[i] = st->select_from;
        rep->repeated |= st->repeats > 1;
        for (size_t a = 0; a < st->n_axes; a++) rep->stage_ctx_axis[i] |= !strcmp(st->axes[a].key->key, "train.ctx");
        for (size_t p = 0; p < st->n_params; p++) rep->stage_ctx_axis[i] |= !strcmp(st->params[p].key->key, "train.ctx");
    }
}

/* The repeats a stage plans (1 without the grid or the stage). */
static int stage_repeats(const ls_report *rep, int stage) {
    if (!rep->have_grid || stage < 0 || (size_t)stage >= rep->grid.n_stages) return 1;
    return (int)rep->grid.stages[stage].repeats;
}

/* The stage list grows to cover every stage index in the file. */
static void ensure_stage(ls_report *rep, int stage) {
    if (stage < rep->n_stages || stage < 0 || stage > 1000) return;
    rep->stage_names = ls_realloc(rep->stage_names, (size_t)(stage + 1) * sizeof *rep->stage_names);
    rep->stage_ctx_axis = ls_realloc(rep->stage_ctx_axis, (size_t)(stage + 1) * sizeof *rep->stage_ctx_axis);
    rep->stage_from = ls_realloc(rep->stage_from, (size_t)(stage + 1) * sizeof *rep->stage_from);
    rep->stage_es = ls_realloc(rep->stage_es, (size_t)(stage + 1) * sizeof *rep->stage_es);
    for (int i = rep->n_stages; i <= stage; i++) {
        memset(&rep->stage_es[i], 0, sizeof rep->stage_es[i]); /* not in the grid: no early stopping known */
        rep->stage_ctx_axis[i] = -1; /* unknown: decided by its trials */
        rep->stage_from[i] = -1;
        char buf[32];
        snprintf(buf, sizeof buf, "stage %d", i);
        rep->stage_names[i] = ls_strdup(buf);
    }
    rep->n_stages = stage + 1;
}

/* Whether some process holds a lock on the file (Linux lists flock and POSIX locks with the
 * file's device and inode in /proc/locks). Looking never takes the lock, so a sweep starting at
 * this moment cannot be refused because of a report. */
static int file_is_locked(const char *path) {
    struct stat st;
    FILE *f = stat(path, &st) == 0 ? fopen("/proc/locks", "r") : NULL;
    if (!f) return 0;
    char line[256], want[64];
    snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino);
    int locked = 0;
    while (!locked && fgets(line, sizeof line, f)) {
        char dev[64] = "";
        /* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" ("->" marks a waiter: skip it) */
        if (strstr(line, "->")) continue;
        if (sscanf(line, "%*s %*s %*s %*s %*s %63s", dev) == 1 && !strcmp(dev, want)) locked = 1;
    }
    fclose(f);
    return locked;
}

/* A sweep is writing the results now when the lock file beside them is locked; its text says
 * which ("job J pid P host H"). */
static void read_lock(ls_report *rep, const char *lock_path) {
    if (!file_is_locked(lock_path)) return;
    size_t len = 0;
    char *text = ls_read_file(lock_path, &len);
    snprintf(rep->lock_owner, sizeof rep->lock_owner, "%s", text && len ? text : "a sweep");
    rep->lock_owner[strcspn(rep->lock_owner, "\n")] = '\0';
    free(text);
}

static int read_trial(ls_results *res, uint64_t id, ls_report_trial *t) {
    if (ls_results_read_row(res, id, &t->row) != LS_OK) return LS_ERR;
    t->stage = t->row.stage;
    t->status = t->row.status;
    t->baseline = t->row.max_steps == 0;
    t->message = ls_strdup(t->row.error);
    t->rung = -1;
    t->flops_to_end = NAN;
    t->config_yaml = ls_results_read_config(res, id);
    if (!t->config_yaml) return LS_ERR;
    t->config_ok = ls_config_load_string(t->config_yaml, strlen(t->config_yaml), "/trials/config", &t->config) == LS_OK;
    if (!t->config_ok) ls_config_defaults(&t->config);
    return LS_OK;
}

/* ---- early stopping ---- */

/* The early stopping of trial t's stage, or NULL when it has none. */
static const ls_report_es *trial_es(const ls_report *rep, const ls_report_trial *t) {
    if (!rep->stage_es || t->stage < 0 || t->stage >= rep->n_stages) return NULL;
    const ls_report_es *e = &rep->stage_es[t->stage];
    return e->type != LS_GRID_ES_NONE && e->n_rungs > 0 ? e : NULL;
}

static int rung_of_step(const ls_report_es *e, int step) {
    for (int k = 0; k < e->n_rungs; k++)
        if (e->rungs[k] == step) return k;
    return -1;
}

/* Each early-stopping trial's validation loss at the rungs, from its curve in the file: a first
 * take, since in a file written before the curve fix a trial paused and resumed kept only its last
 * segment's points there (the journal's decisions, read next, have every rung's value). A curve that cannot be read leaves
 * NaN: the report goes on without it. */
static void read_rung_values(ls_report *rep) {
    for (int i = 0; i < rep->n_trials; i++) {
        ls_report_trial *t = &rep->trials[i];
        const ls_report_es *e = trial_es(rep, t);
        if (!e) continue;
        t->rung_val = ls_malloc((size_t)e->n_rungs * sizeof *t->rung_val);
        for (int k = 0; k < e->n_rungs; k++) t->rung_val[k] = NAN;
        if (ls_report_load_curves(rep, i) != LS_OK) continue;
        for (int v = 0; v < t->n_val; v++) {
            int k = rung_of_step(e, t->val_step[v]);
            if (k >= 0) t->rung_val[k] = t->val_loss[v];
        }
        ls_report_unload(rep, i);
    }
}

/* The journal's early-stopping decisions hold the values at the rungs exactly: a trial's own
 * (arrived, stopped) or its configuration's (paused, continue, cut: the trial's own in a stage
 * without repeats). */
static void take_rung_decisions(ls_report *rep, const ls_journal_state *st) {
    for (int d = 0; d < st->n_decisions; d++) {
        const ls_journal_decision *dc = &st->decisions[d];
        int own = dc->verdict == LS_ES_ARRIVED || dc->verdict == LS_ES_STOPPED;
        int unit = dc->verdict == LS_ES_PAUSED || dc->verdict == LS_ES_CONTINUE || dc->verdict == LS_ES_CUT;
        int i = own || unit ? ls_results_row(rep->res, dc->trial_id) : -1; /* trials are in row order */
        if (i < 0) continue;
        ls_report_trial *t = &rep->trials[i];
        const ls_report_es *e = trial_es(rep, t);
        if (!e || !t->rung_val || dc->rung < 0 || dc->rung >= e->n_rungs) continue;
        if (own || stage_repeats(rep, t->stage) <= 1) t->rung_val[dc->rung] = dc->value;
    }
}

/* A stopped trial's rung is where its steps ended; there and at a done trial's top its final
 * validation loss is the value (the journal's summary). */
static void settle_rungs(ls_report *rep) {
    for (int i = 0; i < rep->n_trials; i++) {
        ls_report_trial *t = &rep->trials[i];
        const ls_report_es *e = trial_es(rep, t);
        if (!e || !t->rung_val) continue;
        if (t->status == LS_RESULT_STOPPED) t->rung = rung_of_step(e, t->row.metrics.steps);
        int k = t->status == LS_RESULT_STOPPED ? t->rung : t->status == LS_RESULT_DONE ? e->n_rungs - 1 : -1;
        if (k >= 0 && isfinite(t->row.metrics.final_val_loss)) t->rung_val[k] = t->row.metrics.final_val_loss;
    }
}

/* A stored config's relative paths resolve against the grid's directory, which the file keeps
 * only inside its data path ("<grid dir>/<data.path>", as the sweep resolved it): the model is
 * found from there too, wherever the report runs. Left as it is when the data path says nothing. */
static void rebase_config(const ls_report *rep, ls_report_trial *t) {
    const char *data = rep->info.data_path, *rel = t->config.data.path;
    size_t n = strlen(data), m = rel ? strlen(rel) : 0;
    if (m == 0 || rel[0] == '/' || n <= m + 1 || strcmp(data + n - m, rel) || data[n - m - 1] != '/') return;
    char *dir = ls_malloc(n - m);
    memcpy(dir, data, n - m - 1);
    dir[n - m - 1] = '\0';
    free(t->config.base_dir);
    t->config.base_dir = dir;
    static const char *const keys[] = {"model.path", "data.path"};
    for (int k = 0; k < 2; k++) { /* set again: resolved against the new base */
        char *v = ls_config_value_yaml(&t->config, ls_config_find(keys[k]));
        ls_config_set(&t->config, keys[k], v);
        free(v);
    }
}

/* What each trial of an early-stopping stage would have spent had the stage none
 * (ls_report_trial.flops_to_end), with the estimates `sweep plan` and the budget make
 * (ls_flops_estimate): one formula for planned and saved FLOPS. */
static void estimate_runs_to_end(ls_report *rep) {
    ls_flops_estimator est = {0}; /* the model's config and the data read once, not per trial */
    for (int i = 0; i < rep->n_trials; i++) {
        ls_report_trial *t = &rep->trials[i];
        const ls_report_es *e = trial_es(rep, t);
        if (!e) continue;
        double own = isfinite(t->row.metrics.flops_total) ? t->row.metrics.flops_total : 0;
        t->flops_to_end = own; /* failed, skipped, unfinished: what they spent either way */
        if (t->status != LS_RESULT_STOPPED && (t->status != LS_RESULT_DONE || t->baseline)) continue;
        double full = NAN, with_rungs = NAN;
        int ok = t->config_ok;
        if (ok) {
            rebase_config(rep, t);
            ok = isfinite(full = ls_flops_estimate(&est, &t->config, NULL, 0, t->config.train.max_steps, NULL));
        }
        /* a done trial paid for validations at the rungs a straight run does not make */
        if (ok && t->status == LS_RESULT_DONE)
            ok = isfinite(with_rungs = ls_flops_estimate(&est, &t->config, e->rungs, e->n_rungs,
                                                         t->config.train.max_steps, NULL));
        if (!ok) {
            t->flops_to_end = NAN;
            if (!rep->estimate_note[0])
                snprintf(rep->estimate_note, sizeof rep->estimate_note, "trial %016" PRIx64 ": %.480s", t->row.id,
                         t->config_ok ? est.error : "its stored configuration does not parse");
            continue;
        }
        t->flops_to_end = t->status == LS_RESULT_STOPPED ? full : own - (with_rungs - full);
    }
    ls_flops_estimator_free(&est);
}

int ls_report_stage_savings(const ls_report *rep, int s, ls_report_savings *out) {
    memset(out, 0, sizeof *out);
    if (s < 0 || s >= rep->n_stages || !rep->stage_es || rep->stage_es[s].type == LS_GRID_ES_NONE) return 0;
    for (int i = 0; i < rep->n_trials; i++) {
        const ls_report_trial *t = &rep->trials[i];
        if (t->stage != s) continue;
        out->trials++;
        out->stopped += t->status == LS_RESULT_STOPPED;
        if (isfinite(t->row.metrics.flops_total)) out->spent += t->row.metrics.flops_total;
        out->to_end += t->flops_to_end; /* NaN: unknown, and so the total */
    }
    return 1;
}

/* The journal's word on every trial: status, message, progress; "running" without a live sweep
 * is an interrupted trial. */
static void apply_journal(ls_report *rep, const char *journal_path) {
    if (access(journal_path, F_OK) != 0) {
        snprintf(rep->journal_note, sizeof rep->journal_note, "no journal beside the file: statuses are the file's copy");
        return;
    }
    ls_journal_state st;
    if (ls_journal_replay(journal_path, &st) != LS_OK) {
        snprintf(rep->journal_note, sizeof rep->journal_note, "journal not used (%s): statuses are the file's copy",
                 ls_last_error());
        return;
    }
    rep->have_journal = 1;
    int disagree = 0;
    for (int i = 0; i < rep->n_trials; i++) {
        ls_report_trial *t = &rep->trials[i];
        const ls_journal_trial *j = ls_journal_find(&st, t->row.id);
        t->status = j ? j->status : LS_RESULT_PENDING;
        if (!j) continue;
        t->attempts = j->attempts;
        t->progress_step = j->progress_step;
        if (j->message[0] && (j->status == LS_RESULT_FAILED || j->status == LS_RESULT_SKIPPED)) {
            free(t->message);
            t->message = ls_strdup(j->message);
        }
        /* a done trial's summary is the journal's (CRC-checked) wherever the file's copy differs */
        if (j->status == LS_RESULT_DONE && ls_result_metrics_take(&t->row.metrics, &j->metrics) > 0) disagree++;
    }
    if (st.discarded_bytes)
        snprintf(rep->journal_note, sizeof rep->journal_note, "the journal ends in %zu bytes of an unfinished record",
                 st.discarded_bytes);
    else if (disagree)
        snprintf(rep->journal_note, sizeof rep->journal_note,
                 "the results file disagrees with its journal on %d done trial%s: the journal's values are shown; "
                 "run the same `sweep run` again to repair the file", disagree, disagree == 1 ? "" : "s");
    take_rung_decisions(rep, &st);
    ls_journal_state_free(&st);
}

/* Keys whose values differ between the file's trials, besides those with columns of their own:
 * a stage whose axis is lora.alpha must not show trials that look identical. */
static void find_varying(ls_report *rep) {
    static const char *const own_columns[] = {"name", "train.lr", "lora.rank", "train.ctx", "train.max_steps"};
    size_t n_keys;
    const ls_config_key *keys = ls_config_keys(&n_keys);
    rep->n_varying = 0;
    for (size_t k = 0; k < n_keys && rep->n_varying < LS_REPORT_MAX_VARYING; k++) {
        int own = 0;
        for (size_t c = 0; c < sizeof own_columns / sizeof *own_columns; c++) own |= !strcmp(keys[k].key, own_columns[c]);
        if (own) continue;
        char *first = NULL;
        int differs = 0, seed = !strcmp(keys[k].key, "train.seed") || !strcmp(keys[k].key, "lora.seed");
        for (int i = 0; i < rep->n_trials && !differs; i++) {
            if (!rep->trials[i].config_ok) continue;
            if (seed && rep->trials[i].repeat > 0) continue; /* a repeat's seeds: its repeat column says it */
            char *v = ls_config_value_yaml(&rep->trials[i].config, &keys[k]);
            if (!first) first = v;
            else differs = strcmp(first, v) != 0, free(v);
        }
        free(first);
        if (differs) rep->varying[rep->n_varying++] = &keys[k];
    }
}

int ls_report_stage_unfinished(const ls_report *rep, int s) {
    int left = 0;
    for (int i = 0; i < rep->n_trials; i++)
        left += rep->trials[i].stage == s &&
                (rep->trials[i].status == LS_RESULT_PENDING || rep->trials[i].status == LS_RESULT_RUNNING);
    return left;
}

void ls_report_value(const ls_report_trial *t, const ls_config_key *key, char *buf, size_t cap) {
    if (!t->config_ok) {
        snprintf(buf, cap, "?");
        return;
    }
    char *v = ls_config_value_yaml(&t->config, key);
    size_t n = strlen(v);
    int quoted = n >= 2 && v[0] == '"' && v[n - 1] == '"'; /* a string: its text */
    snprintf(buf, cap, "%.*s", (int)(quoted ? n - 2 : n), quoted ? v + 1 : v);
    free(v);
}

/* ---- configurations ---- */

static ls_report_stat stat_of(const double *v, int n) {
    ls_report_stat st = {0, NAN, NAN};
    double sum = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    st.n = n;
    if (n == 0) return st;
    st.mean = sum / n;
    if (n < 2) return st;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (v[i] - st.mean) * (v[i] - st.mean);
    st.std = sqrt(ss / (n - 1));
    return st;
}

/* The value of statistic k in a trial's summary. */
static double stat_value(const ls_report_trial *t, int k) {
    const ls_result_metrics *m = &t->row.metrics;
    if (k == LS_REPORT_STAT_VAL_LOSS) return m->final_val_loss;
    if (k < LS_REPORT_STAT_MAE) return m->mse[k - LS_REPORT_STAT_MSE];
    if (k < LS_REPORT_STAT_FLOPS) return m->mae[k - LS_REPORT_STAT_MAE];
    return m->flops_total;
}

typedef struct {
    int stage, repeat, trial;
    uint64_t id;
} config_key;

static int by_config_key(const void *pa, const void *pb) {
    const config_key *a = pa, *b = pb;
    if (a->stage != b->stage) return a->stage < b->stage ? -1 : 1;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    if (a->repeat != b->repeat) return a->repeat < b->repeat ? -1 : 1;
    return (a->trial > b->trial) - (a->trial < b->trial);
}

static int by_first_trial(const void *pa, const void *pb) {
    const ls_report_config *a = pa, *b = pb;
    if (a->stage != b->stage) return a->stage < b->stage ? -1 : 1;
    return (a->trials[0] > b->trials[0]) - (a->trials[0] < b->trials[0]);
}

/* Which configuration and repeat of stage `stage` trial t is: (its id, 0) in a stage without
 * repeats; LS_ERR when it has the seeds of none of the stage's repeats. */
static int trial_configuration(const ls_report *rep, const ls_report_trial *t, int stage, uint64_t *id, int *repeat) {
    *id = t->row.id;
    *repeat = 0;
    if (stage_repeats(rep, stage) <= 1) return LS_OK;
    size_t r;
    if (!t->config_ok || ls_grid_configuration_of(&rep->grid, (size_t)stage, &t->config, id, &r) != LS_OK) {
        *id = t->row.id;
        *repeat = -1;
        return LS_ERR;
    }
    *repeat = (int)r;
    return LS_OK;
}

/* Every trial's configuration (of the stage its row names), the configurations' members (a
 * repeat an earlier stage ran joins the later stage's configuration too) and statistics. */
static void group_configurations(ls_report *rep) {
    int n = rep->n_trials;
    config_key *k = ls_calloc((size_t)(n ? n : 1), sizeof *k);
    for (int i = 0; i < n; i++) {
        k[i].stage = rep->trials[i].stage, k[i].trial = i;
        trial_configuration(rep, &rep->trials[i], k[i].stage, &k[i].id, &k[i].repeat);
        rep->trials[i].repeat = k[i].repeat;
    }
    qsort(k, (size_t)n, sizeof *k, by_config_key);
    rep->configs = ls_calloc((size_t)(n ? n : 1), sizeof *rep->configs);
    for (int i = 0; i < n; i++) {
        int fresh = i == 0 || k[i].stage != k[i - 1].stage || k[i].id != k[i - 1].id || k[i].repeat < 0;
        if (fresh) {
            ls_report_config *c = &rep->configs[rep->n_configs++];
            c->id = k[i].id;
            c->stage = k[i].stage;
            c->repeats = k[i].repeat < 0 ? 1 : stage_repeats(rep, c->stage);
            c->trials = ls_malloc((size_t)c->repeats * sizeof *c->trials);
            for (int r = 0; r < c->repeats; r++) c->trials[r] = -1;
        }
        ls_report_config *c = &rep->configs[rep->n_configs - 1];
        int r = k[i].repeat < 0 ? 0 : k[i].repeat;
        if (r < c->repeats && c->trials[r] < 0) c->trials[r] = k[i].trial;
    }
    free(k);
    /* repeats a later stage shares with an earlier one: one trial, whose row names the earlier stage */
    for (int c = 0; c < rep->n_configs; c++) {
        ls_report_config *cf = &rep->configs[c];
        for (int r = 0; r < cf->repeats; r++) {
            if (cf->trials[r] >= 0) continue;
            for (int i = 0; i < n; i++) {
                uint64_t id;
                int rr;
                if (rep->trials[i].stage == cf->stage ||
                    trial_configuration(rep, &rep->trials[i], cf->stage, &id, &rr) != LS_OK || id != cf->id || rr != r)
                    continue;
                cf->trials[r] = i;
                break;
            }
        }
        /* the trials present, by repeat */
        int m = 0;
        for (int r = 0; r < cf->repeats; r++)
            if (cf->trials[r] >= 0) cf->trials[m++] = cf->trials[r];
        cf->n_trials = m;
    }
    qsort(rep->configs, (size_t)rep->n_configs, sizeof *rep->configs, by_first_trial);
    double *v = ls_malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int c = 0; c < rep->n_configs; c++) {
        ls_report_config *cf = &rep->configs[c];
        cf->first = cf->trials[0];
        int finite = 0;
        for (int m = cf->n_trials - 1; m >= 0; m--) {
            const ls_report_trial *t = &rep->trials[cf->trials[m]];
            if (t->stage == cf->stage) rep->trials[cf->trials[m]].configuration = c;
            if (t->status != LS_RESULT_DONE) continue;
            cf->done++;
            cf->first = cf->trials[m];
            finite += isfinite(t->row.metrics.final_val_loss);
        }
        cf->baseline = rep->trials[cf->first].baseline;
        cf->complete = cf->n_trials == cf->repeats && finite == cf->repeats;
        for (int s = 0; s < LS_REPORT_N_STATS; s++) {
            int nv = 0;
            for (int m = 0; m < cf->n_trials; m++) {
                const ls_report_trial *t = &rep->trials[cf->trials[m]];
                double x = stat_value(t, s);
                if (t->status == LS_RESULT_DONE && isfinite(x)) v[nv++] = x;
            }
            cf->stat[s] = stat_of(v, nv);
        }
    }
    free(v);
}

/* The best trained configuration: complete ones first (all repeats done), then the lowest mean
 * final validation loss; ties to the earlier one. */
static void find_best(ls_report *rep) {
    rep->best_config = rep->baseline_config = -1;
    for (int c = 0; c < rep->n_configs; c++) {
        const ls_report_config *cf = &rep->configs[c];
        if (rep->baseline >= 0 && rep->trials[rep->baseline].configuration == c) rep->baseline_config = c;
        double m = cf->stat[LS_REPORT_STAT_VAL_LOSS].mean;
        if (cf->baseline || !cf->done || isnan(m)) continue;
        const ls_report_config *b = rep->best_config >= 0 ? &rep->configs[rep->best_config] : NULL;
        if (!b || cf->complete > b->complete ||
            (cf->complete == b->complete && m < b->stat[LS_REPORT_STAT_VAL_LOSS].mean))
            rep->best_config = c;
    }
    rep->best = rep->best_config >= 0 ? rep->configs[rep->best_config].first : -1;
}

static void summarise(ls_report *rep) {
    group_configurations(rep);
    find_varying(rep);
    rep->best = rep->baseline = -1;
    for (int i = 0; i < rep->n_trials; i++) {
        ls_report_trial *t = &rep->trials[i];
        ensure_stage(rep, t->stage);
        if (t->stage >= rep->n_started && t->stage < LS_GRID_MAX_STAGES) rep->n_started = t->stage + 1; /* no overflow */
        t->stage_name = t->stage >= 0 && t->stage < rep->n_stages ? rep->stage_names[t->stage] : "?";
        if (t->status >= 0 && t->status <= LS_RESULT_STOPPED) rep->counts[t->status]++;
        if (t->status == LS_RESULT_RUNNING) {
            t->live = rep->lock_owner[0] != 0;
            if (!t->live) rep->interrupted++;
        }
        if (t->status != LS_RESULT_DONE) continue;
        if (t->baseline && (rep->baseline < 0 || t->stage > rep->trials[rep->baseline].stage)) rep->baseline = i;
    }
    find_best(rep);
    settle_rungs(rep);
    estimate_runs_to_end(rep);
}

/* ---- series, read when a figure needs them ------------------------------------------------ */

int ls_report_load_curves(ls_report *rep, int i) {
    ls_report_trial *t = &rep->trials[i];
    if (t->train_loss) return LS_OK;
    uint64_t id = t->row.id;
    int cap = t->row.max_steps > 0 ? t->row.max_steps : 1, ecap = ls_results_evals_width(rep->res);
    t->train_loss = ls_malloc((size_t)cap * sizeof *t->train_loss);
    t->val_step = ls_malloc((size_t)(ecap > 0 ? ecap : 1) * sizeof *t->val_step);
    t->val_loss = ls_malloc((size_t)(ecap > 0 ? ecap : 1) * sizeof *t->val_loss);
    if (ls_results_read_train_loss(rep->res, id, t->train_loss, cap, &t->n_train) != LS_OK ||
        ls_results_read_evals(rep->res, id, t->val_step, t->val_loss, ecap, &t->n_val) != LS_OK) {
        ls_report_unload(rep, i);
        return ls_error_prefix("%s: trial %016" PRIx64, rep->path, id);
    }
    int n = 0; /* unused validation slots are step -1 */
    while (n < t->n_val && t->val_step[n] >= 0) n++;
    t->n_val = n;
    return LS_OK;
}

int ls_report_load_forecast(ls_report *rep, int i) {
    ls_report_trial *t = &rep->trials[i];
    if (t->fc_mean || t->S < 0) return LS_OK;
    if (ls_results_read_forecast(rep->res, t->row.id, &t->S, &t->H, &t->systems, &t->fc_mean, &t->fc_std,
                                 &t->fc_truth) != LS_OK) {
        t->S = -1; /* tried */
        return ls_error_prefix("%s: trial %016" PRIx64, rep->path, t->row.id);
    }
    return LS_OK;
}

void ls_report_unload(ls_report *rep, int i) {
    ls_report_trial *t = &rep->trials[i];
    free(t->train_loss), free(t->val_step), free(t->val_loss);
    free(t->systems), free(t->fc_mean), free(t->fc_std), free(t->fc_truth);
    t->train_loss = t->val_loss = NULL, t->val_step = NULL, t->n_train = t->n_val = 0;
    t->systems = NULL, t->fc_mean = t->fc_std = t->fc_truth = NULL, t->S = t->H = 0;
}

int ls_report_load(const char *path, ls_report *rep) {
    memset(rep, 0, sizeof *rep);
    rep->best = rep->baseline = rep->best_config = rep->baseline_config = -1;
    snprintf(rep->path, sizeof rep->path, "%s", path);
    if (access(path, R_OK) != 0) return ls_error("%s: %s", path, strerror(errno));
    ls_results *res = NULL;
    if (ls_results_open(MPI_COMM_SELF, path, NULL, LS_RESULTS_READONLY, &res, NULL) != LS_OK) {
        /* the HDF5 layer's message names the file and what is wrong with it; a file caught in
         * the middle of a sweep's update is not damaged: say so */
        char journal[4200], lock[4200], why[1024];
        ls_journal_paths(path, journal, sizeof journal, lock, sizeof lock);
        if (file_is_locked(lock)) {
            snprintf(why, sizeof why, "%s", ls_last_error());
            ls_error("%s; a sweep is writing it now: run the report again in a moment", why);
        }
        return LS_ERR;
    }
    ls_results_read_info(res, &rep->info);
    read_grid(rep);
    rep->n_trials = ls_results_n_trials(res);
    rep->trials = ls_calloc(rep->n_trials ? (size_t)rep->n_trials : 1, sizeof *rep->trials);
    int rc = LS_OK;
    for (int i = 0; i < rep->n_trials && rc == LS_OK; i++)
        if (read_trial(res, ls_results_id(res, i), &rep->trials[i]) != LS_OK)
            rc = ls_error_prefix("%s: cannot read trial %016" PRIx64, path, ls_results_id(res, i));
    rep->res = res; /* kept open: curves and forecasts are read when a figure asks (ls_report_load_curves) */
    if (rc != LS_OK) {
        ls_report_free(rep);
        return LS_ERR;
    }
    char journal[4200], lock[4200];
    ls_journal_paths(path, journal, sizeof journal, lock, sizeof lock);
    read_lock(rep, lock);
    read_rung_values(rep);
    apply_journal(rep, journal);
    summarise(rep);
    return LS_OK;
}

void ls_report_free(ls_report *rep) {
    for (int i = 0; i < rep->n_trials; i++) {
        ls_report_trial *t = &rep->trials[i];
        ls_report_unload(rep, i);
        free(t->message), free(t->config_yaml), free(t->rung_val);
        if (t->config_yaml) ls_config_free(&t->config); /* parsed or defaulted once the text was read */
    }
    if (rep->res) ls_results_close(rep->res);
    free(rep->trials);
    for (int i = 0; i < rep->n_stages; i++) free(rep->stage_names[i]);
    free(rep->stage_names);
    free(rep->stage_ctx_axis);
    free(rep->stage_from);
    free(rep->stage_es);
    for (int c = 0; c < rep->n_configs; c++) free(rep->configs[c].trials);
    free(rep->configs);
    if (rep->have_grid) ls_grid_free(&rep->grid);
    ls_results_info_free(&rep->info);
    memset(rep, 0, sizeof *rep);
    rep->best = rep->baseline = rep->best_config = rep->baseline_config = -1;
}

int ls_report_stage_find(const ls_report *rep, const char *name) {
    for (int i = 0; i < rep->n_stages; i++)
        if (!strcmp(rep->stage_names[i], name)) return i;
    return -1;
}

/* ================================================================ formatting helpers */

/* A trial's status as people read it: "done", "failed", "running (step 12/20)", "interrupted at
 * step 12/20", "pending". */
static void status_text(const ls_report_trial *t, char *buf, size_t cap) {
    switch (t->status) {
    case LS_RESULT_RUNNING:
        if (t->progress_step > 0)
            snprintf(buf, cap, "%s at step %d/%d", t->live ? "running" : "interrupted", t->progress_step,
                     t->row.max_steps);
        else snprintf(buf, cap, "%s", t->live ? "running" : "interrupted");
        break;
    default: snprintf(buf, cap, "%s", ls_result_status_name(t->status)); break;
    }
}

/* Short numbers for tables: NaN is "-". */
static void num(char *buf, size_t cap, const char *fmt, double v) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, fmt, v);
}

static void wall_text(char *buf, size_t cap, double s) {
    if (isnan(s)) snprintf(buf, cap, "-");
    else if (s < 120) snprintf(buf, cap, "%.1f s", s);
    else if (s < 7200) snprintf(buf, cap, "%.1f min", s / 60);
    else snprintf(buf, cap, "%.2f h", s / 3600);
}

/* A table of strings printed aligned (text) or as a pipe table (markdown). */
#define TABLE_MAX_COLS (16 + LS_REPORT_MAX_VARYING)
typedef struct {
    int cols, rows, cap;
    const char *head[TABLE_MAX_COLS];
    int right[TABLE_MAX_COLS]; /* right-aligned (numbers) */
    char **cells;
} table;

/* The headings of a table: the fixed columns with n_extra more (right-aligned) after column `at`
 * (the keys that vary between trials go after ctx). Returns the number of columns. */
static int table_headings(const char *const *fixed, const int *fixed_right, int n_fixed, int at,
                          const char *const *extra, int n_extra, const char **head, int *right) {
    int cols = n_fixed + n_extra;
    for (int c = 0; c < cols; c++) {
        int f = c < at ? c : c < at + n_extra ? -1 : c - n_extra;
        head[c] = f >= 0 ? fixed[f] : extra[c - at];
        right[c] = f >= 0 ? fixed_right[f] : 1;
    }
    return cols;
}

static void table_init(table *t, int cols, const char *const *head, const int *right) {
    memset(t, 0, sizeof *t);
    t->cols = cols;
    for (int c = 0; c < cols; c++) t->head[c] = head[c], t->right[c] = right ? right[c] : 0;
}

static void table_row(table *t, const char *const *cells) {
    if (t->rows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cells = ls_realloc(t->cells, (size_t)t->cap * (size_t)t->cols * sizeof *t->cells);
    }
    for (int c = 0; c < t->cols; c++) t->cells[(size_t)t->rows * (size_t)t->cols + (size_t)c] = ls_strdup(cells[c]);
    t->rows++;
}

/* Characters a UTF-8 string shows ("±" is two bytes, one column). */
static size_t text_width(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* s padded to width columns, on the right (left-aligned) or the left. */
static void put_padded(FILE *out, const char *s, size_t width, int right) {
    size_t n = text_width(s);
    if (right)
        for (; n < width; n++) fputc(' ', out);
    fputs(s, out);
    if (!right)
        for (; n < width; n++) fputc(' ', out);
}

static void table_print(FILE *out, table *t, int markdown) {
    size_t w[TABLE_MAX_COLS];
    for (int c = 0; c < t->cols; c++) {
        w[c] = text_width(t->head[c]);
        for (int r = 0; r < t->rows; r++) {
            size_t n = text_width(t->cells[(size_t)r * (size_t)t->cols + (size_t)c]);
            if (n > w[c]) w[c] = n;
        }
    }
    for (int r = -1; r < t->rows; r++) {
        if (markdown) fputs("|", out);
        for (int c = 0; c < t->cols; c++) {
            const char *s = r < 0 ? t->head[c] : t->cells[(size_t)r * (size_t)t->cols + (size_t)c];
            if (markdown) {
                fputc(' ', out);
                put_padded(out, s, w[c], t->right[c]);
                fputs(" |", out);
            } else if (c == t->cols - 1 && !t->right[c]) fprintf(out, "%s%s", c ? "  " : "", s);
            else {
                if (c) fputs("  ", out);
                put_padded(out, s, w[c], t->right[c]);
            }
        }
        fputc('\n', out);
        if (r < 0 && markdown) {
            fputs("|", out);
            for (int c = 0; c < t->cols; c++) {
                fputc(' ', out);
                for (size_t k = 0; k + 1 < w[c]; k++) fputc('-', out);
                fputs(t->right[c] ? ":" : "-", out);
                fputs(" |", out);
            }
            fputc('\n', out);
        }
    }
    for (int i = 0; i < t->rows * t->cols; i++) free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

static void heading(FILE *out, int markdown, const char *text) {
    if (markdown) fprintf(out, "\n## %s\n\n", text);
    else fprintf(out, "\n== %s\n", text);
}

/* Losses x of index i and y of index j in ascending order, unmeasured (NaN) last, then by index. */
static int by_loss_then_index(double x, double y, int i, int j) {
    if (isnan(x) != isnan(y)) return isnan(x) ? 1 : -1;
    if (!isnan(x) && x != y) return x < y ? -1 : 1;
    return (i > j) - (i < j);
}

/* Trial indices to show, sorted by final validation loss (unmeasured last, then file order). */
static const ls_report *sort_rep;
static int by_val_loss(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    return by_loss_then_index(sort_rep->trials[i].row.metrics.final_val_loss,
                              sort_rep->trials[j].row.metrics.final_val_loss, i, j);
}

static int *sorted_trials(const ls_report *rep, int stage, int *n) {
    int *idx = ls_malloc((size_t)(rep->n_trials ? rep->n_trials : 1) * sizeof *idx);
    *n = 0;
    for (int i = 0; i < rep->n_trials; i++)
        if (ls_report_shows(&rep->trials[i], stage)) idx[(*n)++] = i;
    sort_rep = rep;
    qsort(idx, (size_t)*n, sizeof *idx, by_val_loss);
    return idx;
}

/* ================================================================ text and markdown */

static void print_header(FILE *out, const ls_report *rep, int markdown, int stage) {
    const ls_results_info *in = &rep->info;
    if (markdown) fprintf(out, "# Sweep report: %s\n\n", in->sweep_name[0] ? in->sweep_name : rep->path);
    else fprintf(out, "lorasweep report: %s\n", rep->path);
    const char *li = markdown ? "- " : "  ";
    fprintf(out, "%ssweep %s, grid %s, created %s by lorasweep %s\n", li, in->sweep_name, in->grid_hash, in->created,
            in->program_version);
    fprintf(out, "%sdata %s (%s)\n", li, in->data_path[0] ? in->data_path : "-", in->data_checksum);
    if (markdown) fprintf(out, "- file `%s`\n", rep->path);
    fprintf(out, "%strials: %d: %d done, %d running, %d pending, %d failed, %d skipped", li, rep->n_trials,
            rep->counts[LS_RESULT_DONE], rep->counts[LS_RESULT_RUNNING], rep->counts[LS_RESULT_PENDING],
            rep->counts[LS_RESULT_FAILED], rep->counts[LS_RESULT_SKIPPED]);
    if (rep->counts[LS_RESULT_STOPPED]) fprintf(out, ", %d stopped early", rep->counts[LS_RESULT_STOPPED]);
    fputc('\n', out);
    if (stage >= 0) fprintf(out, "%sshowing stage %s only\n", li, rep->stage_names[stage]);
    /* what is unfinished, and why */
    int open = rep->counts[LS_RESULT_RUNNING] + rep->counts[LS_RESULT_PENDING];
    if (rep->lock_owner[0])
        fprintf(out, "%sUNFINISHED: a sweep is writing this file now (%s); this is a snapshot\n", li, rep->lock_owner);
    else if (rep->interrupted || open)
        fprintf(out, "%sUNFINISHED: %d interrupted, %d pending; run the same `sweep run` again to resume\n", li,
                rep->interrupted, rep->counts[LS_RESULT_PENDING]);
    for (int s = rep->n_started; s < rep->n_stages; s++) {
        int from = rep->stage_from[s], left = from >= 0 ? ls_report_stage_unfinished(rep, from) : 0;
        if (left) /* a stage hands on a winner only once all its trials ended */
            fprintf(out, "%sstage %s: not started yet: stage %s has no winner while %d of its trials %s unfinished\n",
                    li, rep->stage_names[s], rep->stage_names[from], left, left == 1 ? "is" : "are");
        else fprintf(out, "%sstage %s: not started yet\n", li, rep->stage_names[s]);
    }
    if (rep->journal_note[0]) fprintf(out, "%snote: %s\n", li, rep->journal_note);
}

/* A trial's repeat for a table: "1 of 3" in a stage with repeats, "-" in one without. */
static void repeat_text(const ls_report *rep, const ls_report_trial *t, char *buf, size_t cap) {
    int k = stage_repeats(rep, t->stage);
    if (k <= 1) snprintf(buf, cap, "-");
    else if (t->repeat < 0) snprintf(buf, cap, "?");
    else snprintf(buf, cap, "%d of %d", t->repeat, k);
}

/* "1.2345 ± 0.0123" (mean ± standard deviation), "1.2345" (n = 1), "-" (n = 0). */
static void stat_text(char *buf, size_t cap, const char *fmt, ls_report_stat st) {
    char m[24], d[24]; /* each cut to fit the cells of 64 bytes */
    if (st.n == 0) {
        snprintf(buf, cap, "-");
        return;
    }
    snprintf(m, sizeof m, fmt, st.mean);
    if (st.n < 2) {
        snprintf(buf, cap, "%s", m);
        return;
    }
    snprintf(d, sizeof d, fmt, st.std);
    snprintf(buf, cap, "%s ± %s", m, d);
}

static void print_trials(FILE *out, const ls_report *rep, int markdown, int stage) {
    heading(out, markdown, "Trials by final validation loss");
    /* the fixed columns, with the varying keys after ctx */
    enum { FIXED = 14, AFTER_CTX = 6 };
    static const char *const fixed[FIXED] = {"#",   "id",  "stage", "lr",    "rank",     "ctx",  "steps",
                                             "train loss", "val loss", "MSE", "MAE", "FLOPS", "wall", "status"};
    static const int fixed_right[FIXED] = {1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    /* after ctx: the repeat (a grid with repeats), then the varying keys */
    int rc = rep->repeated, nv = rep->n_varying + rc;
    const char *extra[LS_REPORT_MAX_VARYING + 1], *head[TABLE_MAX_COLS];
    if (rc) extra[0] = "repeat";
    for (int j = 0; j < rep->n_varying; j++) extra[rc + j] = rep->varying[j]->key;
    int right[TABLE_MAX_COLS], cols = table_headings(fixed, fixed_right, FIXED, AFTER_CTX, extra, nv, head, right);
    table t;
    table_init(&t, cols, head, right);
    int n;
    int *idx = sorted_trials(rep, stage, &n);
    for (int k = 0; k < n; k++) {
        const ls_report_trial *tr = &rep->trials[idx[k]];
        const ls_result_metrics *m = &tr->row.metrics;
        char c[FIXED][64], v[LS_REPORT_MAX_VARYING + 1][64];
        snprintf(c[0], 64, "%d", k + 1);
        snprintf(c[1], 64, "%016" PRIx64 "%s", tr->row.id, idx[k] == rep->best ? " *" : "");
        snprintf(c[2], 64, "%s", tr->stage_name);
        ls_plot_format_e_digits(tr->row.lr, LS_GRID_SAMPLE_DIGITS, c[3], 64);
        snprintf(c[4], 64, "%d", tr->row.lora_rank);
        if (tr->baseline) snprintf(c[3], 64, "-"), snprintf(c[4], 64, "-"); /* nothing trained */
        snprintf(c[5], 64, "%d", tr->row.ctx);
        if (tr->status == LS_RESULT_DONE || m->steps > 0) snprintf(c[6], 64, "%d/%d", m->steps, tr->row.max_steps);
        else snprintf(c[6], 64, "-/%d", tr->row.max_steps);
        num(c[7], 64, "%.4f", m->final_train_loss);
        num(c[8], 64, "%.4f", m->final_val_loss);
        num(c[9], 64, "%.4g", m->mse[LS_METRIC_BOTH]);
        num(c[10], 64, "%.4g", m->mae[LS_METRIC_BOTH]);
        num(c[11], 64, "%.3g", m->flops_total);
        wall_text(c[12], 64, m->wall_seconds);
        status_text(tr, c[13], 64);
        if (tr->baseline) snprintf(c[13] + strlen(c[13]), 64 - strlen(c[13]), " (untrained baseline)");
        if (rc) repeat_text(rep, tr, v[0], 64);
        for (int j = 0; j < rep->n_varying; j++) ls_report_value(tr, rep->varying[j], v[j + rc], 64);
        const char *row[TABLE_MAX_COLS];
        for (int i = 0; i < cols; i++) row[i] = i < AFTER_CTX ? c[i] : i < AFTER_CTX + nv ? v[i - AFTER_CTX] : c[i - nv];
        table_row(&t, row);
    }
    if (n == 0) fprintf(out, "(no trials)\n");
    else table_print(out, &t, markdown);
    if (rep->best >= 0 && ls_report_shows(&rep->trials[rep->best], stage))
        fprintf(out, "%s* best trained trial. MSE and MAE: forecast of both variables, mean over the test systems.\n",
                markdown ? "\n" : "");
    free(idx);
}

/* Configuration indices to show (of the stage, or all): those complete first (they compete), by
 * mean final validation loss (none last), then file order. */
static const ls_report *sort_cfg_rep;
static int by_mean_val_loss(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    const ls_report_config *ci = &sort_cfg_rep->configs[i], *cj = &sort_cfg_rep->configs[j];
    if (ci->complete != cj->complete) return ci->complete ? -1 : 1; /* a ranking of those that compete */
    return by_loss_then_index(ci->stat[LS_REPORT_STAT_VAL_LOSS].mean, cj->stat[LS_REPORT_STAT_VAL_LOSS].mean, i, j);
}

static int *sorted_configs(const ls_report *rep, int stage, int *n) {
    int *idx = ls_malloc((size_t)(rep->n_configs ? rep->n_configs : 1) * sizeof *idx);
    *n = 0;
    for (int c = 0; c < rep->n_configs; c++)
        if (stage < 0 || rep->configs[c].stage == stage) idx[(*n)++] = c;
    sort_cfg_rep = rep;
    qsort(idx, (size_t)*n, sizeof *idx, by_mean_val_loss);
    return idx;
}

/* "complete", "2 of 3 done", "1 failed, 2 done", "running". */
static void config_status(const ls_report *rep, const ls_report_config *c, char *buf, size_t cap) {
    int failed = 0, skipped = 0, open = 0;
    for (int m = 0; m < c->n_trials; m++) {
        ls_result_status st = rep->trials[c->trials[m]].status;
        failed += st == LS_RESULT_FAILED, skipped += st == LS_RESULT_SKIPPED;
        open += st == LS_RESULT_PENDING || st == LS_RESULT_RUNNING;
    }
    if (c->complete) snprintf(buf, cap, "complete");
    else if (failed) snprintf(buf, cap, "%d failed, %d of %d done", failed, c->done, c->repeats);
    else if (skipped) snprintf(buf, cap, "skipped");
    else snprintf(buf, cap, "%d of %d done%s", c->done, c->repeats, open ? "" : " (no finite loss)");
}

/* Configurations over their repeats: mean ± standard deviation and n (a grid with repeats). */
static void print_configs(FILE *out, const ls_report *rep, int markdown, int stage) {
    if (!rep->repeated) return;
    heading(out, markdown, "Configurations by mean final validation loss (over their repeats)");
    enum { FIXED = 12, AFTER_CTX = 6 };
    static const char *const fixed[FIXED] = {"#", "configuration", "stage", "lr", "rank", "ctx",
                                             "n", "val loss", "MSE", "MAE", "FLOPS", "status"};
    static const int fixed_right[FIXED] = {1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    int nv = 0;
    const ls_config_key *keys[LS_REPORT_MAX_VARYING];
    const char *extra[LS_REPORT_MAX_VARYING], *head[TABLE_MAX_COLS];
    for (int j = 0; j < rep->n_varying; j++)
        if (strcmp(rep->varying[j]->key, "train.seed") && strcmp(rep->varying[j]->key, "lora.seed"))
            extra[nv] = rep->varying[j]->key, keys[nv++] = rep->varying[j];
    int right[TABLE_MAX_COLS], cols = table_headings(fixed, fixed_right, FIXED, AFTER_CTX, extra, nv, head, right);
    table t;
    table_init(&t, cols, head, right);
    int n;
    int *idx = sorted_configs(rep, stage, &n);
    for (int k = 0; k < n; k++) {
        const ls_report_config *cf = &rep->configs[idx[k]];
        const ls_report_trial *tr = &rep->trials[cf->first];
        char c[FIXED][64], v[LS_REPORT_MAX_VARYING][64];
        snprintf(c[0], 64, "%d", k + 1);
        snprintf(c[1], 64, "%016" PRIx64 "%s", cf->id, idx[k] == rep->best_config ? " *" : "");
        snprintf(c[2], 64, "%s", cf->stage >= 0 && cf->stage < rep->n_stages ? rep->stage_names[cf->stage] : "?");
        ls_plot_format_e_digits(tr->row.lr, LS_GRID_SAMPLE_DIGITS, c[3], 64);
        snprintf(c[4], 64, "%d", tr->row.lora_rank);
        if (cf->baseline) snprintf(c[3], 64, "-"), snprintf(c[4], 64, "-");
        snprintf(c[5], 64, "%d", tr->row.ctx);
        snprintf(c[6], 64, "%d/%d", cf->stat[LS_REPORT_STAT_VAL_LOSS].n, cf->repeats);
        stat_text(c[7], 64, "%.4f", cf->stat[LS_REPORT_STAT_VAL_LOSS]);
        stat_text(c[8], 64, "%.4g", cf->stat[LS_REPORT_STAT_MSE + LS_METRIC_BOTH]);
        stat_text(c[9], 64, "%.4g", cf->stat[LS_REPORT_STAT_MAE + LS_METRIC_BOTH]);
        num(c[10], 64, "%.3g", cf->stat[LS_REPORT_STAT_FLOPS].n ? cf->stat[LS_REPORT_STAT_FLOPS].mean * cf->done : NAN);
        config_status(rep, cf, c[11], 64);
        if (cf->baseline) snprintf(c[11] + strlen(c[11]), 64 - strlen(c[11]), " (untrained baseline)");
        for (int j = 0; j < nv; j++) ls_report_value(tr, keys[j], v[j], 64);
        const char *row[TABLE_MAX_COLS];
        for (int i = 0; i < cols; i++) row[i] = i < AFTER_CTX ? c[i] : i < AFTER_CTX + nv ? v[i - AFTER_CTX] : c[i - nv];
        table_row(&t, row);
    }
    if (n == 0) fprintf(out, "(no configurations)\n");
    else table_print(out, &t, markdown);
    fprintf(out, "%sval loss, MSE, MAE: mean ± standard deviation (n - 1) over the repeats done; n: repeats with a "
                 "validation loss / planned; FLOPS: of them all. * best: the lowest mean of the configurations with "
                 "every repeat done (as the sweep selects).\n", markdown ? "\n" : "");
    free(idx);
}

/* Whether two resolved configs differ in train.ctx at most: the trial of an earlier stage that a
 * context stage starts from (its winner, run once and shared by id) belongs in its comparison. */
static int same_but_ctx(const char *a, const char *b) {
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        int ctx_a = !strncmp(a, "  ctx:", 6), ctx_b = !strncmp(b, "  ctx:", 6);
        if (ctx_a != ctx_b || (!ctx_a && (la != lb || memcmp(a, b, la)))) return 0;
        a += la + (ea != NULL), b += lb + (eb != NULL);
    }
    return !*a && !*b;
}

/* The trials of a context comparison for stage s: its own trials, and trials of other stages
 * that differ from one of them in context length only. Sorted by ctx. Returns the count. */
static int context_members(const ls_report *rep, int s, int *out) {
    int n = 0;
    for (int i = 0; i < rep->n_trials; i++) {
        const ls_report_trial *t = &rep->trials[i];
        if (t->baseline) continue;
        int in = t->stage == s;
        for (int j = 0; j < rep->n_trials && !in; j++) {
            const ls_report_trial *u = &rep->trials[j];
            in = u->stage == s && !u->baseline && u->row.ctx != t->row.ctx && same_but_ctx(t->config_yaml, u->config_yaml);
        }
        if (!in) continue;
        int k = n++;
        while (k > 0 && rep->trials[out[k - 1]].row.ctx > t->row.ctx) out[k] = out[k - 1], k--;
        out[k] = i;
    }
    return n;
}

/* Stages whose trials differ in context length: the context comparison. */
static void print_context(FILE *out, const ls_report *rep, int markdown, int stage) {
    int printed = 0;
    int *members = ls_malloc((size_t)(rep->n_trials ? rep->n_trials : 1) * sizeof *members);
    for (int s = 0; s < rep->n_stages; s++) {
        if (stage >= 0 && s != stage) continue;
        int n = context_members(rep, s, members), varies = 0, lr_same = 1, rank_same = 1, own = 0;
        int own_ctx = -1, own_vary = 0; /* the stage's own trials: do they differ in ctx? */
        for (int k = 0; k < n; k++) {
            const ls_results_row_data *r0 = &rep->trials[members[0]].row, *r = &rep->trials[members[k]].row;
            varies |= r->ctx != r0->ctx;
            lr_same &= r->lr == r0->lr;
            rank_same &= r->lora_rank == r0->lora_rank;
            if (rep->trials[members[k]].stage != s) continue;
            own++;
            if (own_ctx >= 0 && r->ctx != own_ctx) own_vary = 1;
            own_ctx = r->ctx;
        }
        /* a stage is a context comparison when its grid varies train.ctx (without the grid: when
         * its own trials do) */
        int is_ctx_stage = rep->stage_ctx_axis[s] >= 0 ? rep->stage_ctx_axis[s] : own_vary;
        if (!varies || own < 1 || !is_ctx_stage) continue;
        const ls_results_row_data *r0 = &rep->trials[members[0]].row;
        char title[256], lr[32];
        ls_plot_format_e_digits(r0->lr, LS_GRID_SAMPLE_DIGITS, lr, sizeof lr);
        if (lr_same && rank_same)
            snprintf(title, sizeof title, "Context length (stage %s: lr %s, rank %d)", rep->stage_names[s], lr,
                     r0->lora_rank);
        else snprintf(title, sizeof title, "Context length (stage %s)", rep->stage_names[s]);
        heading(out, markdown, title);
        static const char *const head[] = {"ctx", "stage", "lr", "rank", "val loss", "MSE", "MAE",
                                           "FLOPS", "tokens/s", "wall", "status"};
        static const int right[] = {1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0};
        table t;
        table_init(&t, 11, head, right);
        for (int k = 0; k < n; k++) {
            const ls_report_trial *tr = &rep->trials[members[k]];
            const ls_result_metrics *m = &tr->row.metrics;
            char c[11][64];
            snprintf(c[0], 64, "%d", tr->row.ctx);
            snprintf(c[1], 64, "%s", tr->stage_name);
            ls_plot_format_e_digits(tr->row.lr, LS_GRID_SAMPLE_DIGITS, c[2], 64);
            snprintf(c[3], 64, "%d", tr->row.lora_rank);
            num(c[4], 64, "%.4f", m->final_val_loss);
            num(c[5], 64, "%.4g", m->mse[LS_METRIC_BOTH]);
            num(c[6], 64, "%.4g", m->mae[LS_METRIC_BOTH]);
            num(c[7], 64, "%.3g", m->flops_total);
            num(c[8], 64, "%.0f", m->tokens_per_s);
            wall_text(c[9], 64, m->wall_seconds);
            status_text(tr, c[10], 64);
            const char *row[11];
            for (int i = 0; i < 11; i++) row[i] = c[i];
            table_row(&t, row);
        }
        table_print(out, &t, markdown);
        printed = 1;
    }
    free(members);
    if (!printed && stage < 0) {
        heading(out, markdown, "Context length");
        fprintf(out, "(no stage varies train.ctx)\n");
    }
}

static double stage_flops(const ls_report *rep, int s, int *n, int *done) {
    double sum = 0;
    *n = *done = 0;
    for (int i = 0; i < rep->n_trials; i++) {
        const ls_report_trial *t = &rep->trials[i];
        if (t->stage != s) continue;
        (*n)++;
        if (t->status == LS_RESULT_DONE) (*done)++;
        if (!isnan(t->row.metrics.flops_total)) sum += t->row.metrics.flops_total;
    }
    return sum;
}

static double total_flops(const ls_report *rep) {
    double sum = 0;
    for (int i = 0; i < rep->n_trials; i++)
        if (!isnan(rep->trials[i].row.metrics.flops_total)) sum += rep->trials[i].row.metrics.flops_total;
    return sum;
}

static void print_flops(FILE *out, const ls_report *rep, int markdown, int stage) {
    heading(out, markdown, "FLOPS (course rules: docs/flops.md)");
    static const char *const head[] = {"id", "stage", "train", "validation", "forecast", "total"};
    static const int right[] = {0, 0, 1, 1, 1, 1};
    table t;
    table_init(&t, 6, head, right);
    for (int i = 0; i < rep->n_trials; i++) {
        const ls_report_trial *tr = &rep->trials[i];
        if (!ls_report_shows(tr, stage)) continue;
        const ls_result_metrics *m = &tr->row.metrics;
        char c[6][64];
        snprintf(c[0], 64, "%016" PRIx64, tr->row.id);
        snprintf(c[1], 64, "%s", tr->stage_name);
        num(c[2], 64, "%.3g", m->flops_train);
        num(c[3], 64, "%.3g", m->flops_validation);
        num(c[4], 64, "%.3g", m->flops_forecast);
        num(c[5], 64, "%.3g", m->flops_total);
        const char *row[6] = {c[0], c[1], c[2], c[3], c[4], c[5]};
        table_row(&t, row);
    }
    table_print(out, &t, markdown);
    fputc('\n', out);
    static const char *const shead[] = {"stage", "trials", "done", "FLOPS", "of the sweep"};
    static const int sright[] = {0, 1, 1, 1, 1};
    table_init(&t, 5, shead, sright);
    double total = total_flops(rep);
    for (int s = 0; s < rep->n_stages; s++) {
        int n, done;
        double f = stage_flops(rep, s, &n, &done);
        char c[5][64];
        snprintf(c[0], 64, "%s", rep->stage_names[s]);
        snprintf(c[1], 64, "%d", n);
        snprintf(c[2], 64, "%d", done);
        snprintf(c[3], 64, "%.3g", f);
        if (total > 0) snprintf(c[4], 64, "%.1f%%", 100 * f / total);
        else snprintf(c[4], 64, "-");
        const char *row[5] = {c[0], c[1], c[2], c[3], c[4]};
        table_row(&t, row);
    }
    table_print(out, &t, markdown);
    if (rep->budget_flops > 0)
        fprintf(out, "%stotal %.3g FLOPS of the budget %.3g (%.1f%%), %.3g left\n", markdown ? "\n" : "", total,
                rep->budget_flops, 100 * total / rep->budget_flops, rep->budget_flops - total);
    else fprintf(out, "%stotal %.3g FLOPS (the grid sets no budget)\n", markdown ? "\n" : "", total);
}

/* Whether the report shows a stage with early stopping. */
static int shows_early_stopping(const ls_report *rep, int stage) {
    for (int s = 0; s < rep->n_stages; s++)
        if ((stage < 0 || s == stage) && rep->stage_es && rep->stage_es[s].type != LS_GRID_ES_NONE) return 1;
    return 0;
}

/* Stopped trials to show: by stage, the furthest first (most steps), then by validation loss. */
static const ls_report *sort_stop_rep;
static int by_stop(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    const ls_report_trial *ti = &sort_stop_rep->trials[i], *tj = &sort_stop_rep->trials[j];
    if (ti->stage != tj->stage) return ti->stage < tj->stage ? -1 : 1;
    if (ti->row.metrics.steps != tj->row.metrics.steps) return ti->row.metrics.steps > tj->row.metrics.steps ? -1 : 1;
    return by_loss_then_index(ti->row.metrics.final_val_loss, tj->row.metrics.final_val_loss, i, j);
}

static int *sorted_stopped(const ls_report *rep, int stage, int *n) {
    int *idx = ls_malloc((size_t)(rep->n_trials ? rep->n_trials : 1) * sizeof *idx);
    *n = 0;
    for (int i = 0; i < rep->n_trials; i++)
        if (ls_report_shows(&rep->trials[i], stage) && rep->trials[i].status == LS_RESULT_STOPPED) idx[(*n)++] = i;
    sort_stop_rep = rep;
    qsort(idx, (size_t)*n, sizeof *idx, by_stop);
    return idx;
}

/* "asha, eta 3" */
static void es_text(const ls_report_es *e, char *buf, size_t cap) {
    snprintf(buf, cap, "%s, eta %d", ls_grid_es_names[e->type], e->eta);
}

/* "5, 15, 40" */
static void rungs_text(const ls_report_es *e, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int k = 0; k < e->n_rungs && o + 12 < cap; k++) o += (size_t)snprintf(buf + o, cap - o, "%s%d", k ? ", " : "", e->rungs[k]);
}

/* all += sv: the savings of several stages together. */
static void savings_add(ls_report_savings *all, const ls_report_savings *sv) {
    all->trials += sv->trials, all->stopped += sv->stopped, all->spent += sv->spent, all->to_end += sv->to_end;
}

/* "2.9e+13 (58.0%)", "-" when unknown. */
static void saved_text(char *buf, size_t cap, const ls_report_savings *sv) {
    double saved = sv->to_end - sv->spent;
    if (isnan(saved)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.3g (%.1f%%)", saved, sv->to_end > 0 ? 100 * saved / sv->to_end : 0.0);
}

/* Trials stopped early at a rung, and each early-stopping stage's FLOPS against the same trials
 * all run to the end. */
static void print_stopped(FILE *out, const ls_report *rep, int markdown, int stage) {
    if (!shows_early_stopping(rep, stage)) return;
    heading(out, markdown, "Stopped early (early stopping)");
    enum { FIXED = 10, AFTER_CTX = 5 };
    static const char *const fixed[FIXED] = {"id", "stage", "lr", "rank", "ctx", "rung", "step",
                                             "val loss", "FLOPS spent", "FLOPS to the end"};
    static const int fixed_right[FIXED] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    const char *extra[1] = {"repeat"}, *head[TABLE_MAX_COLS];
    int rc = rep->repeated, right[TABLE_MAX_COLS];
    int cols = table_headings(fixed, fixed_right, FIXED, AFTER_CTX, extra, rc, head, right);
    table t;
    table_init(&t, cols, head, right);
    int n;
    int *idx = sorted_stopped(rep, stage, &n);
    for (int k = 0; k < n; k++) {
        const ls_report_trial *tr = &rep->trials[idx[k]];
        const ls_result_metrics *m = &tr->row.metrics;
        char c[FIXED][64], r[64];
        snprintf(c[0], 64, "%016" PRIx64, tr->row.id);
        snprintf(c[1], 64, "%s", tr->stage_name);
        ls_plot_format_e_digits(tr->row.lr, LS_GRID_SAMPLE_DIGITS, c[2], 64);
        snprintf(c[3], 64, "%d", tr->row.lora_rank);
        snprintf(c[4], 64, "%d", tr->row.ctx);
        if (tr->rung >= 0) snprintf(c[5], 64, "%d", tr->rung);
        else snprintf(c[5], 64, "?");
        snprintf(c[6], 64, "%d/%d", m->steps, tr->row.max_steps);
        num(c[7], 64, "%.4f", m->final_val_loss);
        num(c[8], 64, "%.3g", m->flops_total);
        num(c[9], 64, "%.3g", tr->flops_to_end);
        repeat_text(rep, tr, r, sizeof r);
        const char *row[TABLE_MAX_COLS];
        for (int i = 0; i < cols; i++) row[i] = i < AFTER_CTX ? c[i] : i < AFTER_CTX + rc ? r : c[i - rc];
        table_row(&t, row);
    }
    free(idx);
    if (n == 0) fprintf(out, "(none: every trial of %s ran to the top rung)\n", stage >= 0 ? "the stage" : "the sweep");
    else table_print(out, &t, markdown);
    fputc('\n', out);
    static const char *const shead[] = {"stage", "early stopping", "rungs (steps)", "trials", "stopped",
                                        "FLOPS spent", "all run to the end", "saved"};
    static const int sright[] = {0, 0, 0, 1, 1, 1, 1, 1};
    table_init(&t, 8, shead, sright);
    ls_report_savings all = {0};
    int stages = 0;
    for (int s = 0; s < rep->n_stages; s++) {
        ls_report_savings sv;
        if ((stage >= 0 && s != stage) || !ls_report_stage_savings(rep, s, &sv)) continue;
        char c[8][64];
        snprintf(c[0], 64, "%s", rep->stage_names[s]);
        es_text(&rep->stage_es[s], c[1], 64);
        rungs_text(&rep->stage_es[s], c[2], 64);
        snprintf(c[3], 64, "%d", sv.trials);
        snprintf(c[4], 64, "%d", sv.stopped);
        num(c[5], 64, "%.3g", sv.spent);
        num(c[6], 64, "%.3g", sv.to_end);
        saved_text(c[7], 64, &sv);
        const char *row[8] = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]};
        table_row(&t, row);
        savings_add(&all, &sv);
        stages++;
    }
    if (stages > 1) {
        char c[8][64];
        snprintf(c[3], 64, "%d", all.trials);
        snprintf(c[4], 64, "%d", all.stopped);
        num(c[5], 64, "%.3g", all.spent);
        num(c[6], 64, "%.3g", all.to_end);
        saved_text(c[7], 64, &all);
        const char *row[8] = {"all", "", "", c[3], c[4], c[5], c[6], c[7]};
        table_row(&t, row);
    }
    table_print(out, &t, markdown);
    fprintf(out, "%srung: where the trial stopped (0 = the first), with its last validation loss; FLOPS to the end: "
                 "the trial run to max_steps without early stopping, estimated as `sweep plan` and the budget do "
                 "(training and validation exact, the forecast at its most); all run to the end: the stage so, its "
                 "finished trials at their own FLOPS less their extra validations at rungs.\n",
            markdown ? "\n" : "");
    if (rep->estimate_note[0]) fprintf(out, "%sno estimate to the end: %s\n", markdown ? "\n" : "", rep->estimate_note);
}

/* A value of the best-vs-baseline table: the configuration's mean ± std when it has repeats, else
 * its trial's value. *v gets the number the ratio uses. */
static void best_cell(char *buf, size_t cap, const ls_report *rep, const ls_report_trial *t, int config, int k,
                      const char *fmt, double *v) {
    const ls_report_config *c = config >= 0 ? &rep->configs[config] : NULL;
    if (c && c->repeats > 1) {
        stat_text(buf, cap, fmt, c->stat[k]);
        *v = c->stat[k].mean;
        return;
    }
    *v = t ? stat_value(t, k) : NAN;
    num(buf, cap, fmt, *v);
}

static void print_best(FILE *out, const ls_report *rep, int markdown) {
    heading(out, markdown, "Best configuration and the untrained baseline");
    if (rep->best < 0) {
        fprintf(out, "(no trained trial has finished yet)\n");
        return;
    }
    const ls_report_trial *b = &rep->trials[rep->best];
    const ls_report_trial *u = rep->baseline >= 0 ? &rep->trials[rep->baseline] : NULL;
    const ls_report_config *bc = &rep->configs[rep->best_config];
    const ls_report_config *uc = rep->baseline_config >= 0 ? &rep->configs[rep->baseline_config] : NULL;
    int spread = bc->repeats > 1 || (uc && uc->repeats > 1); /* a configuration over its repeats */
    static const char *const head[] = {"", "best", "untrained baseline", "baseline / best"};
    static const int right[] = {0, 1, 1, 1};
    table t;
    table_init(&t, 4, head, right);
    char c[4][64];
    const char *row[4] = {c[0], c[1], c[2], c[3]};
    snprintf(c[0], 64, "%s", bc->repeats > 1 ? "configuration" : "trial");
    snprintf(c[1], 64, "%016" PRIx64, bc->repeats > 1 ? bc->id : b->row.id);
    snprintf(c[2], 64, "%s", u ? "" : "not in this sweep");
    if (u) snprintf(c[2], 64, "%016" PRIx64, uc && uc->repeats > 1 ? uc->id : u->row.id);
    c[3][0] = 0;
    table_row(&t, row);
    snprintf(c[0], 64, "stage");
    snprintf(c[1], 64, "%s", bc->stage >= 0 && bc->stage < rep->n_stages ? rep->stage_names[bc->stage] : b->stage_name);
    snprintf(c[2], 64, "%s", u ? u->stage_name : "-");
    table_row(&t, row);
    char lr[32];
    ls_plot_format_e_digits(b->row.lr, LS_GRID_SAMPLE_DIGITS, lr, sizeof lr);
    snprintf(c[0], 64, "lr / rank / ctx");
    snprintf(c[1], 64, "%s / %d / %d", lr, b->row.lora_rank, b->row.ctx);
    snprintf(c[2], 64, "-");
    table_row(&t, row);
    snprintf(c[0], 64, "steps");
    snprintf(c[1], 64, "%d", b->row.metrics.steps);
    snprintf(c[2], 64, "%s", u ? "0" : "-");
    table_row(&t, row);
    if (spread) { /* how many repeats the means are of */
        snprintf(c[0], 64, "repeats (n)");
        snprintf(c[1], 64, "%d of %d", bc->stat[LS_REPORT_STAT_VAL_LOSS].n, bc->repeats);
        if (uc) snprintf(c[2], 64, "%d of %d", uc->stat[LS_REPORT_STAT_VAL_LOSS].n, uc->repeats);
        else snprintf(c[2], 64, "-");
        table_row(&t, row);
    }
    static const char *const names[] = {"final val loss", "MSE prey", "MSE predator", "MSE both",
                                        "MAE prey",       "MAE predator", "MAE both", "FLOPS total"};
    for (int k = 0; k < LS_REPORT_N_STATS; k++) {
        double bv, uv = NAN;
        const char *fmt = k == 0 ? "%.4f" : "%.4g";
        snprintf(c[0], 64, "%s", names[k]);
        best_cell(c[1], 64, rep, b, rep->best_config, k, fmt, &bv);
        if (u) best_cell(c[2], 64, rep, u, rep->baseline_config, k, fmt, &uv);
        else snprintf(c[2], 64, "-");
        if (k < LS_REPORT_STAT_FLOPS && !isnan(uv) && bv > 0) snprintf(c[3], 64, "%.2fx", uv / bv);
        else c[3][0] = 0;
        table_row(&t, row);
    }
    if (bc->repeats > 1) { /* the spread itself: each repeat's validation loss */
        snprintf(c[0], 64, "val loss by repeat");
        size_t o = 0;
        c[1][0] = '\0';
        for (int m = 0; m < bc->n_trials && o < 60; m++) {
            const ls_report_trial *tr = &rep->trials[bc->trials[m]];
            double v = tr->status == LS_RESULT_DONE ? tr->row.metrics.final_val_loss : NAN;
            int w = isnan(v) ? snprintf(c[1] + o, 64 - o, "%s-", m ? ", " : "")
                             : snprintf(c[1] + o, 64 - o, "%s%.4f", m ? ", " : "", v);
            o += w > 0 ? (size_t)w : 0;
        }
        snprintf(c[2], 64, "-");
        c[3][0] = 0;
        table_row(&t, row);
    }
    table_print(out, &t, markdown);
    if (spread)
        fprintf(out, "%smean ± standard deviation (n - 1) over the repeats; baseline / best: of the means.\n",
                markdown ? "\n" : "");
    if (!u)
        fprintf(out, "%s(add a stage with `train.max_steps: [0]` to the grid to evaluate the untrained model; "
                     "docs/analysis.md)\n", markdown ? "\n" : "");
}

static void print_failures(FILE *out, const ls_report *rep, int markdown, int stage) {
    heading(out, markdown, "Failed and skipped trials");
    static const char *const head[] = {"id", "stage", "status", "reason"};
    table t;
    table_init(&t, 4, head, NULL);
    for (int i = 0; i < rep->n_trials; i++) {
        const ls_report_trial *tr = &rep->trials[i];
        if (!ls_report_shows(tr, stage) || (tr->status != LS_RESULT_FAILED && tr->status != LS_RESULT_SKIPPED)) continue;
        char c[3][64], reason[600];
        snprintf(c[0], 64, "%016" PRIx64, tr->row.id);
        snprintf(c[1], 64, "%s", tr->stage_name);
        snprintf(c[2], 64, "%s", ls_result_status_name(tr->status));
        ls_printable(tr->message[0] ? tr->message : "(no message)", reason, sizeof reason);
        if (markdown)
            for (char *p = reason; *p; p++)
                if (*p == '|') *p = '/';
        const char *row[4] = {c[0], c[1], c[2], reason};
        table_row(&t, row);
    }
    if (t.rows == 0) fprintf(out, "(none)\n");
    else table_print(out, &t, markdown);
}

static void print_text(FILE *out, const ls_report *rep, int markdown, int stage) {
    print_header(out, rep, markdown, stage);
    print_trials(out, rep, markdown, stage);
    print_configs(out, rep, markdown, stage);
    print_context(out, rep, markdown, stage);
    print_flops(out, rep, markdown, stage);
    print_stopped(out, rep, markdown, stage);
    print_best(out, rep, markdown);
    print_failures(out, rep, markdown, stage);
}

/* ================================================================ CSV */

static void csv_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, out);
    }
    fputc('"', out);
}

static void csv_number(FILE *out, double v) {
    if (!isnan(v)) fprintf(out, "%.9g", v);
}

static void print_csv(FILE *out, const ls_report *rep, int stage) {
    fputs("id,stage,status,lr,rank,ctx,batch_size,max_steps,steps,final_train_loss,final_val_loss,"
          "mse_prey,mse_predator,mse_both,mae_prey,mae_predator,mae_both,"
          "flops_train,flops_validation,flops_forecast,flops_total,wall_seconds,tokens_per_s,baseline,best,message,"
          "configuration,repeat,rung,flops_run_to_end",
          out);
    for (int j = 0; j < rep->n_varying; j++) /* keys that differ between trials, besides the columns above */
        if (strcmp(rep->varying[j]->key, "train.batch_size")) fprintf(out, ",%s", rep->varying[j]->key);
    fputc('\n', out);
    int n;
    int *idx = sorted_trials(rep, stage, &n);
    for (int k = 0; k < n; k++) {
        const ls_report_trial *t = &rep->trials[idx[k]];
        const ls_result_metrics *m = &t->row.metrics;
        char st[64];
        status_text(t, st, sizeof st);
        fprintf(out, "%016" PRIx64 ",%s,%s,%.9g,%d,%d,%d,%d,%d", t->row.id, t->stage_name, st, t->row.lr,
                t->row.lora_rank, t->row.ctx, t->row.batch_size, t->row.max_steps, m->steps);
        const double v[] = {m->final_train_loss, m->final_val_loss, m->mse[0], m->mse[1], m->mse[2], m->mae[0],
                            m->mae[1], m->mae[2], m->flops_train, m->flops_validation, m->flops_forecast,
                            m->flops_total, m->wall_seconds, m->tokens_per_s};
        for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
            fputc(',', out);
            csv_number(out, v[i]);
        }
        fprintf(out, ",%d,%d,", t->baseline, idx[k] == rep->best);
        csv_string(out, t->message);
        fprintf(out, ",%016" PRIx64 ",", rep->configs[t->configuration].id);
        if (t->repeat >= 0) fprintf(out, "%d", t->repeat);
        fputc(',', out); /* early stopping: the rung it stopped at, what it would have spent without */
        if (t->rung >= 0) fprintf(out, "%d", t->rung);
        fputc(',', out);
        csv_number(out, t->flops_to_end);
        for (int j = 0; j < rep->n_varying; j++) {
            if (!strcmp(rep->varying[j]->key, "train.batch_size")) continue;
            char value[256];
            ls_report_value(t, rep->varying[j], value, sizeof value);
            fputc(',', out);
            csv_string(out, value);
        }
        fputc('\n', out);
    }
    free(idx);
}

int ls_report_print_configs_csv(FILE *out, const ls_report *rep, int stage) {
    fputs("configuration,stage,status,repeats,n,lr,rank,ctx,batch_size,max_steps,"
          "final_val_loss_mean,final_val_loss_std,mse_both_mean,mse_both_std,mae_both_mean,mae_both_std,"
          "flops_total,baseline,best,trials", out);
    for (int j = 0; j < rep->n_varying; j++)
        if (strcmp(rep->varying[j]->key, "train.seed") && strcmp(rep->varying[j]->key, "lora.seed") &&
            strcmp(rep->varying[j]->key, "train.batch_size"))
            fprintf(out, ",%s", rep->varying[j]->key);
    fputc('\n', out);
    int n;
    int *idx = sorted_configs(rep, stage, &n);
    for (int k = 0; k < n; k++) {
        const ls_report_config *c = &rep->configs[idx[k]];
        const ls_report_trial *t = &rep->trials[c->first];
        char st[64];
        config_status(rep, c, st, sizeof st);
        fprintf(out, "%016" PRIx64 ",%s,%s,%d,%d,%.9g,%d,%d,%d,%d", c->id,
                c->stage >= 0 && c->stage < rep->n_stages ? rep->stage_names[c->stage] : "?", st, c->repeats,
                c->stat[LS_REPORT_STAT_VAL_LOSS].n, t->row.lr, t->row.lora_rank, t->row.ctx, t->row.batch_size,
                t->row.max_steps);
        const int which[3] = {LS_REPORT_STAT_VAL_LOSS, LS_REPORT_STAT_MSE + LS_METRIC_BOTH,
                              LS_REPORT_STAT_MAE + LS_METRIC_BOTH};
        for (int w = 0; w < 3; w++) {
            fputc(',', out);
            csv_number(out, c->stat[which[w]].mean);
            fputc(',', out);
            csv_number(out, c->stat[which[w]].std);
        }
        fputc(',', out);
        csv_number(out, c->stat[LS_REPORT_STAT_FLOPS].n ? c->stat[LS_REPORT_STAT_FLOPS].mean * c->done : NAN);
        fprintf(out, ",%d,%d,", c->baseline, idx[k] == rep->best_config);
        for (int m = 0; m < c->n_trials; m++) fprintf(out, "%s%016" PRIx64, m ? " " : "", rep->trials[c->trials[m]].row.id);
        for (int j = 0; j < rep->n_varying; j++) {
            const char *key = rep->varying[j]->key;
            if (!strcmp(key, "train.seed") || !strcmp(key, "lora.seed") || !strcmp(key, "train.batch_size")) continue;
            char value[256];
            ls_report_value(t, rep->varying[j], value, sizeof value);
            fputc(',', out);
            csv_string(out, value);
        }
        fputc('\n', out);
    }
    free(idx);
    if (fflush(out) != 0 || ferror(out)) return ls_error("cannot write the report: %s", strerror(errno));
    return LS_OK;
}

/* ================================================================ JSON */

static cJSON *json_num(double v) { return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static cJSON *trial_json(const ls_report *rep, int i) {
    const ls_report_trial *t = &rep->trials[i];
    const ls_result_metrics *m = &t->row.metrics;
    cJSON *o = cJSON_CreateObject();
    char id[32], st[64];
    snprintf(id, sizeof id, "%016" PRIx64, t->row.id);
    status_text(t, st, sizeof st);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "stage", t->stage_name);
    cJSON_AddNumberToObject(o, "stage_index", t->stage);
    cJSON_AddStringToObject(o, "status", ls_result_status_name(t->status));
    cJSON_AddStringToObject(o, "status_detail", st);
    cJSON_AddBoolToObject(o, "interrupted", t->status == LS_RESULT_RUNNING && !t->live);
    cJSON_AddBoolToObject(o, "baseline", t->baseline);
    cJSON_AddBoolToObject(o, "best", i == rep->best);
    cJSON_AddNumberToObject(o, "attempts", t->attempts);
    char cid[32];
    snprintf(cid, sizeof cid, "%016" PRIx64, rep->configs[t->configuration].id);
    cJSON_AddStringToObject(o, "configuration", cid);
    cJSON_AddItemToObject(o, "repeat", t->repeat >= 0 ? cJSON_CreateNumber(t->repeat) : cJSON_CreateNull());
    cJSON *hp = cJSON_AddObjectToObject(o, "hyperparameters");
    cJSON_AddNumberToObject(hp, "lr", t->row.lr);
    cJSON_AddNumberToObject(hp, "rank", t->row.lora_rank);
    cJSON_AddNumberToObject(hp, "ctx", t->row.ctx);
    cJSON_AddNumberToObject(hp, "batch_size", t->row.batch_size);
    cJSON_AddNumberToObject(hp, "max_steps", t->row.max_steps);
    cJSON *mj = cJSON_AddObjectToObject(o, "metrics");
    cJSON_AddNumberToObject(mj, "steps", m->steps);
    cJSON_AddItemToObject(mj, "final_train_loss", json_num(m->final_train_loss));
    cJSON_AddItemToObject(mj, "final_val_loss", json_num(m->final_val_loss));
    static const char *const vars[] = {"prey", "predator", "both"};
    cJSON *mse = cJSON_AddObjectToObject(mj, "mse"), *mae = cJSON_AddObjectToObject(mj, "mae");
    for (int k = 0; k < 3; k++) {
        cJSON_AddItemToObject(mse, vars[k], json_num(m->mse[k]));
        cJSON_AddItemToObject(mae, vars[k], json_num(m->mae[k]));
    }
    cJSON *fl = cJSON_AddObjectToObject(mj, "flops");
    cJSON_AddItemToObject(fl, "train", json_num(m->flops_train));
    cJSON_AddItemToObject(fl, "validation", json_num(m->flops_validation));
    cJSON_AddItemToObject(fl, "forecast", json_num(m->flops_forecast));
    cJSON_AddItemToObject(fl, "total", json_num(m->flops_total));
    cJSON_AddItemToObject(mj, "wall_seconds", json_num(m->wall_seconds));
    cJSON_AddItemToObject(mj, "tokens_per_s", json_num(m->tokens_per_s));
    cJSON_AddStringToObject(o, "message", t->message);
    /* the whole resolved config, as the trial ran it */
    cJSON *cj = NULL;
    if (t->config_ok) {
        char *text = ls_config_to_json(&t->config);
        cj = cJSON_Parse(text);
        free(text);
    }
    cJSON_AddItemToObject(o, "config", cj ? cj : cJSON_CreateNull());
    return o;
}

static cJSON *stat_json(ls_report_stat st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", st.n);
    cJSON_AddItemToObject(o, "mean", json_num(st.mean));
    cJSON_AddItemToObject(o, "std", json_num(st.std));
    return o;
}

static cJSON *config_json(const ls_report *rep, int ci) {
    const ls_report_config *c = &rep->configs[ci];
    const ls_report_trial *t = &rep->trials[c->first];
    cJSON *o = cJSON_CreateObject();
    char id[32], st[64];
    snprintf(id, sizeof id, "%016" PRIx64, c->id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "stage", c->stage >= 0 && c->stage < rep->n_stages ? rep->stage_names[c->stage] : "?");
    config_status(rep, c, st, sizeof st);
    cJSON_AddStringToObject(o, "status", st);
    cJSON_AddBoolToObject(o, "complete", c->complete);
    cJSON_AddBoolToObject(o, "baseline", c->baseline);
    cJSON_AddBoolToObject(o, "best", ci == rep->best_config);
    cJSON_AddNumberToObject(o, "repeats", c->repeats);
    cJSON_AddNumberToObject(o, "done", c->done);
    cJSON *ids = cJSON_AddArrayToObject(o, "trials"); /* by repeat */
    for (int m = 0; m < c->n_trials; m++) {
        snprintf(id, sizeof id, "%016" PRIx64, rep->trials[c->trials[m]].row.id);
        cJSON_AddItemToArray(ids, cJSON_CreateString(id));
    }
    cJSON *hp = cJSON_AddObjectToObject(o, "hyperparameters");
    cJSON_AddNumberToObject(hp, "lr", t->row.lr);
    cJSON_AddNumberToObject(hp, "rank", t->row.lora_rank);
    cJSON_AddNumberToObject(hp, "ctx", t->row.ctx);
    cJSON_AddNumberToObject(hp, "batch_size", t->row.batch_size);
    cJSON_AddNumberToObject(hp, "max_steps", t->row.max_steps);
    cJSON_AddItemToObject(o, "final_val_loss", stat_json(c->stat[LS_REPORT_STAT_VAL_LOSS]));
    static const char *const vars[] = {"prey", "predator", "both"};
    cJSON *mse = cJSON_AddObjectToObject(o, "mse"), *mae = cJSON_AddObjectToObject(o, "mae");
    for (int k = 0; k < 3; k++) {
        cJSON_AddItemToObject(mse, vars[k], stat_json(c->stat[LS_REPORT_STAT_MSE + k]));
        cJSON_AddItemToObject(mae, vars[k], stat_json(c->stat[LS_REPORT_STAT_MAE + k]));
    }
    cJSON_AddItemToObject(o, "flops_total", stat_json(c->stat[LS_REPORT_STAT_FLOPS]));
    return o;
}

static cJSON *stopped_json(const ls_report *rep, int i) {
    const ls_report_trial *t = &rep->trials[i];
    cJSON *o = cJSON_CreateObject();
    char id[32];
    snprintf(id, sizeof id, "%016" PRIx64, t->row.id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "stage", t->stage_name);
    snprintf(id, sizeof id, "%016" PRIx64, rep->configs[t->configuration].id);
    cJSON_AddStringToObject(o, "configuration", id);
    cJSON_AddItemToObject(o, "repeat", t->repeat >= 0 ? cJSON_CreateNumber(t->repeat) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "lr", t->row.lr);
    cJSON_AddNumberToObject(o, "rank", t->row.lora_rank);
    cJSON_AddNumberToObject(o, "ctx", t->row.ctx);
    cJSON_AddItemToObject(o, "rung", t->rung >= 0 ? cJSON_CreateNumber(t->rung) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "step", t->row.metrics.steps);
    cJSON_AddNumberToObject(o, "max_steps", t->row.max_steps);
    cJSON_AddItemToObject(o, "final_val_loss", json_num(t->row.metrics.final_val_loss));
    cJSON_AddItemToObject(o, "flops_spent", json_num(t->row.metrics.flops_total));
    cJSON_AddItemToObject(o, "flops_run_to_end", json_num(t->flops_to_end));
    return o;
}

static void savings_json(cJSON *o, const ls_report_savings *sv) {
    cJSON_AddNumberToObject(o, "trials", sv->trials);
    cJSON_AddNumberToObject(o, "stopped", sv->stopped);
    cJSON_AddItemToObject(o, "flops_spent", json_num(sv->spent));
    cJSON_AddItemToObject(o, "flops_run_to_end", json_num(sv->to_end));
    cJSON_AddItemToObject(o, "flops_saved", json_num(sv->to_end - sv->spent));
    cJSON_AddItemToObject(o, "percent", json_num(sv->to_end > 0 ? 100 * (sv->to_end - sv->spent) / sv->to_end : NAN));
}

/* Early stopping's savings: per stage that has it and over them all; null without such a stage. */
static cJSON *flops_saved_json(const ls_report *rep, int stage) {
    if (!shows_early_stopping(rep, stage)) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject(), *stages = cJSON_CreateArray();
    ls_report_savings all = {0};
    for (int s = 0; s < rep->n_stages; s++) {
        ls_report_savings sv;
        if ((stage >= 0 && s != stage) || !ls_report_stage_savings(rep, s, &sv)) continue;
        const ls_report_es *e = &rep->stage_es[s];
        cJSON *st = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "stage", rep->stage_names[s]);
        cJSON_AddStringToObject(st, "early_stopping", ls_grid_es_names[e->type]);
        cJSON_AddNumberToObject(st, "eta", e->eta);
        cJSON_AddItemToObject(st, "rungs", cJSON_CreateIntArray(e->rungs, e->n_rungs));
        savings_json(st, &sv);
        cJSON_AddItemToArray(stages, st);
        savings_add(&all, &sv);
    }
    savings_json(o, &all);
    cJSON_AddItemToObject(o, "estimate_note", rep->estimate_note[0] ? cJSON_CreateString(rep->estimate_note)
                                                                     : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "stages", stages);
    return o;
}

static void print_json(FILE *out, const ls_report *rep, int stage) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", rep->path);
    cJSON_AddStringToObject(root, "sweep", rep->info.sweep_name);
    cJSON_AddStringToObject(root, "grid_hash", rep->info.grid_hash);
    cJSON_AddStringToObject(root, "created", rep->info.created);
    cJSON_AddStringToObject(root, "program_version", rep->info.program_version);
    cJSON_AddStringToObject(root, "data_path", rep->info.data_path);
    cJSON_AddStringToObject(root, "data_checksum", rep->info.data_checksum);
    int open = rep->counts[LS_RESULT_RUNNING] + rep->counts[LS_RESULT_PENDING];
    cJSON_AddBoolToObject(root, "complete", open == 0 && rep->n_started >= rep->n_stages);
    cJSON_AddBoolToObject(root, "being_written", rep->lock_owner[0] != 0);
    cJSON_AddBoolToObject(root, "journal", rep->have_journal);
    cJSON *counts = cJSON_AddObjectToObject(root, "counts");
    for (int s = 0; s <= LS_RESULT_STOPPED; s++) cJSON_AddNumberToObject(counts, ls_result_status_name(s), rep->counts[s]);
    cJSON_AddNumberToObject(counts, "interrupted", rep->interrupted);
    cJSON *varying = cJSON_AddArrayToObject(root, "varying_keys"); /* besides lr, rank, ctx, max_steps */
    for (int j = 0; j < rep->n_varying; j++) cJSON_AddItemToArray(varying, cJSON_CreateString(rep->varying[j]->key));
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    for (int s = 0; s < rep->n_stages; s++) {
        int n, done;
        double f = stage_flops(rep, s, &n, &done);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", rep->stage_names[s]);
        cJSON_AddNumberToObject(o, "trials", n);
        cJSON_AddNumberToObject(o, "done", done);
        cJSON_AddNumberToObject(o, "flops", f);
        cJSON_AddBoolToObject(o, "started", s < rep->n_started);
        cJSON_AddNumberToObject(o, "unfinished", ls_report_stage_unfinished(rep, s));
        cJSON_AddItemToArray(stages, o);
    }
    cJSON *fl = cJSON_AddObjectToObject(root, "flops");
    cJSON_AddNumberToObject(fl, "total", total_flops(rep));
    cJSON_AddItemToObject(fl, "budget", rep->budget_flops > 0 ? cJSON_CreateNumber(rep->budget_flops) : cJSON_CreateNull());
    cJSON *stopped = cJSON_AddArrayToObject(root, "stopped"); /* sorted as their table */
    int ns;
    int *sidx = sorted_stopped(rep, stage, &ns);
    for (int k = 0; k < ns; k++) cJSON_AddItemToArray(stopped, stopped_json(rep, sidx[k]));
    free(sidx);
    cJSON_AddItemToObject(root, "flops_saved", flops_saved_json(rep, stage));
    char id[32];
    snprintf(id, sizeof id, "%016" PRIx64, rep->best >= 0 ? rep->trials[rep->best].row.id : 0);
    cJSON_AddItemToObject(root, "best", rep->best >= 0 ? cJSON_CreateString(id) : cJSON_CreateNull());
    snprintf(id, sizeof id, "%016" PRIx64, rep->baseline >= 0 ? rep->trials[rep->baseline].row.id : 0);
    cJSON_AddItemToObject(root, "baseline", rep->baseline >= 0 ? cJSON_CreateString(id) : cJSON_CreateNull());
    snprintf(id, sizeof id, "%016" PRIx64, rep->best_config >= 0 ? rep->configs[rep->best_config].id : 0);
    cJSON_AddItemToObject(root, "best_configuration", rep->best_config >= 0 ? cJSON_CreateString(id) : cJSON_CreateNull());
    cJSON *configs = cJSON_AddArrayToObject(root, "configurations"); /* by mean final validation loss */
    int nc;
    int *cidx = sorted_configs(rep, stage, &nc);
    for (int k = 0; k < nc; k++) cJSON_AddItemToArray(configs, config_json(rep, cidx[k]));
    free(cidx);
    cJSON *trials = cJSON_AddArrayToObject(root, "trials");
    int n;
    int *idx = sorted_trials(rep, stage, &n);
    for (int k = 0; k < n; k++) cJSON_AddItemToArray(trials, trial_json(rep, idx[k]));
    free(idx);
    char *text = cJSON_Print(root);
    fputs(text, out);
    fputc('\n', out);
    free(text);
    cJSON_Delete(root);
}

int ls_report_print(FILE *out, const ls_report *rep, ls_report_format fmt, int stage) {
    switch (fmt) {
    case LS_REPORT_TABLE: print_text(out, rep, 0, stage); break;
    case LS_REPORT_MARKDOWN: print_text(out, rep, 1, stage); break;
    case LS_REPORT_CSV: print_csv(out, rep, stage); break;
    case LS_REPORT_JSON: print_json(out, rep, stage); break;
    }
    if (fflush(out) != 0 || ferror(out)) return ls_error("cannot write the report: %s", strerror(errno));
    return LS_OK;
}
