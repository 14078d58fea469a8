/*
 * trial_output.c: a trial's files: adapter/ (PEFT), curves.csv, metrics.json, forecasts.csv
 * (the layout is described in docs/training.md). Written by `lorasweep train`/`eval` into the
 * output directory and by sweep workers into the sweep's per-trial directories.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lorasweep/common.h"
#include "lorasweep/trial.h"

static int write_text_file(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return ls_write_file_atomic(path, text, strlen(text));
}

/* JSON has no NaN: write null. */
static void sb_num(ls_strbuf *b, double x) {
    if (isfinite(x)) ls_strbuf_printf(b, "%.9g", x);
    else ls_strbuf_printf(b, "null");
}

static char *curves_csv(const ls_trial_result *r, const ls_trial_config *cfg) {
    ls_strbuf b = {0};
    ls_strbuf_printf(&b, "step,train_loss,val_loss\n");
    for (int s = 0, e = 0; s <= r->train.step; s++) {
        if (s == 0 && !(r->train.n_evals > 0 && r->train.eval_step[0] == 0)) continue;
        if (s == 0) ls_strbuf_printf(&b, "0,,"); /* the untrained adapter: validation only */
        else ls_strbuf_printf(&b, "%d,%.9g,", s, r->train.train_loss[s - 1]);
        while (e < r->train.n_evals && r->train.eval_step[e] < s) e++;
        if (e < r->train.n_evals && r->train.eval_step[e] == s) ls_strbuf_printf(&b, "%.9g", r->train.val_loss[e]);
        ls_strbuf_printf(&b, "\n");
    }
    (void)cfg;
    return b.p ? b.p : ls_strdup("step,train_loss,val_loss\n");
}

static char *forecasts_csv(const ls_forecast *f) {
    static const char *var[2] = {"prey", "predator"};
    ls_strbuf b = {0};
    ls_strbuf_printf(&b, "system,step,variable,truth,mean,median,std\n");
    for (int i = 0; i < f->n_systems; i++)
        for (int h = 0; h < f->steps; h++)
            for (int v = 0; v < 2; v++) {
                size_t at = ((size_t)i * f->steps + h) * 2 + v;
                ls_strbuf_printf(&b, "%d,%d,%s,%.9g,%.9g,%.9g,%.9g\n", f->system[i], h, var[v], f->truth[at], f->mean[at],
                          f->median[at], f->std[at]);
            }
    return b.p;
}

static char *metrics_json(const ls_trial_result *r, const ls_trial_config *cfg, int stopped) {
    static const char *metric[3] = {"prey", "predator", "both"};
    ls_strbuf b = {0};
    ls_strbuf_printf(&b, "{\n  \"trial_id\": \"%016" PRIx64 "\",\n  \"name\": ", r->id);
    char *name_json = ls_config_value_yaml(cfg, ls_config_find("name")); /* a quoted, escaped string */
    ls_strbuf_printf(&b, "%s,\n  \"status\": \"%s\",\n", name_json, stopped ? "interrupted" : "done");
    free(name_json);
    ls_strbuf_printf(&b, "  \"steps\": %d,\n  \"max_steps\": %d,\n  \"alpha\": ", r->train.step, cfg->train.max_steps);
    sb_num(&b, r->alpha);
    char checksum[32];
    ls_data_checksum_text(r->data_checksum, checksum, sizeof checksum);
    ls_strbuf_printf(&b, ",\n  \"data_checksum\": \"%s\"", checksum);
    ls_strbuf_printf(&b, ",\n  \"train_windows\": %d,\n  \"val_windows\": %d,\n  \"final_train_loss\": ", r->n_train_windows,
              r->n_val_windows);
    sb_num(&b, r->final_train_loss);
    ls_strbuf_printf(&b, ",\n  \"initial_val_loss\": ");
    sb_num(&b, r->train.n_evals > 0 && r->train.eval_step[0] == 0 ? r->train.val_loss[0] : NAN);
    ls_strbuf_printf(&b, ",\n  \"final_val_loss\": ");
    sb_num(&b, r->final_val_loss);
    ls_strbuf_printf(&b, ",\n  \"train_tokens\": %.0f,\n  \"train_seconds\": ", r->train.train_tokens);
    sb_num(&b, r->train.train_seconds);
    ls_strbuf_printf(&b, ",\n  \"tokens_per_second\": ");
    sb_num(&b, r->train.train_seconds > 0 ? r->train.train_tokens / r->train.train_seconds : NAN);
    ls_strbuf_printf(&b, ",\n  \"flops\": {\"train\": %.6g, \"validation\": %.6g, \"forecast\": %.6g, \"total\": %.6g},\n",
              r->flops_train, r->flops_validation, r->flops_forecast, r->flops_total);
    ls_strbuf_printf(&b, "  \"wall_seconds\": %.3f", r->wall_seconds);
    if (r->has_forecast) {
        const ls_forecast *f = &r->forecast;
        ls_strbuf_printf(&b, ",\n  \"forecast\": {\n    \"systems\": %d, \"steps\": %d, \"samples\": %d, \"failed_samples\": %d,\n",
                  f->n_systems, f->steps, f->samples, f->failed_total);
        for (int pass = 0; pass < 2; pass++) {
            const double *mean = pass ? f->mae_mean : f->mse_mean;
            ls_strbuf_printf(&b, "    \"%s\": {", pass ? "mae" : "mse");
            for (int m = 0; m < 3; m++) {
                ls_strbuf_printf(&b, "%s\"%s\": ", m ? ", " : "", metric[m]);
                sb_num(&b, mean[m]);
            }
            ls_strbuf_printf(&b, "},\n");
        }
        ls_strbuf_printf(&b, "    \"per_system\": [\n");
        for (int i = 0; i < f->n_systems; i++) {
            ls_strbuf_printf(&b, "      {\"system\": %d, \"alpha\": %.9g, \"failed\": %d", f->system[i], f->alpha[i], f->failed[i]);
            for (int m = 0; m < 3; m++) {
                ls_strbuf_printf(&b, ", \"mse_%s\": ", metric[m]);
                sb_num(&b, f->mse[(size_t)i * 3 + m]);
                ls_strbuf_printf(&b, ", \"mae_%s\": ", metric[m]);
                sb_num(&b, f->mae[(size_t)i * 3 + m]);
            }
            ls_strbuf_printf(&b, "}%s\n", i + 1 < f->n_systems ? "," : "");
        }
        ls_strbuf_printf(&b, "    ],\n    \"prompt_tokens\": %ld, \"generated_tokens\": %ld, \"seconds\": %.3f\n  }",
                  f->prompt_tokens, f->generated_tokens, f->seconds);
    }
    ls_strbuf_printf(&b, "\n}\n");
    return b.p;
}

/* An absolute path without "." and "dir/.." parts, the parts kept where removing them would name
 * another place (a ".." after a symbolic link): the same directory, tidied. */
static char *tidy_path(const char *path) {
    if (path[0] != '/') return ls_strdup(path);
    size_t n = strlen(path), depth = 0;
    size_t *start = ls_malloc((n + 1) * sizeof *start), *len = ls_malloc((n + 1) * sizeof *len);
    for (size_t i = 0; i < n;) {
        while (i < n && path[i] == '/') i++;
        size_t j = i;
        while (j < n && path[j] != '/') j++;
        size_t l = j - i;
        if (l == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (depth) depth--;
        } else if (l && !(l == 1 && path[i] == '.')) {
            start[depth] = i, len[depth++] = l;
        }
        i = j;
    }
    ls_strbuf b = {0};
    for (size_t d = 0; d < depth; d++) ls_strbuf_printf(&b, "/%.*s", (int)len[d], path + start[d]);
    if (!b.p) ls_strbuf_puts(&b, "/");
    free(start), free(len);
    struct stat a, t;
    if (stat(path, &a) == 0 && stat(b.p, &t) == 0 && a.st_dev == t.st_dev && a.st_ino == t.st_ino) return b.p;
    free(b.p);
    return ls_strdup(path);
}

int ls_trial_write_outputs(const char *dir, const ls_trial_config *cfg, const ls_trial_result *r, int write_adapter) {
    char adapter_dir[4200];
    snprintf(adapter_dir, sizeof adapter_dir, "%s/adapter", dir);
    int stopped = r->train.step < cfg->train.max_steps, rc = LS_OK;
    if (write_adapter) { /* base_model_name_or_path: model.path made absolute, so it holds wherever the adapter goes */
        char *base = tidy_path(cfg->resolved.model_path);
        rc = ls_lora_save_for(adapter_dir, &r->adapter, &r->model_cfg, base);
        free(base);
    }
    if (rc == LS_OK && write_adapter) {
        char *curves = curves_csv(r, cfg);
        rc = write_text_file(dir, "curves.csv", curves);
        free(curves);
    }
    if (rc == LS_OK) {
        char *metrics = metrics_json(r, cfg, stopped);
        rc = write_text_file(dir, "metrics.json", metrics);
        free(metrics);
    }
    if (rc == LS_OK && r->has_forecast) {
        char *fc = forecasts_csv(&r->forecast);
        rc = write_text_file(dir, "forecasts.csv", fc);
        free(fc);
    }
    return rc;
}
