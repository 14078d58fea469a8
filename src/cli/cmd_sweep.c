/*
 * cmd_sweep.c: `lorasweep sweep <plan|...>`: grid files (docs/sweep.md).
 *
 * `sweep plan GRID.yaml` loads and checks a grid and prints what a sweep of it would run: every
 * trial that can be expanded now (id, stage, configuration and repeat, overrides, estimated
 * FLOPS, budget skips), the symbolic plan of the stages that wait for an earlier stage's winner
 * (with the configurations a sampled one has drawn), and the total estimate against
 * budget_flops. Nothing is trained and no file is written.
 *
 * First every trial is checked as `sweep run` checks it before any work (ls_check_grid): the
 * files it opens (model, tokenizer, data), train.ctx and the forecast's prompt against the
 * model's positions, the split and the forecast's steps against the data. A mistake is one error
 * line, exit 1. Estimates need the model's config.json (model.path of the trials, read once per
 * path); --preset estimates with a built-in description instead, and stands in for a model
 * directory that does not exist yet (its files, and a tokenizer.json expected in it, are then
 * not checked; prompts are counted in characters, Qwen's tokens). They also read the data set
 * the trials name (data.path, once per path): its systems, steps and text give the validation
 * windows and the prompts.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/asha.h"
#include "lorasweep/check.h"
#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/grid.h"
#include "lorasweep/journal.h"
#include "lorasweep/model.h"
#include "lorasweep/timemodel.h"
#include "lorasweep/trial.h"

static const char plan_usage[] =
    "usage: lorasweep sweep plan GRID.yaml [--json] [--preset NAME] [--walltime S [--workers N] [--costs FILE]]\n"
    "\n"
    "Checks a grid file (docs/sweep.md) and prints its plan: the stages; every trial that can be\n"
    "made now with its id, overrides and estimated FLOPS, in index order, marking those the\n"
    "budget would skip (trials run largest estimate first); for stages that start from an earlier\n"
    "stage's winner, what they will run; the total estimate against budget_flops. Nothing is run.\n"
    "Every trial is checked first as `sweep run` checks it: the files it opens (model.path,\n"
    "the tokenizer, data.path), train.ctx and the forecast prompt against the model's positions.\n"
    "  --json          print JSON instead of text\n"
    "  --preset NAME   estimate FLOPS with a built-in model (tiny, small, qwen2.5-0.5b) instead of\n"
    "                  the config.json under model.path; a model.path that does not exist yet\n"
    "                  (a model not downloaded yet) is then not checked\n"
    "  --walltime S    also say how many runs of S seconds (a batch job's time limit) the sweep\n"
    "                  needs, by the time model `sweep run` keeps in the results' journal: the\n"
    "                  seconds its runs took per model, shape and device. What the journal says is\n"
    "                  done is left out; early-stopping stages count as if nothing stopped early\n"
    "  --workers N     workers (trials at a time) for --walltime (default 1)\n"
    "  --costs FILE    take the costs from FILE's journal (another sweep on the same machine and\n"
    "                  models) instead of the grid's own results file; nothing of it counts as done\n";

/* The estimate of c as it is, trained to its max_steps. */
static double estimate(ls_flops_estimator *e, const ls_trial_config *c, ls_trial_flops *parts) {
    return ls_flops_estimate(e, c, NULL, 0, c->train.max_steps, parts);
}

static void fmt_flops(char *dst, size_t cap, double f) {
    if (isfinite(f)) snprintf(dst, cap, "%.3g", f);
    else snprintf(dst, cap, "?");
}

/* A sampled stage: "random over train.lr log_uniform [1e-05, 0.001] x lora.rank in [2, 4, 8, 16]"
 * (parameters of one value as key=value, after "with"). */
static char *space_text(const ls_grid_stage *s) {
    ls_strbuf b = {0};
    ls_strbuf_printf(&b, "%s over ", ls_grid_method_names[s->method]);
    int multi = 0, single = 0;
    for (size_t i = 0; i < s->n_params; i++) {
        const ls_grid_param *p = &s->params[i];
        if (p->dist == LS_GRID_DIST_VALUES && p->n_values == 1) continue;
        ls_strbuf_printf(&b, "%s%s ", multi++ ? " x " : "", p->key->key);
        if (p->dist == LS_GRID_DIST_VALUES) {
            ls_strbuf_puts(&b, "in [");
            for (size_t v = 0; v < p->n_values; v++) ls_strbuf_printf(&b, "%s%s", v ? ", " : "", p->values[v]);
            ls_strbuf_puts(&b, "]");
        } else {
            ls_strbuf_printf(&b, "%s [%.6g, %.6g]", ls_grid_dist_names[p->dist], p->min, p->max);
        }
    }
    for (size_t i = 0; i < s->n_params; i++) {
        const ls_grid_param *p = &s->params[i];
        if (p->dist != LS_GRID_DIST_VALUES || p->n_values != 1) continue;
        ls_strbuf_printf(&b, "%s%s=%s", single++ ? ", " : multi ? " with " : "", p->key->key, p->values[0]);
    }
    if (s->method == LS_GRID_METHOD_RANDOM && s->seed) ls_strbuf_printf(&b, " (seed %" PRIu64 ")", s->seed);
    return b.p;
}

/* "81 trials (27 configurations x 3 repeats)", "6 trials", "1 trial" */
static void count_text(char *dst, size_t cap, const ls_grid_stage *s) {
    int o = snprintf(dst, cap, "%zu trial%s", s->n_trials, s->n_trials == 1 ? "" : "s");
    if (s->repeats > 1 && o > 0 && (size_t)o < cap)
        snprintf(dst + o, cap - (size_t)o, " (%zu configuration%s x %zu repeats)", s->n_configs,
                 s->n_configs == 1 ? "" : "s", s->repeats);
}

/* "train.ctx in [128, 512, 768] x lora.rank in [2, 4] with train.max_steps=2000, eval.samples=10"
 * (axes of one value as key=value), or "" without axes; a sampled stage's space_text. */
static char *axes_text(const ls_grid_stage *s) {
    if (s->method != LS_GRID_METHOD_GRID) return space_text(s);
    size_t cap = 64;
    for (size_t a = 0; a < s->n_axes; a++) {
        cap += strlen(s->axes[a].key->key) + 16;
        for (size_t v = 0; v < s->axes[a].n_values; v++) cap += strlen(s->axes[a].values[v]) + 2;
    }
    char *t = ls_malloc(cap);
    size_t o = 0;
    int multi = 0, single = 0;
    t[0] = '\0';
    for (size_t a = 0; a < s->n_axes; a++) {
        if (s->axes[a].n_values == 1) continue;
        o += (size_t)snprintf(t + o, cap - o, "%s%s in [", multi++ ? " x " : "", s->axes[a].key->key);
        for (size_t v = 0; v < s->axes[a].n_values; v++)
            o += (size_t)snprintf(t + o, cap - o, "%s%s", v ? ", " : "", s->axes[a].values[v]);
        o += (size_t)snprintf(t + o, cap - o, "]");
    }
    for (size_t a = 0; a < s->n_axes; a++) {
        if (s->axes[a].n_values != 1) continue;
        o += (size_t)snprintf(t + o, cap - o, "%s%s=%s", single++ ? ", " : multi ? " with " : "",
                              s->axes[a].key->key, s->axes[a].values[0]);
    }
    return t;
}

/* "3 trials once lr_rank is done: train.ctx in [128, 512, 768] on the best of lr_rank by
 * final_val_loss (keeping train.lr, lora.rank)" */
static char *symbolic(const ls_grid *g, const ls_grid_stage *s) {
    const char *from = g->stages[s->select_from].name;
    char *axes = axes_text(s), count[96];
    count_text(count, sizeof count, s);
    size_t cap = strlen(axes) + 256 + s->n_keep * 40;
    char *t = ls_malloc(cap);
    int by_mean = g->stages[s->select_from].repeats > 1; /* the winner is a configuration */
    size_t o = (size_t)snprintf(t, cap, "%s once %s is done: %s%sthe best %sof %s by %s%s (keeping ", count, from,
                                axes, axes[0] ? " on " : "", by_mean ? "configuration " : "", from, by_mean ? "mean " : "",
                                ls_grid_metric_names[s->metric]);
    for (size_t k = 0; k < s->n_keep; k++) o += (size_t)snprintf(t + o, cap - o, "%s%s", k ? ", " : "", s->keep[k]->key);
    snprintf(t + o, cap - o, ")");
    free(axes);
    return t;
}

typedef struct {
    ls_grid_trial *trials;  /* expandable now; NULL for a stage waiting on a winner */
    size_t n;
    double *flops;          /* per trial */
    ls_trial_flops *parts;  /* per trial: the estimate by part */
    ls_grid_budget_entry *budget;
    size_t *order_of;       /* per trial: its position in budget (the run order) */
    double total;           /* expandable: admitted trials' sum; waiting: worst case */
    int total_known;
    /* a waiting stage's stand-in: the costliest candidate of its select.from stage */
    ls_grid_trial *stand;
    size_t n_stand;
    /* early stopping: the rungs, and what the admitted trials cost if each stops at the first */
    int rungs[LS_ES_MAX_RUNGS], n_rungs;
    double least;
} stage_plan;

/* "  early stopping: asha, eta 3: rungs at steps 5, 15, 40 (the top); at most 1.2e+12 FLOPS (no
 * trial stopped), at least 3.4e+11 (every trial stopped at the first rung)" */
static void print_early_stopping(const ls_grid_stage *s, const stage_plan *p) {
    const ls_grid_early_stopping *es = &s->early_stopping;
    if (es->type == LS_GRID_ES_NONE) return;
    printf("  early stopping: %s, eta %d", ls_grid_es_names[es->type], es->eta);
    if (es->type == LS_GRID_ES_MEDIAN) printf(", min_trials %d", es->min_trials);
    printf(": rungs at steps");
    for (int k = 0; k < p->n_rungs; k++) printf("%s %d", k ? "," : "", p->rungs[k]);
    char most[32], least[32];
    fmt_flops(most, sizeof most, p->total_known ? p->total : NAN);
    fmt_flops(least, sizeof least, p->total_known ? p->least : NAN);
    printf(" (the top); at most %s FLOPS (no trial stopped), at least %s (every trial stopped at the first rung)\n",
           most, least);
}

/* ---- runs of a time limit (sweep plan --walltime) ------------------------------------------ */

typedef struct {
    char journal[4200];     /* where the costs came from */
    int measured;           /* the runs it measured */
    int runs;               /* runs needed; -1: some work never fits */
    double last_s;
    int at_most;            /* early stopping: the count if nothing stops early */
    char unknown[600];      /* the first model and shape never measured */
} plan_runs;

/* Every trial of every stage (a waiting stage's stand-ins) that the journal does not say is
 * settled, each predicted by the time model from what remains of it, packed into runs. */
static int count_runs(const ls_grid *g, const stage_plan *sp, const char *costs, int workers, double run_s,
                      plan_runs *out) {
    snprintf(out->journal, sizeof out->journal, "%s.journal", costs ? costs : g->results_path);
    if (costs && access(out->journal, F_OK) != 0)
        return ls_error("--costs %s: no journal beside it (%s): not a sweep's results file", costs, out->journal);
    ls_journal_state js;
    if (ls_journal_replay(out->journal, &js) != LS_OK) return LS_ERR;
    ls_time_model tm = {0};
    ls_time_model_from_journal(&tm, &js);
    out->measured = js.n_costs;
    size_t cap = 0;
    for (size_t i = 0; i < g->n_stages; i++) cap += sp[i].trials ? sp[i].n : sp[i].n_stand;
    double *seconds = ls_calloc(cap ? cap : 1, sizeof *seconds);
    int *stage = ls_calloc(cap ? cap : 1, sizeof *stage);
    unsigned char *split = ls_calloc(cap ? cap : 1, 1);
    size_t n = 0;
    for (size_t i = 0; i < g->n_stages && !out->unknown[0]; i++) {
        const stage_plan *p = &sp[i];
        const ls_grid_trial *trials = p->trials ? p->trials : p->stand;
        size_t nt = p->trials ? p->n : p->n_stand;
        out->at_most |= g->stages[i].early_stopping.type != LS_GRID_ES_NONE;
        for (size_t t = 0; t < nt; t++) {
            if (p->trials && p->budget[p->order_of[t]].skipped) continue;
            /* the sweep's own journal says what is settled; another's (--costs) only measures */
            const ls_journal_trial *jt = costs ? NULL : ls_journal_find(&js, trials[t].id);
            if (jt && (jt->status == LS_RESULT_DONE || jt->status == LS_RESULT_STOPPED || jt->status == LS_RESULT_SKIPPED))
                continue;
            const ls_trial_config *c = &trials[t].config;
            ls_time_work w = ls_time_work_left(c, jt ? jt->checkpoint_step : 0, 0);
            char key[LS_JOURNAL_TEXT_MAX];
            ls_time_key_of(key, sizeof key, c, NULL);
            double need = ls_time_predict(&tm, key, &w);
            if (isnan(need)) {
                snprintf(out->unknown, sizeof out->unknown, "%s at batch %d x ctx %d", c->model.path,
                         c->train.batch_size, c->train.ctx);
                break;
            }
            seconds[n] = need, stage[n] = (int)i, split[n] = 1; /* a stop checkpoints it: runs on later */
            n++;
        }
    }
    out->runs = out->unknown[0] ? -1 : ls_time_runs(seconds, stage, split, n, workers, run_s, &out->last_s, NULL);
    free(seconds), free(stage), free(split);
    ls_time_model_free(&tm);
    ls_journal_state_free(&js);
    return LS_OK;
}

static void print_runs(const ls_grid *g, const plan_runs *pr, double run_s, int workers) {
    printf("time limit: ");
    if (pr->unknown[0]) {
        printf("no run of %s has been measured for %s yet (%s: %d runs measured): run the sweep once (its first "
               "run measures each shape), or give --costs RESULTS.h5 of a sweep measured on the same machine\n",
               g->name, pr->unknown, pr->journal, pr->measured);
        return;
    }
    if (pr->runs == 0) {
        printf("nothing is left to run (%s says every trial is settled)\n", pr->journal);
        return;
    }
    printf("%d worker%s: the sweep needs %s%d run%s of %.0fs", workers, workers == 1 ? "" : "s",
           pr->at_most ? "at most " : "", pr->runs, pr->runs == 1 ? "" : "s", run_s);
    if (pr->last_s >= 1) printf(" (the last about %.0fs)", pr->last_s);
    printf(", by the time model of %s (%d runs measured)%s\n", pr->journal, pr->measured,
           pr->at_most ? "; early stopping counted as if no trial stopped early" : "");
}

static int sweep_plan(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {"preset", required_argument, 0, 'p'},
        {"walltime", required_argument, 0, 'w'},
        {"workers", required_argument, 0, 'n'},
        {"costs", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0, ch;
    const char *preset = NULL, *costs = NULL;
    double walltime = 0;
    long workers = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'p': preset = optarg; break;
        case 'w':
            if (cli_double("sweep plan", "walltime", optarg, 1, 1e9, &walltime)) return CLI_EXIT_USAGE;
            break;
        case 'n':
            if (cli_long("sweep plan", "workers", optarg, 1, 1000000, &workers)) return CLI_EXIT_USAGE;
            break;
        case 'c': costs = optarg; break;
        case 'h': fputs(plan_usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("sweep plan", argv);
        }
    }
    if (optind >= argc) return cli_usage_error("sweep plan", "a grid file is required");
    if (optind + 1 < argc) return cli_usage_error("sweep plan", "unexpected argument '%s'", argv[optind + 1]);
    if (!walltime && (costs || workers != 1))
        return cli_usage_error("sweep plan", "--workers and --costs go with --walltime");
    ls_flops_estimator est;
    memset(&est, 0, sizeof est);
    if (preset) {
        if (ls_model_config_preset(preset, &est.preset) != LS_OK)
            return cli_usage_error("sweep plan", "--preset: unknown preset '%s' (tiny, small, qwen2.5-0.5b)", preset);
        est.have_preset = 1;
    }
    ls_grid g;
    if (ls_grid_load_file(argv[optind], &g) != LS_OK) return cli_fail();
    /* what every trial opens and what must fit the model and the data, as `sweep run` checks it
     * before any work (check.h); --preset stands in for a model not downloaded yet */
    if (ls_check_grid(&g, preset ? &est.preset : NULL) != LS_OK) {
        ls_grid_free(&g);
        return cli_fail();
    }

    /* Stage by stage: expandable stages get their trials, estimates and budget plan; a waiting
     * stage gets a worst-case estimate with the costliest candidate winner standing in. */
    stage_plan *sp = ls_calloc(g.n_stages, sizeof *sp);
    double left = g.budget_flops > 0 ? g.budget_flops : INFINITY;
    double grand = 0;
    int grand_known = 1, rc = CLI_EXIT_OK;
    for (size_t i = 0; i < g.n_stages && rc == CLI_EXIT_OK; i++) {
        const ls_grid_stage *s = &g.stages[i];
        stage_plan *p = &sp[i];
        const ls_grid_early_stopping *es = &s->early_stopping;
        if (es->type != LS_GRID_ES_NONE) /* each trial at its most: to the top, validated at every rung */
            p->n_rungs = ls_es_rungs(es->min_steps, es->eta, g.base.train.max_steps, p->rungs, LS_ES_MAX_RUNGS);
        if (s->select_from < 0) {
            if (ls_grid_expand(&g, i, NULL, &p->trials, &p->n) != LS_OK) {
                rc = cli_fail();
                break;
            }
            p->flops = ls_calloc(p->n, sizeof *p->flops);
            p->parts = ls_calloc(p->n, sizeof *p->parts);
            p->budget = ls_calloc(p->n, sizeof *p->budget);
            size_t *configuration = ls_calloc(p->n, sizeof *configuration);
            for (size_t t = 0; t < p->n; t++) {
                const ls_trial_config *c = &p->trials[t].config;
                p->flops[t] = ls_flops_estimate(&est, c, p->rungs, p->n_rungs, c->train.max_steps, &p->parts[t]);
                configuration[t] = p->trials[t].configuration;
            }
            ls_grid_budget_plan_groups(p->flops, configuration, p->n, &left, p->budget); /* as sweep run plans it */
            free(configuration);
            p->order_of = ls_calloc(p->n, sizeof *p->order_of);
            for (size_t b = 0; b < p->n; b++) p->order_of[p->budget[b].trial] = b;
            p->total_known = 1;
            for (size_t t = 0; t < p->n; t++) {
                if (!isfinite(p->flops[t])) p->total_known = 0;
                else if (!p->budget[t].skipped) p->total += p->budget[t].flops;
            }
            for (size_t b = 0; p->n_rungs > 1 && b < p->n; b++) /* every admitted trial stopped at rung 0 */
                if (!p->budget[b].skipped)
                    p->least += ls_flops_estimate(&est, &p->trials[p->budget[b].trial].config, p->rungs, p->n_rungs,
                                            p->rungs[0], NULL);
        } else {
            /* candidates: the source stage's trials (or its own stand-in expansion) */
            const stage_plan *src = &sp[s->select_from];
            const ls_grid_trial *cand = src->trials ? src->trials : src->stand;
            size_t nc = src->trials ? src->n : src->n_stand;
            size_t best = 0;
            double best_f = -1;
            for (size_t c = 0; c < nc; c++) {
                double f = estimate(&est, &cand[c].config, NULL);
                if (isfinite(f) && f > best_f) best_f = f, best = c;
            }
            if (nc == 0 || ls_grid_expand(&g, i, &cand[best].config, &p->stand, &p->n_stand) != LS_OK) {
                rc = cli_fail();
                break;
            }
            p->total_known = 1;
            for (size_t t = 0; t < p->n_stand; t++) {
                const ls_trial_config *c = &p->stand[t].config;
                double f = ls_flops_estimate(&est, c, p->rungs, p->n_rungs, c->train.max_steps, NULL);
                if (isfinite(f)) p->total += f;
                else p->total_known = 0;
                if (p->n_rungs > 1) p->least += ls_flops_estimate(&est, c, p->rungs, p->n_rungs, p->rungs[0], NULL);
            }
            left -= p->total_known ? p->total : 0;
        }
        grand += p->total;
        if (!p->total_known) grand_known = 0;
    }

    plan_runs pr = {0};
    if (rc == CLI_EXIT_OK && walltime > 0 && count_runs(&g, sp, costs, (int)workers, walltime, &pr) != LS_OK)
        rc = cli_fail();

    if (rc == CLI_EXIT_OK && json) {
        cJSON *root = cJSON_CreateObject();
        char id[32];
        snprintf(id, sizeof id, "%016" PRIx64, g.hash);
        cJSON_AddStringToObject(root, "name", g.name);
        cJSON_AddStringToObject(root, "grid", g.source);
        cJSON_AddStringToObject(root, "grid_id", id);
        cJSON_AddStringToObject(root, "results", g.results_path);
        if (g.budget_flops > 0) cJSON_AddNumberToObject(root, "budget_flops", g.budget_flops);
        else cJSON_AddNullToObject(root, "budget_flops");
        if (est.error[0] && !est.have_preset) cJSON_AddStringToObject(root, "estimate_error", est.error);
        if (est.data_note[0]) cJSON_AddStringToObject(root, "data_not_read", est.data_note);
        cJSON_AddNumberToObject(root, "n_trials", (double)g.n_trials);
        cJSON *stages = cJSON_AddArrayToObject(root, "stages");
        for (size_t i = 0; i < g.n_stages; i++) {
            const ls_grid_stage *s = &g.stages[i];
            const stage_plan *p = &sp[i];
            cJSON *js = cJSON_CreateObject();
            cJSON_AddItemToArray(stages, js);
            cJSON_AddStringToObject(js, "name", s->name);
            cJSON_AddNumberToObject(js, "n_trials", (double)s->n_trials);
            cJSON_AddStringToObject(js, "method", ls_grid_method_names[s->method]);
            cJSON_AddNumberToObject(js, "configurations", (double)s->n_configs);
            cJSON_AddNumberToObject(js, "repeats", (double)s->repeats);
            const ls_grid_early_stopping *es = &s->early_stopping;
            if (es->type != LS_GRID_ES_NONE) {
                cJSON *e = cJSON_AddObjectToObject(js, "early_stopping");
                cJSON_AddStringToObject(e, "type", ls_grid_es_names[es->type]);
                cJSON_AddStringToObject(e, "metric", "val_loss");
                cJSON_AddNumberToObject(e, "min_steps", es->min_steps);
                cJSON_AddNumberToObject(e, "eta", es->eta);
                if (es->type == LS_GRID_ES_MEDIAN) cJSON_AddNumberToObject(e, "min_trials", es->min_trials);
                cJSON *r = cJSON_AddArrayToObject(e, "rungs");
                for (int k = 0; k < p->n_rungs; k++) cJSON_AddItemToArray(r, cJSON_CreateNumber(p->rungs[k]));
                if (p->total_known) { /* at most: no trial stopped; at least: every trial stopped at rung 0 */
                    cJSON_AddNumberToObject(e, "flops_at_most", p->total);
                    cJSON_AddNumberToObject(e, "flops_at_least", p->least);
                }
            }
            if (s->method == LS_GRID_METHOD_GRID) {
                cJSON *axes = cJSON_AddObjectToObject(js, "grid");
                for (size_t a = 0; a < s->n_axes; a++) {
                    cJSON *vals = cJSON_AddArrayToObject(axes, s->axes[a].key->key);
                    for (size_t v = 0; v < s->axes[a].n_values; v++)
                        cJSON_AddItemToArray(vals, cJSON_CreateString(s->axes[a].values[v]));
                }
            } else { /* the space, and the configurations drawn from it (known before any winner) */
                if (s->method == LS_GRID_METHOD_RANDOM) cJSON_AddNumberToObject(js, "seed", (double)s->seed);
                cJSON *params = cJSON_AddObjectToObject(js, "parameters");
                for (size_t k = 0; k < s->n_params; k++) {
                    const ls_grid_param *gp = &s->params[k];
                    cJSON *o = cJSON_AddObjectToObject(params, gp->key->key);
                    if (gp->dist == LS_GRID_DIST_VALUES) {
                        cJSON *vals = cJSON_AddArrayToObject(o, "values");
                        for (size_t v = 0; v < gp->n_values; v++) cJSON_AddItemToArray(vals, cJSON_CreateString(gp->values[v]));
                    } else {
                        cJSON_AddStringToObject(o, "distribution", ls_grid_dist_names[gp->dist]);
                        cJSON_AddNumberToObject(o, "min", gp->min);
                        cJSON_AddNumberToObject(o, "max", gp->max);
                    }
                }
                cJSON *points = cJSON_AddArrayToObject(js, "sampled");
                for (size_t c = 0; c < s->n_configs; c++) {
                    cJSON *o = cJSON_CreateObject();
                    for (size_t k = 0; k < s->n_params; k++)
                        cJSON_AddStringToObject(o, s->params[k].key->key, s->points[c * s->n_params + k]);
                    cJSON_AddItemToArray(points, o);
                }
            }
            if (s->select_from >= 0) {
                cJSON *sel = cJSON_AddObjectToObject(js, "select");
                cJSON_AddStringToObject(sel, "from", g.stages[s->select_from].name);
                cJSON_AddStringToObject(sel, "metric", ls_grid_metric_names[s->metric]);
                cJSON *keep = cJSON_AddArrayToObject(sel, "keep");
                for (size_t k = 0; k < s->n_keep; k++) cJSON_AddItemToArray(keep, cJSON_CreateString(s->keep[k]->key));
                char *sym = symbolic(&g, s);
                cJSON_AddStringToObject(js, "plan", sym);
                free(sym);
                cJSON_AddNullToObject(js, "trials");
                if (p->total_known) cJSON_AddNumberToObject(js, "flops_at_most", p->total);
                else cJSON_AddNullToObject(js, "flops_at_most");
            } else {
                cJSON *trials = cJSON_AddArrayToObject(js, "trials");
                for (size_t t = 0; t < p->n; t++) {
                    cJSON *jt = cJSON_CreateObject();
                    char tid[32];
                    snprintf(tid, sizeof tid, "%016" PRIx64, p->trials[t].id);
                    cJSON_AddStringToObject(jt, "id", tid);
                    cJSON_AddNumberToObject(jt, "index", (double)t);
                    cJSON_AddNumberToObject(jt, "configuration", (double)p->trials[t].configuration);
                    cJSON_AddNumberToObject(jt, "repeat", (double)p->trials[t].repeat);
                    cJSON_AddStringToObject(jt, "overrides", p->trials[t].overrides);
                    if (isfinite(p->flops[t])) {
                        cJSON_AddNumberToObject(jt, "flops", p->flops[t]);
                        cJSON *parts = cJSON_AddObjectToObject(jt, "flops_parts");
                        cJSON_AddNumberToObject(parts, "train", p->parts[t].train);
                        cJSON_AddNumberToObject(parts, "validation", p->parts[t].validation);
                        cJSON_AddNumberToObject(parts, "forecast", p->parts[t].forecast);
                        cJSON_AddNumberToObject(parts, "prompt_tokens", p->parts[t].prompt_tokens);
                        cJSON_AddNumberToObject(parts, "new_tokens_max", p->parts[t].new_tokens_max);
                    } else {
                        cJSON_AddNullToObject(jt, "flops");
                    }
                    const ls_grid_budget_entry *be = &p->budget[p->order_of[t]];
                    cJSON_AddNumberToObject(jt, "run_order", (double)p->order_of[t]);
                    if (be->skipped && isfinite(p->flops[t])) cJSON_AddStringToObject(jt, "skipped", be->reason);
                    cJSON_AddItemToArray(trials, jt);
                }
                if (p->total_known) cJSON_AddNumberToObject(js, "flops", p->total);
                else cJSON_AddNullToObject(js, "flops");
            }
        }
        if (grand_known) cJSON_AddNumberToObject(root, "flops_at_most", grand);
        else cJSON_AddNullToObject(root, "flops_at_most");
        if (walltime > 0) {
            cJSON *wt = cJSON_AddObjectToObject(root, "walltime");
            cJSON_AddNumberToObject(wt, "run_seconds", walltime);
            cJSON_AddNumberToObject(wt, "workers", (double)workers);
            cJSON_AddStringToObject(wt, "costs", pr.journal);
            cJSON_AddNumberToObject(wt, "measured_runs", pr.measured);
            if (pr.runs >= 0 && !pr.unknown[0]) {
                cJSON_AddNumberToObject(wt, "runs", pr.runs);
                cJSON_AddNumberToObject(wt, "last_run_seconds", pr.last_s);
            } else cJSON_AddNullToObject(wt, "runs");
            if (pr.unknown[0]) cJSON_AddStringToObject(wt, "not_measured", pr.unknown);
            cJSON_AddBoolToObject(wt, "at_most", pr.at_most);
        }
        char *text = cJSON_Print(root);
        puts(text);
        free(text);
        cJSON_Delete(root);
    } else if (rc == CLI_EXIT_OK) {
        char f1[32], f2[32];
        printf("sweep %s (%s), grid id %016" PRIx64 "\n", g.name, g.source, g.hash);
        printf("results: %s\n", g.results_path);
        if (g.budget_flops > 0) printf("budget: %.3g FLOPS\n", g.budget_flops);
        else printf("budget: none\n");
        if (est.have_preset) printf("estimates: with the %s preset\n", preset);
        else if (est.error[0])
            printf("estimates: unknown (%s); --preset NAME estimates with a built-in model\n", est.error);
        if (est.data_note[0])
            printf("data: not read (%s): estimated as the course's shape, 1000 systems of 100 steps\n", est.data_note);
        for (size_t i = 0; i < g.n_stages; i++) {
            const ls_grid_stage *s = &g.stages[i];
            const stage_plan *p = &sp[i];
            printf("\nstage %zu/%zu %s: ", i + 1, g.n_stages, s->name);
            if (s->select_from >= 0) {
                char *sym = symbolic(&g, s);
                fmt_flops(f1, sizeof f1, p->total_known ? p->total : NAN);
                printf("%s\n  estimated at most %s FLOPS (if the costliest trial of %s wins)\n", sym, f1,
                       g.stages[s->select_from].name);
                free(sym);
                print_early_stopping(s, p);
                if (s->method != LS_GRID_METHOD_GRID) { /* its configurations are drawn already */
                    printf("  %-6s %s\n", "config", "sampled values (on the winner's kept keys)");
                    for (size_t c = 0; c < s->n_configs; c++) {
                        printf("  %-6zu", c);
                        for (size_t k = 0; k < s->n_params; k++)
                            printf(" %s=%s", s->params[k].key->key, s->points[c * s->n_params + k]);
                        printf("\n");
                    }
                }
                continue;
            }
            char *axes = axes_text(s), count[96];
            count_text(count, sizeof count, s);
            printf("%s%s%s\n", count, axes[0] ? ": " : "", axes);
            free(axes);
            int rep = s->repeats > 1; /* configuration and repeat columns */
            if (rep) printf("  %-5s %-6s %-6s %-16s %-10s %s\n", "index", "config", "repeat", "id", "flops", "overrides");
            else printf("  %-5s %-16s %-10s %s\n", "index", "id", "flops", "overrides");
            for (size_t t = 0; t < p->n; t++) {
                fmt_flops(f1, sizeof f1, p->flops[t]);
                const ls_grid_budget_entry *be = &p->budget[p->order_of[t]];
                const char *why = be->skipped && isfinite(p->flops[t]) ? be->reason : NULL;
                if (rep) printf("  %-5zu %-6zu %-6zu", t, p->trials[t].configuration, p->trials[t].repeat);
                else printf("  %-5zu", t);
                printf(" %016" PRIx64 " %-10s %s%s%s%s\n", p->trials[t].id, f1,
                       p->trials[t].overrides[0] ? p->trials[t].overrides : "(base)", why ? "  [skipped: " : "",
                       why ? why : "", why ? "]" : "");
            }
            fmt_flops(f1, sizeof f1, p->total_known ? p->total : NAN);
            printf("  stage total %s FLOPS%s\n", f1, p->n_rungs ? " (no trial stopped early)" : "");
            print_early_stopping(s, p);
        }
        fmt_flops(f1, sizeof f1, grand_known ? grand : NAN);
        printf("\ntotal: %zu trials, estimated at most %s FLOPS", g.n_trials, f1);
        if (g.budget_flops > 0) {
            fmt_flops(f2, sizeof f2, g.budget_flops);
            if (grand_known) printf(", %.1f%% of the budget %s", 100.0 * grand / g.budget_flops, f2);
            else printf(" of the budget %s", f2);
        }
        printf("\n");
        if (walltime > 0) print_runs(&g, &pr, walltime, (int)workers);
    }
    for (size_t i = 0; i < g.n_stages; i++) {
        ls_grid_trials_free(sp[i].trials, sp[i].n);
        ls_grid_trials_free(sp[i].stand, sp[i].n_stand);
        free(sp[i].flops);
        free(sp[i].parts);
        free(sp[i].budget);
        free(sp[i].order_of);
    }
    free(sp);
    ls_flops_estimator_free(&est);
    ls_grid_free(&g);
    return rc;
}

/* The subcommands; `sweep run` (the MPI scheduler) joins this table. */
static const cli_command sweep_commands[] = {
    {"plan", sweep_plan, "check a grid file and print its stages, trials and FLOPS estimate"},
    {"run", cmd_sweep_run, "run a grid's trials over MPI into one results file (under mpirun)"},
    {NULL, NULL, NULL},
};

/* `lorasweep sweep GRID.yaml ...` is `lorasweep sweep run GRID.yaml ...`: the product's main job. */
int cmd_sweep(int argc, char **argv) {
    if (argc >= 2 && argv[1][0] != '-' && (strstr(argv[1], ".yaml") || strstr(argv[1], ".yml")))
        return cmd_sweep_run(argc, argv);
    return cli_dispatch("lorasweep sweep", sweep_commands, argc, argv);
}
