/*
 * check.c: a trial's files and what must fit the model and the data, checked before any work
 * (API and messages in include/lorasweep/check.h).
 *
 * Decisions:
 *  - Messages name the key and show the path as the file wrote it (relative paths stay
 *    relative), then the system's reason: "t.yaml: data.path: data/lv.h5: No such file or
 *    directory". What the user must edit is the key; the resolved path would hide which one.
 *  - The weights are found and opened, not read: a 1 GB read per check would cost more than
 *    the mistakes it catches. A damaged weight file still fails when the trial loads it.
 *  - The prompt is measured exactly as the forecast builds it (ls_forecast_longest_prompt, the
 *    same code), so the check cannot pass a trial that then fails after training, nor refuse
 *    one that would run. That needs the tokenizer and the data, read once per path per check.
 */
#include "lorasweep/check.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/eval.h"
#include "lorasweep/trial.h"

static const char *source_of(const ls_trial_config *cfg) { return cfg->source ? cfg->source : "<config>"; }

/* dir + "/" + name, for messages and paths */
static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    ls_strbuf b = {0};
    ls_strbuf_puts(&b, dir);
    if (n && dir[n - 1] != '/') ls_strbuf_puts(&b, "/");
    ls_strbuf_puts(&b, name);
    return b.p;
}

/* 0 when path is a file that can be opened for reading, else the errno that says why not. */
static int file_problem(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return errno;
    if (S_ISDIR(sb.st_mode)) return EISDIR;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* "SOURCE: KEY: SHOWN: reason" when path cannot be opened. */
static int check_file(const ls_trial_config *cfg, const char *key, const char *shown, const char *path,
                      const char *note) {
    int err = file_problem(path);
    if (!err) return LS_OK;
    return ls_error("%s: %s: %s: %s%s", source_of(cfg), key, shown, strerror(err), note ? note : "");
}

int ls_check_files(const ls_trial_config *cfg, const ls_model_config *preset, ls_model_config *model) {
    const char *src = source_of(cfg);
    if (!cfg->model.path[0]) return ls_error("%s: model.path is required", src);
    if (!cfg->data.path[0]) return ls_error("%s: data.path is required", src);
    int rc = LS_OK, model_absent = 0;
    struct stat sb;
    /* model.path: a directory with config.json and the weights */
    if (stat(cfg->resolved.model_path, &sb) != 0) {
        int err = errno;
        if (preset && err == ENOENT) model_absent = 1;
        else return ls_error("%s: model.path: %s: %s", src, cfg->model.path, strerror(err));
    } else if (!S_ISDIR(sb.st_mode)) {
        return ls_error("%s: model.path: %s: %s (a checkpoint directory: config.json, model.safetensors)", src,
                        cfg->model.path, strerror(ENOTDIR));
    }
    if (model_absent) {
        *model = *preset;
    } else {
        char *shown = join(cfg->model.path, "config.json"), *path = join(cfg->resolved.model_path, "config.json");
        rc = check_file(cfg, "model.path", shown, path, NULL);
        if (rc == LS_OK && ls_model_config_load(path, model) != LS_OK) rc = ls_error_prefix("%s: model.path", src);
        free(shown), free(path);
        if (rc != LS_OK) return rc;
        static const char *const weights[] = {"model.safetensors", "model.safetensors.index.json"};
        int found = -1;
        for (int w = 0; w < 2 && found < 0; w++) {
            path = join(cfg->resolved.model_path, weights[w]);
            if (exists(path)) found = w;
            free(path);
        }
        if (found < 0)
            return ls_error("%s: model.path: %s: neither model.safetensors nor model.safetensors.index.json is there",
                            src, cfg->model.path);
        shown = join(cfg->model.path, weights[found]), path = join(cfg->resolved.model_path, weights[found]);
        rc = check_file(cfg, "model.path", shown, path, NULL);
        free(shown), free(path);
        if (rc != LS_OK) return rc;
    }
    /* the tokenizer: model.tokenizer, or the one in model.path */
    if (cfg->model.tokenizer[0]) {
        rc = check_file(cfg, "model.tokenizer", cfg->model.tokenizer, cfg->resolved.tokenizer, NULL);
    } else if (!model_absent) {
        char *shown = join(cfg->model.path, "tokenizer.json");
        rc = check_file(cfg, "model.tokenizer", shown, cfg->resolved.tokenizer,
                        " (model.tokenizer is not set, so model.path's tokenizer.json is used: copy one there "
                        "or set model.tokenizer)");
        free(shown);
    }
    if (rc != LS_OK) return rc;
    return check_file(cfg, "data.path", cfg->data.path, cfg->resolved.data_path, NULL);
}

int ls_check_ctx(const ls_trial_config *cfg, const ls_model_config *model) {
    if (cfg->train.ctx <= model->max_positions) return LS_OK;
    return ls_error("%s: train.ctx: %d is more than the model's %d positions (max_position_embeddings)",
                    source_of(cfg), cfg->train.ctx, model->max_positions);
}

int ls_check_split(const ls_trial_config *cfg, int systems) {
    const char *src = source_of(cfg);
    int test = cfg->split.test_systems;
    if (test >= systems)
        return ls_error("%s: split.test_systems: %d test systems leave none of data.path's %d systems for training "
                        "(at most %d)", src, test, systems, systems - 1);
    int rest = systems - test, n_val = (int)lround(cfg->split.val_fraction * rest); /* as ls_split_make */
    if (n_val >= rest)
        return ls_error("%s: split.val_fraction: %g of the %d systems after split.test_systems leaves none for "
                        "training", src, cfg->split.val_fraction, rest);
    return LS_OK;
}

/* The forecast's steps within the data's (before anything is measured). */
static int forecast_steps_fit(const ls_trial_config *cfg, int data_steps, int n_test) {
    const ls_config_eval *e = &cfg->eval;
    if (e->context_steps + e->forecast_steps > data_steps)
        return ls_error("%s: eval.context_steps + eval.forecast_steps: %d + %d steps, more than the %d steps of "
                        "each system in data.path", source_of(cfg), e->context_steps, e->forecast_steps, data_steps);
    if (e->systems > n_test)
        return ls_error("%s: eval.systems: %d, but the test split has %d systems (split.test_systems)",
                        source_of(cfg), e->systems, n_test);
    return LS_OK;
}

/* The longest prompt plus the new tokens within the model's positions. */
static int forecast_positions_fit(const ls_trial_config *cfg, const ls_model_config *model, int longest) {
    const ls_config_eval *e = &cfg->eval;
    int decimals = cfg->encoding.decimals;
    int fresh = ls_forecast_new_tokens(e->max_new_tokens, e->forecast_steps, decimals);
    long need = (long)longest + fresh;
    if (need <= model->max_positions) return LS_OK;
    const char *limit = e->max_new_tokens > 0 ? "eval.max_new_tokens" : "eval.forecast_steps";
    char why[64];
    if (e->max_new_tokens > 0) snprintf(why, sizeof why, "eval.max_new_tokens");
    else snprintf(why, sizeof why, "%d steps", e->forecast_steps);
    return ls_error("%s: eval.context_steps + %s: a forecast prompt of %d tokens (%d steps at %d decimals) plus %d new "
                    "tokens (%s) needs %ld positions, more than the model's %d: lower eval.context_steps or %s (or "
                    "encoding.decimals)", source_of(cfg), limit, longest, e->context_steps, decimals, fresh, why, need,
                    model->max_positions, limit);
}

/* The longest prompt of the trial's forecast. */
static int measure_prompt(const ls_trial_config *cfg, const ls_tokenizer *tok, const ls_dataset *ds,
                          const ls_split *split, double dataset_alpha, int *longest) {
    ls_encoding enc = ls_trial_encoding(cfg);
    if (ls_forecast_longest_prompt(tok, ds, split->test, cfg->eval.systems, cfg->eval.context_steps, &enc,
                                   dataset_alpha, longest) != LS_OK)
        return ls_error_prefix("%s: eval.context_steps", source_of(cfg));
    return LS_OK;
}

int ls_check_forecast(const ls_trial_config *cfg, const ls_model_config *model, const ls_tokenizer *tok,
                      const ls_dataset *ds, const ls_split *split, double dataset_alpha) {
    if (cfg->eval.systems <= 0) return LS_OK;
    int longest = 0;
    if (forecast_steps_fit(cfg, ds->steps, split->n_test) != LS_OK ||
        measure_prompt(cfg, tok, ds, split, dataset_alpha, &longest) != LS_OK)
        return LS_ERR;
    return forecast_positions_fit(cfg, model, longest);
}

/* ---- many trials ------------------------------------------------------------------------------ */

typedef struct {
    char *key;            /* what the result depends on */
    int ok;
    ls_model_config model;
    int model_absent;     /* the preset stands in for model.path */
} files_entry;

typedef struct {
    char *path;
    ls_tokenizer *tok;    /* NULL: could not be read (error) */
    char *error;
} tok_entry;

typedef struct {
    char *path;
    int ok;
    ls_dataset ds;
    char *error;
} data_entry;

typedef struct {
    char *key;
    int longest;
} prompt_entry;

struct ls_check {
    int has_preset;
    ls_model_config preset;
    files_entry *files;
    size_t n_files;
    tok_entry *toks;
    size_t n_toks;
    data_entry *data;
    size_t n_data;
    prompt_entry *prompts;
    size_t n_prompts;
};

ls_check *ls_check_new(const ls_model_config *preset) {
    ls_check *k = ls_calloc(1, sizeof *k);
    if (preset) k->has_preset = 1, k->preset = *preset;
    return k;
}

void ls_check_free(ls_check *k) {
    if (!k) return;
    for (size_t i = 0; i < k->n_files; i++) free(k->files[i].key);
    for (size_t i = 0; i < k->n_toks; i++) {
        free(k->toks[i].path), free(k->toks[i].error);
        ls_tokenizer_free(k->toks[i].tok);
    }
    for (size_t i = 0; i < k->n_data; i++) {
        free(k->data[i].path), free(k->data[i].error);
        if (k->data[i].ok) ls_dataset_free(&k->data[i].ds);
    }
    for (size_t i = 0; i < k->n_prompts; i++) free(k->prompts[i].key);
    free(k->files), free(k->toks), free(k->data), free(k->prompts);
    free(k);
}

/* The values of the keys of `names` as one string, after a prefix (a cache key). */
static char *values_key(const ls_trial_config *cfg, const char *prefix, const char *const *names) {
    ls_strbuf b = {0};
    ls_strbuf_puts(&b, prefix);
    for (int i = 0; names[i]; i++) {
        char *v = ls_config_value_yaml(cfg, ls_config_find(names[i]));
        ls_strbuf_printf(&b, "\n%s", v);
        free(v);
    }
    return b.p;
}

/* ls_check_files, once per set of paths (a failure is checked again, so that its message names
 * the trial at hand). */
static int cached_files(ls_check *k, const ls_trial_config *cfg, const files_entry **out) {
    static const char *const keys[] = {"model.path", "model.tokenizer", "data.path", NULL};
    const ls_model_config *preset = k->has_preset ? &k->preset : NULL;
    ls_strbuf b = {0};
    ls_strbuf_printf(&b, "%s\n%s\n%s", cfg->resolved.model_path, cfg->resolved.tokenizer, cfg->resolved.data_path);
    char *key = values_key(cfg, b.p, keys); /* as written too: they are in the messages */
    free(b.p);
    for (size_t i = 0; i < k->n_files; i++)
        if (!strcmp(k->files[i].key, key)) {
            free(key);
            *out = &k->files[i];
            ls_model_config again;
            return k->files[i].ok ? LS_OK : ls_check_files(cfg, preset, &again);
        }
    k->files = ls_realloc(k->files, (k->n_files + 1) * sizeof *k->files);
    files_entry *e = &k->files[k->n_files++];
    memset(e, 0, sizeof *e);
    e->key = key;
    e->ok = ls_check_files(cfg, preset, &e->model) == LS_OK;
    struct stat sb;
    e->model_absent = e->ok && preset && stat(cfg->resolved.model_path, &sb) != 0;
    *out = e;
    return e->ok ? LS_OK : LS_ERR;
}

static const ls_tokenizer *cached_tokenizer(ls_check *k, const ls_trial_config *cfg, int *rc) {
    const char *path = cfg->resolved.tokenizer;
    tok_entry *e = NULL;
    for (size_t i = 0; i < k->n_toks && !e; i++)
        if (!strcmp(k->toks[i].path, path)) e = &k->toks[i];
    if (!e) {
        k->toks = ls_realloc(k->toks, (k->n_toks + 1) * sizeof *k->toks);
        e = &k->toks[k->n_toks++];
        memset(e, 0, sizeof *e);
        e->path = ls_strdup(path);
        e->tok = ls_tokenizer_load(path);
        if (!e->tok) e->error = ls_strdup(ls_last_error());
    }
    *rc = e->tok ? LS_OK : ls_error("%s: model.tokenizer: %s", source_of(cfg), e->error);
    return e->tok;
}

static const ls_dataset *cached_data(ls_check *k, const ls_trial_config *cfg) {
    const char *path = cfg->resolved.data_path;
    data_entry *e = NULL;
    for (size_t i = 0; i < k->n_data && !e; i++)
        if (!strcmp(k->data[i].path, path)) e = &k->data[i];
    if (!e) {
        k->data = ls_realloc(k->data, (k->n_data + 1) * sizeof *k->data);
        e = &k->data[k->n_data++];
        memset(e, 0, sizeof *e);
        e->path = ls_strdup(path);
        e->ok = ls_dataset_read(path, &e->ds) == LS_OK;
        if (!e->ok) e->error = ls_strdup(ls_last_error());
    }
    if (e->ok) return &e->ds;
    ls_error("%s: data.path: %s", source_of(cfg), e->error);
    return NULL;
}

int ls_check_trial(ls_check *k, const ls_trial_config *cfg) {
    const files_entry *f;
    if (cached_files(k, cfg, &f) != LS_OK) return LS_ERR;
    if (ls_check_ctx(cfg, &f->model) != LS_OK) return LS_ERR;
    int rc = LS_OK;
    /* no tokenizer while the preset stands in for a missing model.path: count characters */
    const ls_tokenizer *tok = NULL;
    if (!(f->model_absent && !cfg->model.tokenizer[0])) {
        tok = cached_tokenizer(k, cfg, &rc);
        if (rc != LS_OK) return rc;
    }
    const ls_dataset *ds = cached_data(k, cfg);
    if (!ds) return LS_ERR;
    if (ls_check_split(cfg, ds->systems) != LS_OK) return LS_ERR;
    if (cfg->eval.systems <= 0) return LS_OK;
    if (forecast_steps_fit(cfg, ds->steps, cfg->split.test_systems) != LS_OK) return LS_ERR;
    /* the longest prompt depends on these keys (and the files): measured once per combination */
    static const char *const keys[] = {"encoding.alpha", "encoding.alpha_scope", "encoding.alpha_percentile",
                                       "encoding.alpha_target", "encoding.decimals", "split.test_systems",
                                       "split.val_fraction", "split.seed", "eval.systems", "eval.context_steps",
                                       NULL};
    ls_strbuf b = {0};
    ls_strbuf_printf(&b, "%s\n%s", tok ? cfg->resolved.tokenizer : "", cfg->resolved.data_path);
    char *key = values_key(cfg, b.p, keys);
    free(b.p);
    int longest = -1;
    for (size_t i = 0; i < k->n_prompts && longest < 0; i++)
        if (!strcmp(k->prompts[i].key, key)) longest = k->prompts[i].longest;
    if (longest < 0) {
        ls_split split;
        if (ls_split_make(ds->systems, cfg->split.test_systems, cfg->split.val_fraction, cfg->split.seed, &split) !=
            LS_OK) {
            free(key);
            return ls_error_prefix("%s", source_of(cfg));
        }
        ls_encoding enc = ls_trial_encoding(cfg);
        double alpha = ls_encoding_dataset_alpha(&enc, ds, split.train, split.n_train);
        rc = measure_prompt(cfg, tok, ds, &split, alpha, &longest);
        ls_split_free(&split);
        if (rc != LS_OK) {
            free(key);
            return rc;
        }
        k->prompts = ls_realloc(k->prompts, (k->n_prompts + 1) * sizeof *k->prompts);
        k->prompts[k->n_prompts++] = (prompt_entry){key, longest};
    } else {
        free(key);
    }
    return forecast_positions_fit(cfg, &f->model, longest);
}

/* ---- a grid ----------------------------------------------------------------------------------- */

/* Check trial tr of stage s under the name "FILE:LINE: stage S (OVERRIDES)". */
static int check_grid_trial(ls_check *k, const ls_grid *g, const ls_grid_stage *s, ls_grid_trial *tr) {
    char *saved = tr->config.source;
    ls_strbuf name = {0};
    ls_strbuf_printf(&name, "%s:%d: stage %s", g->source, s->line, s->name);
    if (tr->overrides[0]) ls_strbuf_printf(&name, " (%s)", tr->overrides);
    tr->config.source = name.p;
    int rc = ls_check_trial(k, &tr->config);
    tr->config.source = saved;
    free(name.p);
    return rc;
}

int ls_check_grid(const ls_grid *g, const ls_model_config *preset) {
    ls_check *k = ls_check_new(preset);
    int rc = LS_OK;
    /* base first: its messages name the grid file alone; then train.ctx with the axes' lines */
    if (g->base.model.path[0] && g->base.data.path[0]) {
        ls_model_config mc;
        rc = ls_check_files(&g->base, preset, &mc);
        if (rc == LS_OK) rc = ls_grid_check_model(g, mc.max_positions);
    }
    ls_grid_trial **stand = ls_calloc(g->n_stages ? g->n_stages : 1, sizeof *stand);
    size_t *count = ls_calloc(g->n_stages ? g->n_stages : 1, sizeof *count), checks = 0;
    for (size_t i = 0; i < g->n_stages && rc == LS_OK; i++) {
        const ls_grid_stage *s = &g->stages[i];
        if (s->select_from < 0) {
            rc = ls_grid_expand(g, i, NULL, &stand[i], &count[i]);
            for (size_t t = 0; t < count[i] && rc == LS_OK; t++) /* a repeat's seeds change no check */
                if (stand[i][t].repeat == 0) rc = check_grid_trial(k, g, s, &stand[i][t]);
            checks += count[i];
            continue;
        }
        /* each trial of select.from in turn stands in for the winner (the first alone past the cap) */
        size_t from = (size_t)s->select_from, nc = count[from];
        int all = checks + nc * s->n_trials <= (size_t)LS_GRID_MAX_TRIALS * 2;
        for (size_t c = 0; c < nc && rc == LS_OK && (c == 0 || all); c++) {
            if (stand[from][c].repeat > 0) continue; /* the same configuration */
            ls_grid_trial *t = NULL;
            size_t n = 0;
            rc = ls_grid_expand(g, i, &stand[from][c].config, &t, &n);
            for (size_t j = 0; j < n && rc == LS_OK; j++)
                if (t[j].repeat == 0) rc = check_grid_trial(k, g, s, &t[j]);
            checks += n;
            if (c == 0 && rc == LS_OK) stand[i] = t, count[i] = n;
            else ls_grid_trials_free(t, n);
        }
    }
    for (size_t i = 0; i < g->n_stages; i++) ls_grid_trials_free(stand[i], count[i]);
    free(stand);
    free(count);
    ls_check_free(k);
    return rc;
}
