/*
 * cmd_train.c: `lorasweep train TRIAL.yaml` runs one trial and writes its files; `lorasweep eval
 * TRIAL.yaml` forecasts with the base model (or a given adapter) without training.
 *
 * Output directory (default results/<name, or the trial id>):
 *   config.yaml        the resolved configuration (a rerun with another config is refused)
 *   checkpoint/        state.safetensors: continue an interrupted run by running it again
 *   adapter/           PEFT adapter (adapter_config.json, adapter_model.safetensors,
 *                      lm_head_bias.safetensors)
 *   curves.csv         step, train_loss, val_loss, lr
 *   forecasts.csv      system, step, variable, truth, mean, median, std
 *   metrics.json       losses, MSE/MAE per variable and system, FLOPS, tokens/s, wall time
 * Exit status 0 done, 1 failed, 2 bad command line, 3 stopped by a signal (checkpointed).
 */
#include <errno.h>
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lorasweep/check.h"
#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/trial.h"

static const char train_usage[] =
    "usage: lorasweep train TRIAL.yaml [--out DIR] [--set KEY=VALUE ...] [--quiet]\n"
    "\n"
    "Trains a LoRA adapter as TRIAL.yaml says (keys: docs/config.md), then forecasts the test\n"
    "systems. Writes config.yaml, adapter/ (PEFT), checkpoint/, curves.csv, forecasts.csv and\n"
    "metrics.json into DIR (default results/<name or trial id>). Running the same command again\n"
    "continues an interrupted run from its checkpoint, and does nothing for a finished one.\n"
    "SIGINT/SIGTERM checkpoint and stop (exit 3).\n"
    "  --set KEY=VALUE   override one key, e.g. --set train.lr=1e-4 (repeatable)\n"
    "  --quiet           no progress lines\n";

static const char eval_usage[] =
    "usage: lorasweep eval TRIAL.yaml [--adapter DIR] [--out DIR] [--set KEY=VALUE ...] [--quiet]\n"
    "\n"
    "Forecasts the test systems as TRIAL.yaml's eval section says, with the base model (the\n"
    "untrained baseline) or with the adapter in DIR, without training. Writes config.yaml,\n"
    "forecasts.csv and metrics.json into --out (default results/<name or trial id>-eval).\n";

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}
static int should_stop(void *ctx) {
    (void)ctx;
    return stop_requested;
}

/* ---- progress ----------------------------------------------------------------------------- */

typedef struct {
    int quiet, tty;
    double last_print;
} progress_state;

static void format_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* On a terminal one line is rewritten; into a file (a Slurm log) a line every 10 s and at each
 * validation. */
static void on_progress(void *ctx, const ls_train_progress *p) {
    progress_state *ps = ctx;
    if (ps->quiet) return;
    double now = ls_now();
    int validation = !isnan(p->val_loss), last = p->step == p->max_steps;
    if (!ps->tty && !validation && !last && now - ps->last_print < 10) return;
    if (ps->tty && !validation && !last && now - ps->last_print < 0.2) return;
    ps->last_print = now;
    char eta[32], val[32] = "";
    format_duration(eta, sizeof eta, p->eta_s);
    if (validation) snprintf(val, sizeof val, "  val %.4f", p->val_loss);
    fprintf(stderr, "%sstep %d/%d  loss %.4f%s  lr %.2e  |g| %.3f  %.0f tok/s  ETA %s%s", ps->tty ? "\r\033[K" : "",
            p->step, p->max_steps, p->loss, val, p->lr, p->grad_norm, p->tokens_per_s, eta,
            ps->tty && !validation && !last ? "" : "\n");
}

static void on_forecast_progress(void *ctx, int done, int total) {
    progress_state *ps = ctx;
    if (ps->quiet) return;
    if (ps->tty) fprintf(stderr, "\r\033[Kforecast %d/%d systems%s", done, total, done == total ? "\n" : "");
    else if (done == total || ls_now() - ps->last_print > 10) {
        fprintf(stderr, "forecast %d/%d systems\n", done, total);
        ps->last_print = ls_now();
    }
}

/* ---- output files ------------------------------------------------------------------------- */

/* ---- the commands ------------------------------------------------------------------------- */

/* eval --adapter DIR: a PEFT adapter directory (its shapes are checked against the model when it
 * is loaded, before the weights are). */
static int check_adapter(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (access(path, R_OK) != 0) return ls_error("--adapter: %s: %s", path, strerror(errno));
    return LS_OK;
}

/* A directory whose trial never started: no checkpoint and none of the files a trial writes
 * (a run that failed at start-up left config.yaml alone). Such a directory is taken over. */
static int never_started(const char *dir) {
    static const char *const written[] = {"checkpoint", "adapter", "metrics.json", "curves.csv", "forecasts.csv"};
    char path[4200];
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, written[i]);
        if (access(path, F_OK) == 0) return 0;
    }
    return 1;
}

/* Load, override and check the config; pick and prepare the output directory. */
static int prepare(const char *cmd, const char *yaml, char **sets, int n_sets, const char *out_opt, const char *suffix,
                   const char *adapter, ls_trial_config *cfg, char *out_dir, size_t cap) {
    if (ls_config_load_file(yaml, cfg) != LS_OK) return cli_fail();
    for (int i = 0; i < n_sets; i++) { /* each has its '=' (cli_set_arg) */
        char *eq = strchr(sets[i], '=');
        *eq = '\0';
        int rc = ls_config_set(cfg, sets[i], eq + 1);
        *eq = '=';
        if (rc != LS_OK) { /* a bad command line, as in `config check` */
            ls_config_free(cfg);
            return cli_usage_error(cmd, "--set %s", ls_last_error());
        }
    }
    if (ls_config_validate(cfg) != LS_OK) {
        ls_config_free(cfg);
        return cli_fail();
    }
    if (cfg->train.ranks_per_trial > 1) { /* data parallel needs the sweep's MPI groups */
        ls_error("%s: train.ranks_per_trial: %d, but lorasweep %s runs on 1 rank (data parallel runs in a sweep: "
                 "mpirun -np N lorasweep sweep run)", cfg->source ? cfg->source : "<config>",
                 cfg->train.ranks_per_trial, cmd);
        ls_config_free(cfg);
        return cli_fail();
    }
    /* Before anything is created: the files the trial opens, and train.ctx, the split and the
     * forecast against the model and the data (check.h); eval's adapter too. */
    ls_check *k = ls_check_new(NULL);
    int checked = ls_check_trial(k, cfg);
    ls_check_free(k);
    if (checked == LS_OK && adapter) checked = check_adapter(adapter);
    if (checked != LS_OK) {
        ls_config_free(cfg);
        return cli_fail();
    }
    if (out_opt) snprintf(out_dir, cap, "%s", out_opt);
    else if (cfg->name[0]) snprintf(out_dir, cap, "results/%s%s", cfg->name, suffix);
    else snprintf(out_dir, cap, "results/%016" PRIx64 "%s", ls_config_hash(cfg), suffix);
    /* An existing directory must hold this very trial, unless its trial never started. */
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", out_dir);
    char *yaml_now = ls_config_to_yaml(cfg);
    int rc = CLI_EXIT_OK;
    if (access(path, R_OK) == 0 && !never_started(out_dir)) {
        ls_trial_config old;
        if (ls_config_load_file(path, &old) != LS_OK) rc = cli_fail();
        else {
            if (ls_config_hash(&old) != ls_config_hash(cfg)) {
                ls_error("%s holds another trial (id %016" PRIx64 ", this one is %016" PRIx64 "); choose another --out",
                         out_dir, ls_config_hash(&old), ls_config_hash(cfg));
                rc = cli_fail();
            }
            ls_config_free(&old);
        }
    } else if (ls_mkdirs(out_dir) != LS_OK || ls_write_file_atomic(path, yaml_now, strlen(yaml_now)) != LS_OK) {
        rc = cli_fail();
    }
    free(yaml_now);
    if (rc != CLI_EXIT_OK) ls_config_free(cfg);
    return rc;
}

/* A trial that finished in out_dir (metrics.json says done): its summary on stderr, and 1; a
 * rerun of a finished `train` redoes nothing (and keeps the wall time it recorded). */
static int already_done(const char *cmd, const char *out_dir, int quiet) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.json", out_dir);
    if (access(path, R_OK) != 0) return 0;
    size_t n;
    char *text = ls_read_file(path, &n);
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(m, "status");
    int done = cJSON_IsString(status) && !strcmp(status->valuestring, "done");
    if (done && !quiet) {
        const cJSON *wall = cJSON_GetObjectItemCaseSensitive(m, "wall_seconds"),
                    *val = cJSON_GetObjectItemCaseSensitive(m, "final_val_loss"),
                    *fc = cJSON_GetObjectItemCaseSensitive(m, "forecast");
        const cJSON *mse = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(fc, "mse"), "both");
        fprintf(stderr, "lorasweep %s: already done in %s (%.1f s", cmd, out_dir, cJSON_IsNumber(wall) ? wall->valuedouble : NAN);
        if (cJSON_IsNumber(val)) fprintf(stderr, ", val loss %.4f", val->valuedouble);
        if (cJSON_IsNumber(mse)) fprintf(stderr, ", forecast MSE %.4g", mse->valuedouble);
        fprintf(stderr, "); nothing to do (remove %s to run it again)\n", out_dir);
    }
    cJSON_Delete(m);
    return done;
}

static int run_and_write(const char *cmd, ls_trial_config *cfg, const char *out_dir, const char *adapter_dir, int quiet,
                         int write_adapter) {
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint", out_dir);
    progress_state ps = {quiet, isatty(2), 0};
    ls_trial_hooks hooks = {
        .train = {on_progress, NULL, should_stop, &ps},
        .forecast_progress = on_forecast_progress,
        .forecast_ctx = &ps,
        .checkpoint_dir = write_adapter ? ckpt : NULL,
        .adapter_dir = adapter_dir,
    };
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ls_trial_result r;
    if (!quiet) fprintf(stderr, "lorasweep %s: trial %016" PRIx64 " -> %s\n", cmd, ls_config_hash(cfg), out_dir);
    int rc = ls_trial_run(cfg, &hooks, &r);
    int stopped = rc == LS_OK && r.train.step < cfg->train.max_steps;
    if (rc == LS_OK) rc = ls_trial_write_outputs(out_dir, cfg, &r, write_adapter);
    int status = CLI_EXIT_OK;
    if (rc != LS_OK) status = cli_fail();
    else if (stopped) {
        fprintf(stderr, "lorasweep %s: stopped at step %d of %d (checkpointed); run the same command to continue\n",
                cmd, r.train.step, cfg->train.max_steps);
        status = 3;
    } else if (!quiet) { /* what was measured only: eval trains nothing, no validation split no val loss */
        const char *sep = ": ";
        double before = r.train.wall_seconds_before; /* earlier attempts of a resumed trial */
        fprintf(stderr, "lorasweep %s: done in %.3f s", cmd, r.wall_seconds - before);
        if (before > 0) fprintf(stderr, " (%.3f s with the earlier attempts)", r.wall_seconds);
        if (isfinite(r.final_train_loss)) fprintf(stderr, "%strain loss %.4f", sep, r.final_train_loss), sep = ", ";
        if (isfinite(r.final_val_loss)) fprintf(stderr, "%sval loss %.4f", sep, r.final_val_loss), sep = ", ";
        if (r.has_forecast)
            fprintf(stderr, "%sforecast MSE %.4g, MAE %.4g (%d failed samples)", sep,
                    r.forecast.mse_mean[LS_METRIC_BOTH], r.forecast.mae_mean[LS_METRIC_BOTH], r.forecast.failed_total),
                sep = ", ";
        fprintf(stderr, "%s%.3g FLOPS\n", sep, r.flops_total);
    }
    ls_trial_result_free(&r);
    return status;
}

static int train_or_eval(int argc, char **argv, int is_eval) {
    const char *cmd = is_eval ? "eval" : "train";
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"set", required_argument, 0, 's'}, {"adapter", required_argument, 0, 'a'},
        {"quiet", no_argument, 0, 'q'},     {"help", no_argument, 0, 'h'},      {0, 0, 0, 0},
    };
    const char *out_opt = NULL, *adapter = NULL;
    char **sets = ls_calloc((size_t)argc + 2, sizeof(char *));
    int n_sets = 0, quiet = 0, c, rc;
    while ((c = getopt_long(argc, argv, ":o:s:a:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_opt = optarg; break;
        case 's':
            if ((rc = cli_set_arg(cmd, optarg, argc, argv)) != CLI_EXIT_OK) {
                free(sets);
                return rc;
            }
            sets[n_sets++] = optarg;
            break;
        case 'a':
            if (!is_eval) {
                free(sets);
                return cli_usage_error(cmd, "unknown option '--adapter'");
            }
            adapter = optarg;
            break;
        case 'q': quiet = 1; break;
        case 'h':
            free(sets);
            fputs(is_eval ? eval_usage : train_usage, stdout);
            return CLI_EXIT_OK;
        default: free(sets); return cli_bad_option(cmd, argv);
        }
    }
    if (optind + 1 != argc) {
        free(sets);
        return cli_usage_error(cmd, optind == argc ? "TRIAL.yaml is required" : "one TRIAL.yaml only");
    }
    ls_trial_config cfg;
    char out_dir[4096];
    if (is_eval) { /* no training: the base model, or the given adapter, as it is, in one process
                    * (a data-parallel sweep trial's config.yaml evaluates as it is) */
        static char zero[] = "train.max_steps=0", one[] = "train.ranks_per_trial=1";
        sets[n_sets++] = zero;
        sets[n_sets++] = one;
    }
    rc = prepare(cmd, argv[optind], sets, n_sets, out_opt, is_eval ? "-eval" : "", adapter, &cfg, out_dir,
                 sizeof out_dir);
    free(sets);
    if (rc != CLI_EXIT_OK) return rc;
    if (!is_eval && already_done(cmd, out_dir, quiet)) rc = CLI_EXIT_OK;
    else rc = run_and_write(cmd, &cfg, out_dir, adapter, quiet, !is_eval);
    ls_config_free(&cfg);
    return rc;
}

int cmd_train(int argc, char **argv) { return train_or_eval(argc, argv, 0); }
int cmd_eval(int argc, char **argv) { return train_or_eval(argc, argv, 1); }
