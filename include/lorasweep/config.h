/*
 * config.h: the configuration of one trial, read from a YAML file.
 *
 * A trial file has a top-level `name` and the sections model, data, encoding, split, lora, train
 * and eval; docs/config.md lists every key (that list is generated from the table in config.c by
 * `lorasweep config doc`, so it cannot go stale). Example:
 *
 *   name: r8-lr3e-4
 *   model: {path: ../models/tiny}
 *   data:  {path: ../results/demo/lv_sim.h5}
 *   lora:  {rank: 8, targets: [q_proj, v_proj]}
 *   train: {lr: 3.0e-4, max_steps: 2000}
 *
 * Design (after Redis's static_configs[]): every key is one row of a table {dotted key, type,
 * range, default, offset into ls_trial_config, one-line doc}. The loader, ls_config_set, the
 * YAML and JSON writers, the hash and the markdown reference all walk that one table, so a key
 * is added in exactly two places: its field in the struct below and its row in config.c.
 *
 * The YAML is untrusted: the loader walks libyaml's events itself and stops at the first
 * problem with ONE line naming the file, the line and the key, e.g.
 *   trial.yaml:12: train.lr: -1 is out of range (0, 10]
 * Unknown keys, wrong types, values out of range, unknown enum names, duplicate keys, sections
 * that are not mappings, several documents, anchors/aliases/tags (refused: no billion laughs)
 * and files over LS_CONFIG_MAX_BYTES are all errors of this kind; nothing crashes or aborts.
 *
 * Relative paths (model.path, model.tokenizer, data.path) are kept as written, so the canonical
 * YAML and the hash do not depend on where the file lies; they are resolved against the
 * directory of the YAML file (ls_config_load_file) or the current directory (load_string) into
 * the `resolved` fields, which is what a trial opens.
 */
#ifndef LORASWEEP_CONFIG_H
#define LORASWEEP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    LS_CONFIG_MAX_BYTES = 1 << 20, /* a trial file larger than 1 MiB is refused */
    LS_CONFIG_MAX_STRING = 4096,   /* bytes in one string value (a path) */
};
#define LS_CONFIG_SEED_MAX 9007199254740991.0 /* 2^53 - 1: exact in JSON's doubles */
#define LS_CONFIG_ALPHA_AUTO 0.0             /* encoding.alpha: auto */

typedef enum { LS_CONFIG_BACKEND_AUTO, LS_CONFIG_BACKEND_CPU, LS_CONFIG_BACKEND_CUDA } ls_config_backend;
typedef enum { LS_CONFIG_SCOPE_DATASET, LS_CONFIG_SCOPE_SYSTEM } ls_config_scope;
typedef enum { LS_CONFIG_OPTIMIZER_ADAMW, LS_CONFIG_OPTIMIZER_SGD } ls_config_optimizer;
typedef enum { LS_CONFIG_SCHEDULE_CONSTANT, LS_CONFIG_SCHEDULE_LINEAR, LS_CONFIG_SCHEDULE_COSINE } ls_config_schedule;

typedef struct {
    char *path;                /* checkpoint directory, as written (required) */
    char *tokenizer;           /* tokenizer.json, as written; "" = <path>/tokenizer.json */
    ls_config_backend backend;
} ls_config_model;

typedef struct {
    char *path;                /* HDF5 data file, as written (required) */
} ls_config_data;

typedef struct {
    double alpha;              /* > 0, or LS_CONFIG_ALPHA_AUTO */
    ls_config_scope alpha_scope;
    double alpha_percentile;   /* auto: alpha = percentile(|x|, alpha_percentile) / alpha_target */
    double alpha_target;
    int decimals;              /* 0..8 */
} ls_config_encoding;

typedef struct {
    int test_systems;          /* the first test_systems systems are the test set */
    double val_fraction;       /* of the rest, after shuffling with seed */
    uint64_t seed;
} ls_config_split;

typedef struct {
    int rank;
    double alpha;              /* PEFT lora_alpha, scale = alpha / rank; 0 = rank (scale 1) */
    unsigned targets;          /* bit (1 << ls_proj) per targeted projection (model.h) */
    bool head_bias;
    uint64_t seed;
} ls_config_lora;

typedef struct {
    int ctx, stride;           /* window length in tokens; step between windows (0 = ctx/2) */
    int batch_size, max_steps; /* max_steps 0: no training (the unchanged model is evaluated) */
    ls_config_optimizer optimizer;
    double lr, beta1, beta2, eps, weight_decay, momentum, grad_clip;
    ls_config_schedule schedule;
    int warmup_steps;
    double min_lr_ratio;
    int eval_every, val_max_windows, checkpoint_every;
    uint64_t seed;
    int threads;
    int ranks_per_trial;       /* data parallel: MPI ranks (one GPU each under CUDA) per trial */
} ls_config_train;

typedef struct {
    int systems, context_steps, forecast_steps, samples;
    bool greedy;
    double temperature, top_p;
    int top_k;
    bool grammar;
    int max_new_tokens;
    uint64_t seed;
} ls_config_eval;

typedef struct {
    char *name;
    ls_config_model model;
    ls_config_data data;
    ls_config_encoding encoding;
    ls_config_split split;
    ls_config_lora lora;
    ls_config_train train;
    ls_config_eval eval;

    /* Not keys (not in the YAML, the JSON or the hash): where the config came from. */
    char *source;   /* the name used in messages: the file as given, or load_string's name */
    char *base_dir; /* absolute directory that relative paths resolve against */
    struct {
        char *model_path, *tokenizer, *data_path; /* absolute; "" while the key is "" */
    } resolved;
} ls_trial_config;

/* ---- the table ------------------------------------------------------------------------------ */

typedef enum {
    LS_CONFIG_INT,      /* int; an integral number ("1e3" is 1000) */
    LS_CONFIG_U64,      /* uint64_t (seeds), 0..LS_CONFIG_SEED_MAX */
    LS_CONFIG_DOUBLE,   /* double, finite */
    LS_CONFIG_BOOL,     /* bool: true or false */
    LS_CONFIG_STRING,   /* char *, malloc'ed, never NULL after ls_config_defaults */
    LS_CONFIG_ENUM,     /* int (a C enum): index into names */
    LS_CONFIG_FLAGS,    /* unsigned: a list of names, bit (1 << index) each */
    LS_CONFIG_AUTO_NUM, /* double: a number in range, or `auto` stored as 0 */
} ls_config_type;

enum {
    LS_CONFIG_MIN_OPEN = 1 << 0, /* the range excludes min: (min, ... */
    LS_CONFIG_MAX_OPEN = 1 << 1, /* the range excludes max: ..., max) */
    LS_CONFIG_PATH = 1 << 2,     /* a string that is a path (resolved, see above) */
    LS_CONFIG_REQUIRED = 1 << 3, /* a string that ls_config_validate wants non-empty */
};

typedef struct {
    const char *key;          /* "train.lr"; "name" for the one top-level key */
    ls_config_type type;
    size_t offset;            /* offsetof(ls_trial_config, train.lr) */
    double min, max;          /* numbers: allowed range (see flags) */
    unsigned flags;
    double def;               /* default of numbers, bools (0/1), enums (index), flags (mask) */
    const char *def_str;      /* default of strings */
    const char *const *names; /* enum and flag names, NULL-terminated */
    const char *doc;          /* one line */
} ls_config_key;

/* The table, in canonical order (name, then the sections in file order). */
const ls_config_key *ls_config_keys(size_t *count);
/* The row of a dotted key, or NULL. */
const ls_config_key *ls_config_find(const char *dotted_key);

/* ---- loading -------------------------------------------------------------------------------- */

/* Set every key to its default (strings allocated), source "<defaults>", base_dir the current
 * directory. c must hold nothing (fresh, zeroed or ls_config_free'd). */
void ls_config_defaults(ls_trial_config *c);

/* Defaults, then the file. Relative paths resolve against the file's directory. On failure
 * returns LS_ERR with one line "FILE:LINE: KEY: problem" (or "FILE: problem" for a file that
 * cannot be read) and leaves *c empty (nothing to free). Does not call ls_config_validate. */
int ls_config_load_file(const char *path, ls_trial_config *c);

/* Defaults, then `len` bytes of YAML (need not be NUL-terminated; at most LS_CONFIG_MAX_BYTES).
 * `name` names the text in messages (NULL: "<string>"); paths resolve against the current
 * directory. Same errors as ls_config_load_file. */
int ls_config_load_string(const char *yaml, size_t len, const char *name, ls_trial_config *c);

/* Apply a YAML text on top of an existing config (no defaults first): the keys it names are
 * set, the others kept. Besides sections, dotted top-level keys are accepted ("train.lr: 1e-4"),
 * which suits overlay and grid files. On failure c is unchanged. */
int ls_config_apply_string(ls_trial_config *c, const char *yaml, size_t len, const char *name);

/* Set one key from YAML text: a scalar ("3e-4", "true", "cosine", "models/x") or, for lists, a
 * flow list ("[q_proj, v_proj]") or one name. Same checks as the loader; errors are "KEY: problem"
 * without file or line. On failure c is unchanged. A relative path set here resolves against
 * c->base_dir, as if it had been written in the file. */
int ls_config_set(ls_trial_config *c, const char *dotted_key, const char *value_yaml);

/* Cross-key checks, after loading and overrides: model.path and data.path present, stride <= ctx,
 * eval.systems <= split.test_systems, warmup_steps <= max_steps, something to train, greedy
 * decoding with one sample, a forecast prompt that fits a Qwen2.5 context. LS_ERR with one line
 * "SOURCE: KEY: problem" naming the keys. */
int ls_config_validate(const ls_trial_config *c);

/* Deep copy (dst must hold nothing); every key equal (ls_config_equal). */
void ls_config_copy(ls_trial_config *dst, const ls_trial_config *src);
/* 1 when every key of the table is equal (source, base_dir and resolved are not compared). */
int ls_config_equal(const ls_trial_config *a, const ls_trial_config *b);
void ls_config_free(ls_trial_config *c);

/* ---- writing ------------------------------------------------------------------------------- */

/* Every key, in table order, as YAML in block style (malloc'ed, ends with a newline): the
 * resolved record of a trial. Paths as written; numbers in their shortest exact form (doubles
 * always with a '.', e.g. 1.0e-05, so that any YAML reader types them as floats); strings
 * double-quoted with escapes that JSON shares (\" \\ \n \t \uXXXX; only characters above U+FFFF
 * stay raw UTF-8), so a string's text is a JSON string too. ls_config_load_string of it gives
 * back an equal config with the same hash. */
char *ls_config_to_yaml(const ls_trial_config *c);
/* The same keys as a JSON object of sections (malloc'ed, pretty-printed). Also loadable YAML. */
char *ls_config_to_json(const ls_trial_config *c);
/* One key's value as the YAML text ls_config_to_yaml writes ("1.0e-05", "[q_proj, v_proj]"). */
char *ls_config_value_yaml(const ls_trial_config *c, const ls_config_key *k);

/* A stable id of the trial: 64-bit FNV-1a of ls_config_to_yaml. The same keys and values give
 * the same id in every run and on every machine (no pointers, no absolute paths, exact number
 * formatting); comments, key order, flow/block style and whitespace of the file do not matter.
 * A version of lorasweep that adds a key or changes a default changes the ids. Print it as
 * "%016" PRIx64. */
uint64_t ls_config_hash(const ls_trial_config *c);

/* The markdown reference of every key: one table per section (key, type, default, range, doc). */
void ls_config_doc_markdown(FILE *f);

/* ---- effective values of the "0 = automatic" keys ------------------------------------------ */

/* train.stride, with 0 meaning ctx / 2 (at least 1). */
int ls_config_stride(const ls_trial_config *c);
/* lora.alpha, with 0 meaning rank; scale = alpha / rank. */
double ls_config_lora_alpha(const ls_trial_config *c);

#endif
