/*
 * config.c: the trial configuration: one table of keys, a YAML loader that walks it, writers,
 * the id hash and the markdown reference (API and rules in include/lorasweep/config.h).
 *
 * Decisions:
 *  - One table (config_keys[] below), as Redis's static_configs[]: every consumer iterates it,
 *    so nothing about a key is written twice. Its order is the canonical order of the YAML.
 *  - The loader reads libyaml's *events*, not its document tree: it sees every key with its
 *    line, it refuses anchors/aliases/tags as they come (no expansion, so no billion laughs),
 *    and it stops at the first unexpected event, so nesting never goes deeper than a section's
 *    list. Every message is one line; user text echoed in it is cut to 48 bytes and its
 *    control characters shown as '?'.
 *  - Types are strict where YAML is ambiguous: numbers and booleans must be plain scalars
 *    ("512" in quotes is a string, not a number), booleans are true/false only (not YAML 1.1's
 *    yes/no/on/off), integers may be written as any integral number (1e3). Strings and enum
 *    names may be plain or quoted. An empty value (`key:`) is "" for strings, [] for lists, an
 *    empty section for a section, and an error for everything else.
 *  - Writers produce text that depends on the values only: shortest exact numbers, strings in
 *    ASCII with escapes, fixed key order. The hash is FNV-1a over that text.
 */
#include "lorasweep/config.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "lorasweep/common.h"
#include "lorasweep/model.h"
#include "lorasweep/yaml_reader.h"

/* ---- the table ------------------------------------------------------------------------------ */

static const char *const backend_names[] = {"auto", "cpu", "cuda", NULL};
static const char *const scope_names[] = {"dataset", "system", NULL};
static const char *const optimizer_names[] = {"adamw", "sgd", NULL};
static const char *const schedule_names[] = {"constant", "linear", "cosine", NULL};
/* PEFT's names in ls_proj order (model.h). The table's name lists end with NULL and
 * ls_proj_names does not, so the names are repeated here; test_config checks that they match. */
static const char *const proj_names[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                         "gate_proj", "up_proj", "down_proj", NULL};
_Static_assert(sizeof proj_names / sizeof proj_names[0] == LS_PROJ_COUNT + 1, "one name per ls_proj");
_Static_assert(sizeof(ls_config_backend) == sizeof(int) && sizeof(ls_config_scope) == sizeof(int) &&
                   sizeof(ls_config_optimizer) == sizeof(int) && sizeof(ls_config_schedule) == sizeof(int),
               "enum fields are read and written as int");

#define OFF(field) offsetof(ls_trial_config, field)
#define INT_(k, f, lo, hi, d, doc) {k, LS_CONFIG_INT, OFF(f), lo, hi, 0, d, NULL, NULL, doc}
#define SEED_(k, f, d, doc) {k, LS_CONFIG_U64, OFF(f), 0, LS_CONFIG_SEED_MAX, 0, d, NULL, NULL, doc}
#define DBL_(k, f, lo, hi, fl, d, doc) {k, LS_CONFIG_DOUBLE, OFF(f), lo, hi, fl, d, NULL, NULL, doc}
#define BOOL_(k, f, d, doc) {k, LS_CONFIG_BOOL, OFF(f), 0, 1, 0, d, NULL, NULL, doc}
#define STR_(k, f, fl, d, doc) {k, LS_CONFIG_STRING, OFF(f), 0, 0, fl, 0, d, NULL, doc}
#define ENUM_(k, f, names, d, doc) {k, LS_CONFIG_ENUM, OFF(f), 0, 0, 0, d, NULL, names, doc}
#define FLAGS_(k, f, names, d, doc) {k, LS_CONFIG_FLAGS, OFF(f), 0, 0, 0, d, NULL, names, doc}
#define AUTO_(k, f, lo, hi, fl, doc) {k, LS_CONFIG_AUTO_NUM, OFF(f), lo, hi, fl, LS_CONFIG_ALPHA_AUTO, NULL, NULL, doc}
enum { OPEN_LO = LS_CONFIG_MIN_OPEN, OPEN_HI = LS_CONFIG_MAX_OPEN };
#define BIG 1e9 /* "no real limit" for counts of steps and windows */

static const ls_config_key config_keys[] = {
    STR_("name", name, 0, "", "a name for the trial, free text (part of its id)"),

    STR_("model.path", model.path, LS_CONFIG_PATH | LS_CONFIG_REQUIRED, "",
         "checkpoint directory (config.json, model.safetensors)"),
    STR_("model.tokenizer", model.tokenizer, LS_CONFIG_PATH, "",
         "tokenizer.json; empty: tokenizer.json in the model.path directory"),
    ENUM_("model.backend", model.backend, backend_names, LS_CONFIG_BACKEND_AUTO,
          "where the model runs; auto: cuda when this build has CUDA and a GPU is visible, else cpu"),

    STR_("data.path", data.path, LS_CONFIG_PATH | LS_CONFIG_REQUIRED, "",
         "HDF5 data file (/trajectories, /time)"),

    AUTO_("encoding.alpha", encoding.alpha, 0, 1e9, OPEN_LO,
          "values are divided by alpha before printing; auto: the percentile rule of the next keys"),
    ENUM_("encoding.alpha_scope", encoding.alpha_scope, scope_names, LS_CONFIG_SCOPE_DATASET,
          "auto alpha over every value of the data file, or per system over the steps it prints"),
    DBL_("encoding.alpha_percentile", encoding.alpha_percentile, 0, 100, OPEN_LO, 99,
         "auto: alpha = percentile of abs(values) at alpha_percentile, divided by alpha_target"),
    DBL_("encoding.alpha_target", encoding.alpha_target, 0, 1e6, OPEN_LO, 10,
         "auto: what that percentile prints as"),
    INT_("encoding.decimals", encoding.decimals, 0, 8, 3, "digits after the decimal point"),

    INT_("split.test_systems", split.test_systems, 0, 1e6, 100,
         "the first N systems of the data file are the test set"),
    DBL_("split.val_fraction", split.val_fraction, 0, 1, OPEN_HI, 0.2,
         "fraction of the other systems held out for validation, after shuffling"),
    SEED_("split.seed", split.seed, 42, "shuffle of the non-test systems"),

    INT_("lora.rank", lora.rank, 1, 1024, 4, "LoRA rank r"),
    DBL_("lora.alpha", lora.alpha, 0, 1e6, 0, 0,
         "PEFT lora_alpha: updates are scaled by alpha / rank; 0: alpha = rank (scale 1)"),
    FLAGS_("lora.targets", lora.targets, proj_names, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V),
           "projections that get an adapter, in every layer"),
    BOOL_("lora.head_bias", lora.head_bias, 1, "also train a bias on the output logits"),
    SEED_("lora.seed", lora.seed, 0, "initialisation of the A matrices (B starts at zero)"),

    INT_("train.ctx", train.ctx, 2, 32768, 512, "tokens per training window"),
    INT_("train.stride", train.stride, 0, 32768, 0, "tokens between window starts; 0: ctx / 2"),
    INT_("train.batch_size", train.batch_size, 1, 4096, 4, "windows per optimiser step"),
    INT_("train.max_steps", train.max_steps, 0, BIG, 1000,
         "optimiser steps; 0: no training (the unchanged model is evaluated)"),
    ENUM_("train.optimizer", train.optimizer, optimizer_names, LS_CONFIG_OPTIMIZER_ADAMW,
          "adamw (decoupled weight decay) or sgd (with momentum)"),
    DBL_("train.lr", train.lr, 0, 10, OPEN_LO, 1e-5, "peak learning rate"),
    DBL_("train.beta1", train.beta1, 0, 1, OPEN_HI, 0.9, "AdamW first-moment decay"),
    DBL_("train.beta2", train.beta2, 0, 1, OPEN_HI, 0.999, "AdamW second-moment decay"),
    DBL_("train.eps", train.eps, 0, 1, OPEN_LO, 1e-8, "AdamW epsilon"),
    DBL_("train.weight_decay", train.weight_decay, 0, 100, 0, 0, "weight decay (decoupled for adamw)"),
    DBL_("train.momentum", train.momentum, 0, 1, OPEN_HI, 0, "sgd momentum; 0: plain SGD"),
    DBL_("train.grad_clip", train.grad_clip, 0, 1e6, 0, 1, "clip the global gradient norm to this; 0: off"),
    ENUM_("train.schedule", train.schedule, schedule_names, LS_CONFIG_SCHEDULE_CONSTANT,
          "learning rate after warmup: constant, or a linear or cosine decay to min_lr_ratio * lr"),
    INT_("train.warmup_steps", train.warmup_steps, 0, BIG, 0, "linear warmup from 0 to lr over these steps"),
    DBL_("train.min_lr_ratio", train.min_lr_ratio, 0, 1, 0, 0,
         "linear and cosine: the final learning rate as a fraction of lr"),
    INT_("train.eval_every", train.eval_every, 0, BIG, 100, "validation loss every N steps; 0: only at the end"),
    INT_("train.val_max_windows", train.val_max_windows, 0, BIG, 0,
         "validation windows per evaluation; 0: all"),
    INT_("train.checkpoint_every", train.checkpoint_every, 0, BIG, 0,
         "save the adapter every N steps; 0: only at the end"),
    SEED_("train.seed", train.seed, 0, "order of the training windows"),
    INT_("train.threads", train.threads, 0, 4096, 0, "CPU threads; 0: all cores"),
    INT_("train.ranks_per_trial", train.ranks_per_trial, 1, 4096, 1,
         "data parallel: sweep ranks (one GPU each with CUDA) that train one trial together, each on "
         "its share of every batch; one value per sweep"),

    INT_("eval.systems", eval.systems, 0, 1e6, 100,
         "test systems to forecast (the first N of the test split); 0: no forecasting"),
    INT_("eval.context_steps", eval.context_steps, 1, 100000, 80, "steps the model is given"),
    INT_("eval.forecast_steps", eval.forecast_steps, 1, 100000, 20,
         "steps the model forecasts, scored by MSE and MAE"),
    INT_("eval.samples", eval.samples, 1, 1000, 10, "forecasts sampled per system"),
    BOOL_("eval.greedy", eval.greedy, 0,
          "most likely token at each step instead of sampling (then samples must be 1)"),
    DBL_("eval.temperature", eval.temperature, 0, 100, OPEN_LO, 1, "sampling temperature"),
    DBL_("eval.top_p", eval.top_p, 0, 1, OPEN_LO, 1,
         "sample from the most likely tokens that hold this probability; 1: off"),
    INT_("eval.top_k", eval.top_k, 0, 1000000, 0, "sample from the k most likely tokens; 0: off"),
    BOOL_("eval.grammar", eval.grammar, 1, "constrain sampling to the LLMTIME grammar (digits . , ;)"),
    INT_("eval.max_new_tokens", eval.max_new_tokens, 0, 1000000, 0,
         "token limit per forecast; 0: automatic from forecast_steps and decimals"),
    SEED_("eval.seed", eval.seed, 0, "sampling"),
};
#define KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

/* Sections in file order; the table lists each section's keys together, in this order. */
static const char *const sections[] = {"model", "data", "encoding", "split", "lora", "train", "eval", NULL};
#define SECTION_COUNT (sizeof sections / sizeof sections[0] - 1)

const ls_config_key *ls_config_keys(size_t *count) {
    if (count) *count = KEY_COUNT;
    return config_keys;
}

const ls_config_key *ls_config_find(const char *key) {
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (!strcmp(config_keys[i].key, key)) return &config_keys[i];
    return NULL;
}

static void *field_of(ls_trial_config *c, const ls_config_key *k) { return (char *)c + k->offset; }
static const void *cfield_of(const ls_trial_config *c, const ls_config_key *k) {
    return (const char *)c + k->offset;
}

/* ---- small helpers ---------------------------------------------------------------------------- */


static char *dup_n(const char *s, size_t n) {
    char *p = ls_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* base + "/" + path, or path when it is absolute, or "" when it is empty. */
static char *join_path(const char *base, const char *path) {
    if (!path[0]) return ls_strdup("");
    if (path[0] == '/' || !base || !base[0]) return ls_strdup(path);
    ls_strbuf b = {0};
    ls_strbuf_puts(&b, base);
    if (b.n && b.p[b.n - 1] != '/') ls_strbuf_puts(&b, "/");
    ls_strbuf_puts(&b, path);
    return b.p;
}

static void resolve_paths(ls_trial_config *c) {
    free(c->resolved.model_path);
    free(c->resolved.tokenizer);
    free(c->resolved.data_path);
    c->resolved.model_path = join_path(c->base_dir, c->model.path);
    if (c->model.tokenizer[0]) c->resolved.tokenizer = join_path(c->base_dir, c->model.tokenizer);
    else if (c->model.path[0]) c->resolved.tokenizer = join_path(c->resolved.model_path, "tokenizer.json");
    else c->resolved.tokenizer = ls_strdup("");
    c->resolved.data_path = join_path(c->base_dir, c->data.path);
}

static int edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 64 || nb > 64) return 99;
    int row[65];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[nb];
}

/* What other tools call a key (PyTorch, transformers' TrainingArguments, PEFT's LoraConfig), and
 * short forms: the last part of an unknown key is looked up here (case aside). */
static const struct {
    const char *name, *key;
} key_aliases[] = {
    {"learning_rate", "train.lr"},
    {"learningrate", "train.lr"},
    {"r", "lora.rank"},
    {"lora_r", "lora.rank"},
    {"lora_rank", "lora.rank"},
    {"lora_alpha", "lora.alpha"},
    {"target_modules", "lora.targets"},
    {"target", "lora.targets"},
    {"batch", "train.batch_size"},
    {"bs", "train.batch_size"},
    {"per_device_train_batch_size", "train.batch_size"},
    {"steps", "train.max_steps"},
    {"num_steps", "train.max_steps"},
    {"training_steps", "train.max_steps"},
    {"iterations", "train.max_steps"},
    {"warmup", "train.warmup_steps"},
    {"context", "train.ctx"},
    {"context_length", "train.ctx"},
    {"ctx_len", "train.ctx"},
    {"seq_len", "train.ctx"},
    {"max_length", "train.ctx"},
    {"max_seq_length", "train.ctx"},
    {"block_size", "train.ctx"},
    {"max_grad_norm", "train.grad_clip"},
    {"clip", "train.grad_clip"},
    {"lr_scheduler_type", "train.schedule"},
    {"scheduler", "train.schedule"},
    {"optim", "train.optimizer"},
    {"adam_beta1", "train.beta1"},
    {"adam_beta2", "train.beta2"},
    {"adam_epsilon", "train.eps"},
    {"epsilon", "train.eps"},
    {"num_samples", "eval.samples"},
    {"horizon", "eval.forecast_steps"},
    {"prediction_length", "eval.forecast_steps"},
    {"model_name_or_path", "model.path"},
    {"tokenizer_path", "model.tokenizer"},
    {"data_path", "data.path"},
    {"dataset", "data.path"},
};

static const char *leaf_of(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

static int same_section(const char *a, const char *b) {
    size_t na = (size_t)(leaf_of(a) - a), nb = (size_t)(leaf_of(b) - b);
    return na == nb && !memcmp(a, b, na);
}

/* " (did you mean train.lr?)" for an unknown key, else "", the first of: the closest key (or
 * section) within 1 edit; the key another tool's name stands for (learning_rate: train.lr); the
 * keys whose last part is the unknown one's (lr: train.lr; seed: two of the seeds, those of the
 * unknown key's own section first); the closest key or section within 2 edits; the keys whose
 * last part is within 2 edits of the unknown one's (1 for short names). */
static void suggest(char *dst, size_t cap, const char *unknown, int sections_too) {
    const char *best = NULL, *second = NULL;
    int best_d = 3;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        int d = edit_distance(unknown, config_keys[i].key);
        if (d < best_d) best_d = d, best = config_keys[i].key;
    }
    for (size_t i = 0; sections_too && i < SECTION_COUNT; i++) {
        int d = edit_distance(unknown, sections[i]);
        if (d < best_d) best_d = d, best = sections[i];
    }
    const char *whole = best, *leaf = leaf_of(unknown);
    if (best_d > 1) best = NULL;
    for (size_t i = 0; !best && i < sizeof key_aliases / sizeof key_aliases[0]; i++)
        if (!strcasecmp(leaf, key_aliases[i].name)) best = key_aliases[i].key;
    size_t n = strlen(leaf);
    for (int pass = 0; pass < 2 && !best; pass++) { /* exact last parts; then close ones */
        int limit = pass == 0 ? 0 : n <= 3 ? 0 : n <= 5 ? 1 : 2, best_score = 1 << 20;
        if (pass == 1 && whole) {
            best = whole;
            break;
        }
        for (size_t i = 0; i < KEY_COUNT; i++) {
            int d = edit_distance(leaf, leaf_of(config_keys[i].key));
            if (d > limit) continue;
            int score = 2 * d + !same_section(unknown, config_keys[i].key);
            if (score < best_score) best_score = score, best = config_keys[i].key, second = NULL;
            else if (score == best_score && !second) second = config_keys[i].key;
        }
    }
    if (best && second) snprintf(dst, cap, " (did you mean %s or %s?)", best, second);
    else if (best) snprintf(dst, cap, " (did you mean %s?)", best);
    else dst[0] = '\0';
}

static int section_index(const char *s, size_t n) {
    for (size_t i = 0; i < SECTION_COUNT; i++)
        if (strlen(sections[i]) == n && !memcmp(sections[i], s, n)) return (int)i;
    return -1;
}

/* ---- numbers ------------------------------------------------------------------------------- */

static int in_range(const ls_config_key *k, double v) {
    int lo = (k->flags & LS_CONFIG_MIN_OPEN) ? v > k->min : v >= k->min;
    int hi = (k->flags & LS_CONFIG_MAX_OPEN) ? v < k->max : v <= k->max;
    return lo && hi;
}

static int is_integer_type(ls_config_type t) { return t == LS_CONFIG_INT || t == LS_CONFIG_U64; }

/* "[2, 32768]", "(0, 10]" */
static void format_range(char *dst, size_t cap, const ls_config_key *k) {
    char lo = (k->flags & LS_CONFIG_MIN_OPEN) ? '(' : '[', hi = (k->flags & LS_CONFIG_MAX_OPEN) ? ')' : ']';
    if (is_integer_type(k->type)) snprintf(dst, cap, "%c%.0f, %.0f%c", lo, k->min, k->max, hi);
    else snprintf(dst, cap, "%c%g, %g%c", lo, k->min, k->max, hi);
}

/* The shortest text that reads back as exactly v, always with a '.' so that every YAML reader
 * types it as a float: positional for exponents -4..15 ("0.0003", "1000.0"), else "1.0e-05". */
static void format_double(char *dst, size_t cap, double v) {
    char e[48];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    if (p > 17) p = 17;
    const char *ep = strchr(e, 'e');
    int exp10 = ep ? atoi(ep + 1) : 0;
    if (exp10 >= -4 && exp10 < 16) {
        int dec = p - 1 - exp10;
        snprintf(dst, cap, "%.*f", dec < 1 ? 1 : dec, v);
        if (strtod(dst, NULL) == v) return;
        snprintf(e, sizeof e, "%.16e", v);
        ep = strchr(e, 'e');
    }
    if (ep && !memchr(e, '.', (size_t)(ep - e))) /* "1e-05" -> "1.0e-05" */
        snprintf(dst, cap, "%.*s.0%s", (int)(ep - e), e, ep);
    else snprintf(dst, cap, "%s", e);
}

/* ---- reading values ------------------------------------------------------------------------- */

static const char *expected(const ls_config_key *k) {
    switch (k->type) {
    case LS_CONFIG_INT:
    case LS_CONFIG_U64: return "an integer";
    case LS_CONFIG_DOUBLE: return "a number";
    case LS_CONFIG_AUTO_NUM: return "a number or auto";
    case LS_CONFIG_BOOL: return "true or false";
    case LS_CONFIG_STRING: return "a string";
    case LS_CONFIG_ENUM: return "a name";
    case LS_CONFIG_FLAGS: return "a list of names";
    }
    return "a value";
}

static int wrong_type(const ls_yaml_reader *r, const ls_config_key *k) {
    return ls_yaml_wrong(r, k->key, expected(k));
}

/* "a, b, c" */
static void list_names(char *dst, size_t cap, const char *const *names) {
    size_t o = 0;
    dst[0] = '\0';
    for (int i = 0; names[i] && o + 1 < cap; i++) {
        int n = snprintf(dst + o, cap - o, "%s%s", i ? ", " : "", names[i]);
        if (n < 0) break;
        o += (size_t)n;
    }
}

static int name_index(const char *const *names, const char *s, size_t n) {
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], s, n)) return i;
    return -1;
}

/* Parse the scalar at r->ev as a number of key k into *out. */
static int read_number(const ls_yaml_reader *r, const ls_config_key *k, double *out) {
    const yaml_event_t *e = &r->ev;
    if (e->type != YAML_SCALAR_EVENT || ls_yaml_is_null(e)) return wrong_type(r, k);
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    char shown[64], range[96];
    ls_yaml_show(shown, sizeof shown, s, n);
    if (k->type == LS_CONFIG_AUTO_NUM && n == 4 && !memcmp(s, "auto", 4)) {
        *out = LS_CONFIG_ALPHA_AUTO;
        return LS_OK;
    }
    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return wrong_type(r, k);
    if (strlen(s) != n || !ls_yaml_number_syntax(s))
        return ls_yaml_fail(r, ls_yaml_line(r), k->key, "'%s' is not %s", shown, expected(k));
    double v = strtod(s, NULL);
    if (isfinite(v) && is_integer_type(k->type) && v != floor(v))
        return ls_yaml_fail(r, ls_yaml_line(r), k->key, "'%s' is not an integer", shown);
    if (!isfinite(v) || !in_range(k, v)) {
        format_range(range, sizeof range, k);
        return ls_yaml_fail(r, ls_yaml_line(r), k->key, "%s is out of range %s%s", shown, range,
                            k->type == LS_CONFIG_AUTO_NUM ? " (or auto)" : "");
    }
    *out = v == 0 ? 0.0 : v; /* no -0.0: it would print differently from 0.0 */
    return LS_OK;
}

/* A string value: any scalar style, no control characters, at most LS_CONFIG_MAX_STRING bytes. */
static int read_string(const ls_yaml_reader *r, const ls_config_key *k, char **out) {
    const yaml_event_t *e = &r->ev;
    if (e->type != YAML_SCALAR_EVENT) return wrong_type(r, k);
    if (ls_yaml_is_null(e)) {
        *out = ls_strdup("");
        return LS_OK;
    }
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    if (n > LS_CONFIG_MAX_STRING)
        return ls_yaml_fail(r, ls_yaml_line(r), k->key, "the string is too long (%zu bytes, at most %d)", n,
                            LS_CONFIG_MAX_STRING);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return ls_yaml_fail(r, ls_yaml_line(r), k->key, "the string contains a control character (byte %zu)", i);
    *out = dup_n(s, n);
    return LS_OK;
}

static int read_name(const ls_yaml_reader *r, const ls_config_key *k, int *out) {
    const yaml_event_t *e = &r->ev;
    if (e->type != YAML_SCALAR_EVENT || ls_yaml_is_null(e)) return wrong_type(r, k);
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    int i = name_index(k->names, s, n);
    if (i < 0) {
        char shown[64], names[256];
        ls_yaml_show(shown, sizeof shown, s, n);
        list_names(names, sizeof names, k->names);
        return ls_yaml_fail(r, ls_yaml_line(r), k->key, "'%s' is not one of %s", shown, names);
    }
    *out = i;
    return LS_OK;
}

/* An empty lora.targets would train the head bias alone into an adapter without a LoRA branch,
 * which PEFT (and `lorasweep eval --adapter`) cannot load: refused where it is written. */
static int empty_flags(ls_yaml_reader *r, const ls_config_key *k, int line) {
    char names[256];
    list_names(names, sizeof names, k->names);
    return ls_yaml_fail(r, line, k->key, "the list is empty: name at least one of %s (an adapter without a LoRA "
                        "branch could not be loaded back as a PEFT adapter)", names);
}

/* A list of names (a flow or block list, or one name alone; not empty) into a bit mask. */
static int read_flags(ls_yaml_reader *r, const ls_config_key *k, unsigned *out) {
    unsigned mask = 0;
    int one = r->ev.type == YAML_SCALAR_EVENT, line = ls_yaml_line(r);
    if (one && ls_yaml_is_null(&r->ev)) return empty_flags(r, k, line);
    if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT) return wrong_type(r, k);
    for (;;) {
        if (!one) {
            if (ls_yaml_next(r, k->key) != LS_OK) return LS_ERR;
            if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
            if (ls_yaml_check_plain(r, k->key) != LS_OK) return LS_ERR;
            if (r->ev.type != YAML_SCALAR_EVENT || ls_yaml_is_null(&r->ev)) {
                char got[96];
                ls_yaml_describe(got, sizeof got, &r->ev);
                return ls_yaml_fail(r, ls_yaml_line(r), k->key, "list items must be names, got %s", got);
            }
        }
        int i = 0;
        if (read_name(r, k, &i) != LS_OK) return LS_ERR;
        if (mask & (1u << i))
            return ls_yaml_fail(r, ls_yaml_line(r), k->key, "%s is listed twice", k->names[i]);
        mask |= 1u << i;
        if (one) break;
    }
    if (!mask) return empty_flags(r, k, line);
    *out = mask;
    return LS_OK;
}

/* Read the value of key k starting at the current event and store it in c. */
static int read_value(ls_yaml_reader *r, const ls_config_key *k, ls_trial_config *c) {
    if (ls_yaml_check_plain(r, k->key) != LS_OK) return LS_ERR;
    void *f = field_of(c, k);
    double v;
    switch (k->type) {
    case LS_CONFIG_INT:
        if (read_number(r, k, &v) != LS_OK) return LS_ERR;
        *(int *)f = (int)v;
        return LS_OK;
    case LS_CONFIG_U64:
        if (read_number(r, k, &v) != LS_OK) return LS_ERR;
        *(uint64_t *)f = (uint64_t)v;
        return LS_OK;
    case LS_CONFIG_DOUBLE:
    case LS_CONFIG_AUTO_NUM:
        if (read_number(r, k, &v) != LS_OK) return LS_ERR;
        *(double *)f = v;
        return LS_OK;
    case LS_CONFIG_BOOL: {
        const yaml_event_t *e = &r->ev;
        if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
            ls_yaml_is_null(e))
            return wrong_type(r, k);
        const char *s = (const char *)e->data.scalar.value;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) *(bool *)f = true;
        else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) *(bool *)f = false;
        else return wrong_type(r, k);
        return LS_OK;
    }
    case LS_CONFIG_STRING: {
        char *s = NULL;
        if (read_string(r, k, &s) != LS_OK) return LS_ERR;
        free(*(char **)f);
        *(char **)f = s;
        return LS_OK;
    }
    case LS_CONFIG_ENUM: {
        int i = 0;
        if (read_name(r, k, &i) != LS_OK) return LS_ERR;
        *(int *)f = i;
        return LS_OK;
    }
    case LS_CONFIG_FLAGS: {
        unsigned m = 0;
        if (read_flags(r, k, &m) != LS_OK) return LS_ERR;
        *(unsigned *)f = m;
        return LS_OK;
    }
    }
    return ls_yaml_fail(r, 0, k->key, "key of unknown type");
}

/* Remember where each key was set; a second time is an error. line_of[i] is line + 1 (0: unset). */
static int claim(const ls_yaml_reader *r, int *line_of, size_t index, int line, const char *key,
                 const char *what) {
    if (line_of[index]) return ls_yaml_fail(r, line, key, "duplicate %s (first on line %d)", what, line_of[index]);
    line_of[index] = line;
    return LS_OK;
}

static int unknown_key(const ls_yaml_reader *r, int line, const char *dotted) {
    char hint[96];
    suggest(hint, sizeof hint, dotted, 0);
    return ls_yaml_fail(r, line, dotted, "unknown key%s", hint);
}

static int read_section(ls_yaml_reader *r, int sec, ls_trial_config *c, int *line_of) {
    const char *sname = sections[sec];
    if (ls_yaml_check_plain(r, sname) != LS_OK) return LS_ERR;
    if (ls_yaml_is_null(&r->ev)) return LS_OK; /* "eval:" with every key commented out */
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, sname, "a mapping of keys (such as 'lr: 1.0e-4')");
    for (;;) {
        if (ls_yaml_next(r, sname) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) return LS_OK;
        char key[64], dotted[96];
        int exact;
        if (ls_yaml_read_key(r, sname, key, sizeof key, &exact) != LS_OK) return LS_ERR;
        int line = ls_yaml_line(r);
        snprintf(dotted, sizeof dotted, "%s.%s", sname, key);
        const ls_config_key *k = exact ? ls_config_find(dotted) : NULL;
        if (!k) return unknown_key(r, line, dotted);
        if (claim(r, line_of, (size_t)(k - config_keys), line, k->key, "key") != LS_OK) return LS_ERR;
        if (ls_yaml_next(r, k->key) != LS_OK || read_value(r, k, c) != LS_OK) return LS_ERR;
    }
}

/* The whole stream: at most one document, a mapping of sections (or of dotted keys). */
static int read_document(ls_yaml_reader *r, ls_trial_config *c) {
    int line_of[KEY_COUNT + SECTION_COUNT];
    memset(line_of, 0, sizeof line_of);
    if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR; /* stream start */
    if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_STREAM_END_EVENT) return LS_OK; /* empty: nothing to set */
    if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;     /* the document's node */
    if (ls_yaml_check_plain(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_MAPPING_START_EVENT) {
        for (;;) {
            if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
            if (r->ev.type == YAML_MAPPING_END_EVENT) break;
            char key[64];
            int exact;
            if (ls_yaml_read_key(r, NULL, key, sizeof key, &exact) != LS_OK) return LS_ERR;
            int line = ls_yaml_line(r);
            int dotted = memchr(r->ev.data.scalar.value, '.', r->ev.data.scalar.length) != NULL;
            int sec = exact ? section_index(key, strlen(key)) : -1;
            if (sec >= 0) {
                if (claim(r, line_of, KEY_COUNT + (size_t)sec, line, key, "section") != LS_OK ||
                    ls_yaml_next(r, key) != LS_OK || read_section(r, sec, c, line_of) != LS_OK)
                    return LS_ERR;
                continue;
            }
            const ls_config_key *k = exact ? ls_config_find(key) : NULL; /* "name", or "train.lr" */
            if (!k) {
                if (dotted) return unknown_key(r, line, key);
                char hint[320], names[256];
                suggest(hint, sizeof hint, key, 1);
                if (!hint[0]) {
                    list_names(names, sizeof names, sections);
                    snprintf(hint, sizeof hint, " (expected name, %s)", names);
                }
                return ls_yaml_fail(r, line, key, "unknown section%s", hint);
            }
            if (claim(r, line_of, (size_t)(k - config_keys), line, k->key, "key") != LS_OK) return LS_ERR;
            if (ls_yaml_next(r, k->key) != LS_OK || read_value(r, k, c) != LS_OK) return LS_ERR;
        }
    } else if (!ls_yaml_is_null(&r->ev))
        return ls_yaml_wrong(r, NULL, "a mapping of sections (model:, data:, ...)");
    if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR; /* document end */
    if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_STREAM_END_EVENT)
        return ls_yaml_fail(r, ls_yaml_line(r), NULL, "only one YAML document is allowed");
    return LS_OK;
}

/* Apply YAML to c in place (c may be left half-changed on failure: callers work on a copy). */
static int apply_yaml(ls_trial_config *c, const char *yaml, size_t len, const char *name) {
    if (len > LS_CONFIG_MAX_BYTES)
        return ls_error("%s: too large (%zu bytes, a trial file has at most %d)", name, len, LS_CONFIG_MAX_BYTES);
    ls_yaml_reader r;
    if (ls_yaml_open(&r, yaml, len, name) != LS_OK) return LS_ERR;
    int rc = read_document(&r, c);
    ls_yaml_close(&r);
    return rc;
}

/* ---- the public loading API ---------------------------------------------------------------- */

void ls_config_defaults(ls_trial_config *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const ls_config_key *k = &config_keys[i];
        void *f = field_of(c, k);
        switch (k->type) {
        case LS_CONFIG_INT:
        case LS_CONFIG_ENUM: *(int *)f = (int)k->def; break;
        case LS_CONFIG_U64: *(uint64_t *)f = (uint64_t)k->def; break;
        case LS_CONFIG_DOUBLE:
        case LS_CONFIG_AUTO_NUM: *(double *)f = k->def; break;
        case LS_CONFIG_BOOL: *(bool *)f = k->def != 0; break;
        case LS_CONFIG_STRING: *(char **)f = ls_strdup(k->def_str ? k->def_str : ""); break;
        case LS_CONFIG_FLAGS: *(unsigned *)f = (unsigned)k->def; break;
        }
    }
    c->source = ls_strdup("<defaults>");
    c->base_dir = ls_yaml_current_dir();
    resolve_paths(c);
}

void ls_config_free(ls_trial_config *c) {
    if (!c) return;
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (config_keys[i].type == LS_CONFIG_STRING) free(*(char **)field_of(c, &config_keys[i]));
    free(c->source);
    free(c->base_dir);
    free(c->resolved.model_path);
    free(c->resolved.tokenizer);
    free(c->resolved.data_path);
    memset(c, 0, sizeof *c);
}

static char *dup_or_null(const char *s) { return s ? ls_strdup(s) : NULL; }

void ls_config_copy(ls_trial_config *dst, const ls_trial_config *src) {
    *dst = *src;
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (config_keys[i].type == LS_CONFIG_STRING) {
            char **f = field_of(dst, &config_keys[i]);
            *f = dup_or_null(*f);
        }
    dst->source = dup_or_null(src->source);
    dst->base_dir = dup_or_null(src->base_dir);
    dst->resolved.model_path = dup_or_null(src->resolved.model_path);
    dst->resolved.tokenizer = dup_or_null(src->resolved.tokenizer);
    dst->resolved.data_path = dup_or_null(src->resolved.data_path);
}

int ls_config_equal(const ls_trial_config *a, const ls_trial_config *b) {
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const ls_config_key *k = &config_keys[i];
        const void *fa = cfield_of(a, k), *fb = cfield_of(b, k);
        switch (k->type) {
        case LS_CONFIG_INT:
        case LS_CONFIG_ENUM:
            if (*(const int *)fa != *(const int *)fb) return 0;
            break;
        case LS_CONFIG_U64:
            if (*(const uint64_t *)fa != *(const uint64_t *)fb) return 0;
            break;
        case LS_CONFIG_DOUBLE:
        case LS_CONFIG_AUTO_NUM:
            if (*(const double *)fa != *(const double *)fb) return 0;
            break;
        case LS_CONFIG_BOOL:
            if (*(const bool *)fa != *(const bool *)fb) return 0;
            break;
        case LS_CONFIG_STRING:
            if (strcmp(*(char *const *)fa, *(char *const *)fb)) return 0;
            break;
        case LS_CONFIG_FLAGS:
            if (*(const unsigned *)fa != *(const unsigned *)fb) return 0;
            break;
        }
    }
    return 1;
}

int ls_config_apply_string(ls_trial_config *c, const char *yaml, size_t len, const char *name) {
    ls_trial_config tmp;
    ls_config_copy(&tmp, c);
    if (apply_yaml(&tmp, yaml, len, name ? name : "<string>") != LS_OK) {
        ls_config_free(&tmp);
        return LS_ERR;
    }
    resolve_paths(&tmp);
    ls_config_free(c);
    *c = tmp;
    return LS_OK;
}

/* Defaults + yaml, with the given source name and base directory (both taken over). */
static int load_with(const char *yaml, size_t len, char *source, char *base_dir, ls_trial_config *c) {
    ls_config_defaults(c);
    free(c->source);
    free(c->base_dir);
    c->source = source;
    c->base_dir = base_dir;
    if (apply_yaml(c, yaml, len, source) != LS_OK) {
        ls_config_free(c);
        return LS_ERR;
    }
    resolve_paths(c);
    return LS_OK;
}

int ls_config_load_string(const char *yaml, size_t len, const char *name, ls_trial_config *c) {
    return load_with(yaml, len, ls_strdup(name ? name : "<string>"), ls_yaml_current_dir(), c);
}

int ls_config_load_file(const char *path, ls_trial_config *c) {
    memset(c, 0, sizeof *c);
    char *buf;
    size_t len;
    if (ls_yaml_read_file(path, LS_CONFIG_MAX_BYTES, &buf, &len) != LS_OK) return LS_ERR;
    int rc = load_with(buf, len, ls_strdup(path), ls_yaml_dir_of(path), c);
    free(buf);
    return rc;
}

int ls_config_set(ls_trial_config *c, const char *dotted_key, const char *value_yaml) {
    const ls_config_key *k = ls_config_find(dotted_key);
    if (!k) {
        char shown[64], hint[96];
        ls_yaml_show(shown, sizeof shown, dotted_key, strlen(dotted_key));
        suggest(hint, sizeof hint, shown, 0);
        return ls_error("%s: unknown key%s", shown, hint);
    }
    size_t len = strlen(value_yaml);
    if (len > LS_CONFIG_MAX_STRING + 64) return ls_error("%s: the value is too long (%zu bytes)", k->key, len);
    ls_trial_config tmp;
    ls_config_copy(&tmp, c);
    ls_yaml_reader r;
    int rc = ls_yaml_open(&r, value_yaml, len, NULL);
    if (rc == LS_OK) {
        rc = ls_yaml_next(&r, k->key); /* stream start */
        if (rc == LS_OK) rc = ls_yaml_next(&r, k->key);
        if (rc == LS_OK && r.ev.type == YAML_STREAM_END_EVENT) {
            /* no document at all ("" or a comment): an empty value */
            yaml_event_delete(&r.ev);
            yaml_scalar_event_initialize(&r.ev, NULL, NULL, (yaml_char_t *)"", 0, 1, 1, YAML_PLAIN_SCALAR_STYLE);
            rc = read_value(&r, k, &tmp);
        } else if (rc == LS_OK) {
            rc = ls_yaml_next(&r, k->key);
            if (rc == LS_OK) rc = read_value(&r, k, &tmp);
            if (rc == LS_OK) rc = ls_yaml_next(&r, k->key); /* document end */
            if (rc == LS_OK) rc = ls_yaml_next(&r, k->key);
            if (rc == LS_OK && r.ev.type != YAML_STREAM_END_EVENT)
                rc = ls_error("%s: one value only, not several YAML documents", k->key);
        }
        ls_yaml_close(&r);
    }
    if (rc != LS_OK) {
        ls_config_free(&tmp);
        return LS_ERR;
    }
    resolve_paths(&tmp);
    ls_config_free(c);
    *c = tmp;
    return LS_OK;
}

/* Fewest tokens one step of 2 variables can take: "d.ddd,d.ddd;" (one integer digit each). */
static long min_tokens_per_step(int decimals) { return 2L * (1 + (decimals > 0 ? 1 + decimals : 0)) + 2; }

int ls_config_validate(const ls_trial_config *c) {
    const char *src = c->source ? c->source : "<config>";
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const ls_config_key *k = &config_keys[i];
        if ((k->flags & LS_CONFIG_REQUIRED) && !(*(char *const *)cfield_of(c, k))[0])
            return ls_error("%s: %s is required: %s", src, k->key, k->doc);
    }
    const ls_config_train *t = &c->train;
    const ls_config_eval *e = &c->eval;
    if (t->stride > t->ctx)
        return ls_error("%s: train.stride: %d is more than train.ctx (%d): tokens would be skipped", src,
                        t->stride, t->ctx);
    if (t->max_steps > 0 && t->warmup_steps > t->max_steps)
        return ls_error("%s: train.warmup_steps: %d is more than train.max_steps (%d)", src, t->warmup_steps,
                        t->max_steps);
    if (t->batch_size < t->ranks_per_trial)
        return ls_error("%s: train.batch_size: %d windows cannot be shared by %d ranks (train.ranks_per_trial): "
                        "every rank needs at least one window per step", src, t->batch_size, t->ranks_per_trial);
    if (t->max_steps > 0 && c->lora.targets == 0 && !c->lora.head_bias)
        return ls_error("%s: lora.targets is empty and lora.head_bias is false: nothing to train "
                        "(train.max_steps: 0 evaluates the unchanged model)", src);
    if (e->systems > c->split.test_systems)
        return ls_error("%s: eval.systems: %d is more than split.test_systems (%d): forecasts are made on the "
                        "test split", src, e->systems, c->split.test_systems);
    if (e->greedy && e->samples > 1)
        return ls_error("%s: eval.samples: %d greedy forecasts would all be the same; set eval.samples: 1", src,
                        e->samples);
    long per_step = min_tokens_per_step(c->encoding.decimals);
    long steps = (long)e->context_steps + e->forecast_steps;
    if (e->systems > 0 && steps * per_step > 32768)
        return ls_error("%s: eval.context_steps + eval.forecast_steps: %ld steps take at least %ld tokens at %d "
                        "decimals, more than a Qwen2.5 context (32768)", src, steps, steps * per_step,
                        c->encoding.decimals);
    if (e->max_new_tokens > 0 && e->max_new_tokens < e->forecast_steps * per_step)
        return ls_error("%s: eval.max_new_tokens: %d tokens cannot hold %d steps (at least %ld tokens at %d "
                        "decimals)", src, e->max_new_tokens, e->forecast_steps, e->forecast_steps * per_step,
                        c->encoding.decimals);
    return LS_OK;
}

int ls_config_stride(const ls_trial_config *c) {
    if (c->train.stride > 0) return c->train.stride;
    return c->train.ctx / 2 > 0 ? c->train.ctx / 2 : 1;
}

double ls_config_lora_alpha(const ls_trial_config *c) {
    return c->lora.alpha > 0 ? c->lora.alpha : (double)c->lora.rank;
}

/* ---- writers ------------------------------------------------------------------------------- */

/* Next code point of UTF-8 text, or -1 for an invalid byte (then *used is 1). */
static long utf8_next(const unsigned char *s, size_t n, size_t *used) {
    unsigned char b = s[0];
    int len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    *used = 1;
    if (!len || (size_t)len > n) return -1;
    long cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const long min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *used = (size_t)len;
    return cp;
}

/* A double-quoted string that is valid YAML and valid JSON alike: \" \\ \n \t, \uXXXX for the rest
 * of the BMP outside printable ASCII (so YAML's line breaks NEL, LS and PS never appear raw), and
 * raw UTF-8 above U+FFFF (YAML readers refuse the surrogate pairs JSON would use instead). */
static void put_quoted(ls_strbuf *b, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    ls_strbuf_puts(b, "\"");
    for (size_t i = 0; i < n;) {
        size_t used;
        long cp = utf8_next(p + i, n - i, &used);
        if (cp < 0) cp = 0xFFFD; /* not UTF-8: only from C callers */
        if (cp == '"' || cp == '\\') ls_strbuf_printf(b, "\\%c", (char)cp);
        else if (cp == '\n') ls_strbuf_puts(b, "\\n");
        else if (cp == '\t') ls_strbuf_puts(b, "\\t");
        else if (cp >= 0x20 && cp < 0x7F) ls_strbuf_add(b, (const char *)p + i, 1);
        else if (cp < 0x10000) ls_strbuf_printf(b, "\\u%04lx", cp);
        else ls_strbuf_add(b, (const char *)p + i, used); /* raw UTF-8: YAML readers reject surrogate pairs */
        i += used;
    }
    ls_strbuf_puts(b, "\"");
}

static void put_value(ls_strbuf *b, const ls_trial_config *c, const ls_config_key *k) {
    const void *f = cfield_of(c, k);
    char num[64];
    switch (k->type) {
    case LS_CONFIG_INT: ls_strbuf_printf(b, "%d", *(const int *)f); break;
    case LS_CONFIG_U64: ls_strbuf_printf(b, "%" PRIu64, *(const uint64_t *)f); break;
    case LS_CONFIG_AUTO_NUM:
        if (*(const double *)f == LS_CONFIG_ALPHA_AUTO) {
            ls_strbuf_puts(b, "auto");
            break;
        }
        /* fall through */
    case LS_CONFIG_DOUBLE:
        format_double(num, sizeof num, *(const double *)f);
        ls_strbuf_puts(b, num);
        break;
    case LS_CONFIG_BOOL: ls_strbuf_puts(b, *(const bool *)f ? "true" : "false"); break;
    case LS_CONFIG_STRING: put_quoted(b, *(char *const *)f); break;
    case LS_CONFIG_ENUM: {
        int i = *(const int *)f, count = 0;
        while (k->names[count]) count++;
        if (i >= 0 && i < count) ls_strbuf_puts(b, k->names[i]);
        else ls_strbuf_printf(b, "%d", i); /* not a valid name: reloading it fails, as it should */
        break;
    }
    case LS_CONFIG_FLAGS: {
        unsigned m = *(const unsigned *)f;
        int first = 1;
        ls_strbuf_puts(b, "[");
        for (int i = 0; k->names[i]; i++)
            if (m & (1u << i)) {
                ls_strbuf_printf(b, "%s%s", first ? "" : ", ", k->names[i]);
                first = 0;
            }
        ls_strbuf_puts(b, "]");
        break;
    }
    }
}

char *ls_config_value_yaml(const ls_trial_config *c, const ls_config_key *k) {
    ls_strbuf b = {0};
    put_value(&b, c, k);
    if (!b.p) ls_strbuf_puts(&b, "");
    return b.p;
}

/* The section of a key ("" for top-level keys), as a length into k->key. */
static size_t section_len(const ls_config_key *k) {
    const char *dot = strchr(k->key, '.');
    return dot ? (size_t)(dot - k->key) : 0;
}

char *ls_config_to_yaml(const ls_trial_config *c) {
    ls_strbuf b = {0};
    const ls_config_key *prev = NULL;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const ls_config_key *k = &config_keys[i];
        size_t sl = section_len(k);
        if (sl && (!prev || section_len(prev) != sl || memcmp(prev->key, k->key, sl)))
            ls_strbuf_printf(&b, "%.*s:\n", (int)sl, k->key);
        ls_strbuf_printf(&b, "%s%s: ", sl ? "  " : "", k->key + (sl ? sl + 1 : 0));
        put_value(&b, c, k);
        ls_strbuf_puts(&b, "\n");
        prev = k;
    }
    return b.p;
}

/* Written by hand rather than with cJSON: cJSON prints doubles to 15 digits when they compare
 * equal within a relative epsilon, which loses exactness (and 2^53 - 1 becomes 9.0e15). */
char *ls_config_to_json(const ls_trial_config *c) {
    ls_strbuf b = {0};
    const ls_config_key *prev = NULL;
    ls_strbuf_puts(&b, "{");
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const ls_config_key *k = &config_keys[i];
        size_t sl = section_len(k);
        int new_section = sl && (!prev || section_len(prev) != sl || memcmp(prev->key, k->key, sl));
        int in_section = prev && section_len(prev) > 0;
        if (new_section || (!sl && in_section)) {
            if (in_section) ls_strbuf_puts(&b, "\n  }");
        }
        if (prev) ls_strbuf_puts(&b, ",");
        if (new_section) ls_strbuf_printf(&b, "\n  \"%.*s\": {", (int)sl, k->key);
        ls_strbuf_printf(&b, "\n%s\"%s\": ", sl ? "    " : "  ", k->key + (sl ? sl + 1 : 0));
        const void *f = cfield_of(c, k);
        char num[64];
        switch (k->type) {
        case LS_CONFIG_STRING: put_quoted(&b, *(char *const *)f); break;
        case LS_CONFIG_ENUM: {
            char *v = ls_config_value_yaml(c, k);
            put_quoted(&b, v);
            free(v);
            break;
        }
        case LS_CONFIG_AUTO_NUM:
            if (*(const double *)f == LS_CONFIG_ALPHA_AUTO) {
                ls_strbuf_puts(&b, "\"auto\"");
                break;
            }
            format_double(num, sizeof num, *(const double *)f);
            ls_strbuf_puts(&b, num);
            break;
        case LS_CONFIG_FLAGS: {
            unsigned m = *(const unsigned *)f;
            int first = 1;
            ls_strbuf_puts(&b, "[");
            for (int j = 0; k->names[j]; j++)
                if (m & (1u << j)) {
                    ls_strbuf_printf(&b, "%s\"%s\"", first ? "" : ", ", k->names[j]);
                    first = 0;
                }
            ls_strbuf_puts(&b, "]");
            break;
        }
        default: put_value(&b, c, k); break; /* numbers and booleans: the YAML text is JSON too */
        }
        prev = k;
    }
    if (prev && section_len(prev) > 0) ls_strbuf_puts(&b, "\n  }");
    ls_strbuf_puts(&b, "\n}\n");
    return b.p;
}

uint64_t ls_config_hash(const ls_trial_config *c) {
    char *yaml = ls_config_to_yaml(c);
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, 64 bits */
    for (const unsigned char *p = (const unsigned char *)yaml; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    free(yaml);
    return h;
}

/* ---- the markdown reference ---------------------------------------------------------------- */

static const char *type_word(const ls_config_key *k) {
    switch (k->type) {
    case LS_CONFIG_INT: return "integer";
    case LS_CONFIG_U64: return "integer (seed)";
    case LS_CONFIG_DOUBLE: return "number";
    case LS_CONFIG_AUTO_NUM: return "number or `auto`";
    case LS_CONFIG_BOOL: return "boolean";
    case LS_CONFIG_STRING: return (k->flags & LS_CONFIG_PATH) ? "path" : "string";
    case LS_CONFIG_ENUM: return "one name";
    case LS_CONFIG_FLAGS: return "list of names";
    }
    return "?";
}

static void allowed(char *dst, size_t cap, const ls_config_key *k) {
    char range[96];
    size_t o = 0;
    dst[0] = '\0';
    switch (k->type) {
    case LS_CONFIG_INT:
    case LS_CONFIG_U64:
    case LS_CONFIG_DOUBLE: format_range(dst, cap, k); break;
    case LS_CONFIG_AUTO_NUM:
        format_range(range, sizeof range, k);
        snprintf(dst, cap, "%s or `auto`", range);
        break;
    case LS_CONFIG_BOOL: snprintf(dst, cap, "`true`, `false`"); break;
    case LS_CONFIG_STRING: snprintf(dst, cap, "%s", (k->flags & LS_CONFIG_REQUIRED) ? "required" : "any"); break;
    case LS_CONFIG_ENUM:
    case LS_CONFIG_FLAGS:
        for (int i = 0; k->names[i] && o + 1 < cap; i++) {
            int n = snprintf(dst + o, cap - o, "%s`%s`", i ? ", " : "", k->names[i]);
            if (n < 0) break;
            o += (size_t)n;
        }
        break;
    }
}

void ls_config_doc_markdown(FILE *f) {
    ls_trial_config def;
    ls_config_defaults(&def);
    fputs("<!-- generated by `lorasweep config doc` from the table in src/config.c; do not edit -->\n", f);
    const ls_config_key *prev = NULL;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const ls_config_key *k = &config_keys[i];
        size_t sl = section_len(k);
        if (!prev || section_len(prev) != sl || memcmp(prev->key, k->key, sl)) {
            if (sl) fprintf(f, "\n### %.*s\n\n", (int)sl, k->key);
            else fputs("\n### top level\n\n", f);
            fputs("| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n", f);
        }
        char *value = ls_config_value_yaml(&def, k), range[256];
        allowed(range, sizeof range, k);
        fprintf(f, "| `%s` | %s | `%s` | %s | %s |\n", k->key, type_word(k), value, range, k->doc);
        free(value);
        prev = k;
    }
    ls_config_free(&def);
}
