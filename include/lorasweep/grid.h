/*
 * grid.h: sweep grid files: a base trial, axes whose Cartesian product is a stage's trials, and
 * ordered stages where a later stage starts from the best trial of an earlier one (docs/sweep.md).
 *
 *   name: coursework                      # the sweep; results go to results/<name>.h5
 *   budget_flops: 1e17                    # optional FLOPS cap of the whole sweep
 *   max_attempts: 3                       # optional: crashes a trial may cause before it is failed
 *   base: {model: {path: ...}, ...}       # a trial config: exactly the keys of `lorasweep train`
 *   stages:                               # or, for one stage named "main", a top-level `grid:`
 *     - name: lr_rank
 *       grid: {train.lr: [1e-5, 5e-5, 1e-4], lora.rank: [2, 4, 8]}
 *     - name: ctx
 *       select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}
 *       grid: {train.ctx: [128, 512, 768]}
 *     - name: search                      # a sampled stage: 27 configurations drawn from a space
 *       method: random                    # or sobol (quasi-random, point i by its index)
 *       trials: 27
 *       seed: 1                           # optional (random only)
 *       repeats: 3                        # optional, any stage: each configuration 3 times, other seeds
 *       parameters:
 *         train.lr: {distribution: log_uniform, min: 1e-5, max: 1e-3}   # min, max are values
 *         lora.rank: {values: [2, 4, 8, 16]}
 *       early_stopping: {type: asha, metric: val_loss, min_steps: 50, eta: 3}   # or type: median
 *
 * A stage's trials are configurations x repeats, configuration-major (trial index = configuration
 * * repeats + repeat). Configuration i is a pure function of the stage's axes or search space and
 * i; repeat r of it a pure function of the configuration and r (its train.seed and lora.seed); so
 * what a stage runs never depends on how far a sweep got, on the machine or on early stopping.
 *
 * Use: ls_grid_load_file once (every key and every axis value is checked against the trial key
 * table, and every trial that can be expanded without a winner is validated, before any work);
 * then for each stage in order, ls_grid_expand (giving the winner of the stage's `select.from`
 * when it has one), run its trials, and ls_grid_select the winner from their metrics.
 *
 * The file is untrusted: it is read as libyaml events (no anchors, aliases or tags), at most
 * LS_CONFIG_MAX_BYTES, at most LS_GRID_MAX_STAGES stages and LS_GRID_MAX_TRIALS trials in all
 * (checked axis by axis as they are read, before any trial is made). Errors are one line,
 * "FILE:LINE: KEY: problem".
 */
#ifndef LORASWEEP_GRID_H
#define LORASWEEP_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "lorasweep/config.h"

enum {
    LS_GRID_MAX_TRIALS = 10000, /* trials of all stages together */
    LS_GRID_MAX_STAGES = 64,
    LS_GRID_MAX_NAME = 64,      /* bytes of a sweep or stage name: [A-Za-z0-9_.-], not starting with '.' */
};

/* How a stage's winner is picked; every metric is "lower is better". */
typedef enum {
    LS_GRID_METRIC_FINAL_VAL_LOSS, /* ls_trial_result.final_val_loss */
    LS_GRID_METRIC_MSE,            /* forecast MSE */
    LS_GRID_METRIC_MAE,            /* forecast MAE */
    LS_GRID_METRIC_COUNT
} ls_grid_metric;
/* "final_val_loss", "mse", "mae". */
extern const char *const ls_grid_metric_names[LS_GRID_METRIC_COUNT];

typedef struct {
    const ls_config_key *key; /* the row of the trial key table */
    int line;                 /* of the key in the grid file (1-based) */
    size_t n_values;          /* >= 1 */
    char **values;            /* each value as ls_config_value_yaml writes it ("1.0e-05") */
} ls_grid_axis;

/* How a stage makes its configurations. */
typedef enum {
    LS_GRID_METHOD_GRID,      /* the product of its axes (`grid:`) */
    LS_GRID_METHOD_RANDOM,    /* `trials` draws from `parameters`, splitmix64 seeded by a hash of the space */
    LS_GRID_METHOD_SOBOL,     /* `trials` points of the Sobol sequence (GSL), point i by its index */
    LS_GRID_METHOD_COUNT
} ls_grid_method;
/* "grid", "random", "sobol". */
extern const char *const ls_grid_method_names[LS_GRID_METHOD_COUNT];

/* How a sampled parameter maps a uniform number u in [0, 1) to a value. */
typedef enum {
    LS_GRID_DIST_VALUES,      /* values[floor(u * n)] */
    LS_GRID_DIST_UNIFORM,     /* min + u (max - min) */
    LS_GRID_DIST_LOG_UNIFORM, /* exp(log min + u (log max - log min)): min and max are values, 0 < min < max */
    LS_GRID_DIST_INT_UNIFORM, /* min + floor(u (max - min + 1)): whole numbers in [min, max] */
    LS_GRID_DIST_COUNT
} ls_grid_dist;
/* "values", "uniform", "log_uniform", "int_uniform". */
extern const char *const ls_grid_dist_names[LS_GRID_DIST_COUNT];

/* One key of a sampled stage's `parameters`. Values are checked against the key table: min and
 * max when loading, every sampled value when it is drawn (also at load). Integer keys get whole
 * numbers (rounded); real values are rounded to LS_GRID_SAMPLE_DIGITS significant digits, so that
 * a trial's id and overrides do not depend on the last bit of a machine's exp(). */
typedef struct {
    const ls_config_key *key;
    int line;
    ls_grid_dist dist;
    double min, max;          /* distributions */
    size_t n_values;          /* LS_GRID_DIST_VALUES */
    char **values;            /* canonical text, as axis values */
} ls_grid_param;

enum { LS_GRID_SAMPLE_DIGITS = 4 };

/* Early stopping of a stage's configurations (asha.h has the rules, docs/sweep.md the format):
 *   early_stopping: {type: asha, metric: val_loss, min_steps: 50, eta: 3}   # or type: median
 * Rungs at min_steps * eta^k optimiser steps below train.max_steps, and max_steps itself (the top);
 * every trial of the stage pauses at each rung with its validation loss there. */
typedef enum {
    LS_GRID_ES_NONE,          /* every trial runs to train.max_steps */
    LS_GRID_ES_ASHA,          /* asynchronous successive halving, promotion form (Li et al. 2020, Alg. 2) */
    LS_GRID_ES_MEDIAN,        /* the median rule: stop when worse than the median of the others at a rung */
    LS_GRID_ES_COUNT
} ls_grid_es_type;
/* "none", "asha", "median". */
extern const char *const ls_grid_es_names[LS_GRID_ES_COUNT];

typedef struct {
    ls_grid_es_type type;
    int line;                 /* of `early_stopping` in the file (0: not given) */
    int min_steps;            /* the first rung, >= 1, below train.max_steps */
    int eta;                  /* >= 2 (default 3): rung k at min_steps * eta^k; asha keeps the top 1/eta */
    int min_trials;           /* median (default 3): others needed at a rung before a trial is judged */
} ls_grid_early_stopping;

typedef struct {
    char *name;
    int line;                 /* where the stage starts */
    ls_grid_method method;
    size_t n_axes;
    ls_grid_axis *axes;       /* in file order; the last one varies fastest (method grid) */
    size_t n_params;
    ls_grid_param *params;    /* in file order (random, sobol) */
    uint64_t seed;            /* random: the space's optional seed (0 by default) */
    uint64_t space_hash;      /* random, sobol: FNV-1a of the space (method, seed, parameters; not trials) */
    char **points;            /* random, sobol: n_configs x n_params canonical values, configuration-major */
    size_t n_configs;         /* product of the axes' lengths (1 without axes), or `trials` */
    size_t repeats;           /* >= 1: each configuration runs this many times with other seeds */
    size_t n_trials;          /* n_configs * repeats */
    int select_from;          /* index of an earlier stage, or -1: the stage starts from base alone */
    ls_grid_metric metric;
    size_t n_keep;
    const ls_config_key **keep; /* keys copied from the winner of select_from */
    ls_grid_early_stopping early_stopping; /* type LS_GRID_ES_NONE without one */
} ls_grid_stage;

typedef struct {
    char *name;
    char *source;             /* the file as given (or load_string's name) */
    char *results_path;       /* "results/<name>.h5" (relative to the current directory) */
    double budget_flops;      /* 0: no budget */
    int max_attempts;         /* a trial whose attempts ended with the job dying this many times is
                               * marked failed instead of started again (default 3; not in the hash) */
    ls_trial_config base;     /* defaults + base; relative paths resolve against the file's directory */
    size_t n_stages;
    ls_grid_stage *stages;
    size_t n_trials;          /* all stages */
    char *canonical;          /* base (ls_config_to_yaml) + stages (axes in canonical values, select) */
    uint64_t hash;            /* FNV-1a of canonical: the grid's identity */
} ls_grid;

/* One trial of a stage. */
typedef struct {
    ls_trial_config config;   /* resolved and validated (ls_config_validate) */
    uint64_t id;              /* ls_config_hash(&config) */
    const char *stage;        /* the stage's name (owned by the grid) */
    size_t stage_index;
    size_t index;             /* in the stage: config * repeats + repeat */
    size_t configuration;     /* its configuration: product order of the axes (the first varies
                               * slowest), or the sampled configuration's index */
    size_t repeat;            /* 0 .. repeats-1 */
    uint64_t config_id;       /* the configuration's id: the id of its repeat 0 */
    char *overrides;          /* "train.lr=1.0e-05 lora.rank=2": kept keys, then the axes or sampled
                               * parameters, then (repeats 1 and later) train.seed and lora.seed */
} ls_grid_trial;

/* Completed trials' metrics, for ls_grid_select. NaN: not measured. */
typedef struct {
    uint64_t id;
    double metric[LS_GRID_METRIC_COUNT];
} ls_grid_result;

/* Load and check a grid file. Relative paths of base resolve against the file's directory; the
 * files they name are not opened. Every axis key and value is checked (unknown key, wrong type,
 * out of range, empty axis, duplicate axis or value, too many trials), and stages' select
 * clauses (an earlier stage, a metric, kept keys that are not also axes of the stage); a sampled
 * stage's method, trials, seed and parameters (a distribution with 0 < min < max for log_uniform,
 * min and max in the key's range), and repeats (not with train.seed or lora.seed as an axis,
 * parameter or kept key). Sampled stages draw their configurations here (ls_grid_stage.points). Every
 * trial is validated by ls_config_validate: a stage with `select` with each trial of its
 * select.from stage standing in for the winner (the first one alone when that would make more
 * than LS_GRID_MAX_TRIALS checks). On failure *g is empty (nothing to free) and the error is
 * "FILE:LINE: KEY: problem" (or "FILE: problem" for a file that cannot be read). */
int ls_grid_load_file(const char *path, ls_grid *g);
/* The same from len bytes (need not be NUL-terminated); `name` names them in messages and paths
 * resolve against base_dir (NULL: the current directory). */
int ls_grid_load_string(const char *yaml, size_t len, const char *name, const char *base_dir, ls_grid *g);
void ls_grid_free(ls_grid *g);

/* Index of the stage named name, or -1. */
int ls_grid_stage_find(const ls_grid *g, const char *name);

/* The trials of stage `stage`: base, then (for a stage with select) the kept keys copied from
 * `winner`, then each point of the axes. winner must be given exactly when the stage has a
 * select clause (it is normally a trial config of stage select_from; any config will do).
 * *out gets n_trials trials in index order. LS_ERR with one line if a trial does not validate
 * ("FILE:LINE: stage S (overrides): KEY: problem"); then *out is NULL. */
int ls_grid_expand(const ls_grid *g, size_t stage, const ls_trial_config *winner, ls_grid_trial **out,
                   size_t *n);
void ls_grid_trials_free(ls_grid_trial *trials, size_t n);

/* The winner of a stage, a configuration: trials[0..n) are grouped by their `configuration`; a
 * configuration competes when every one of its trials has a result (matched by id) with a finite
 * metric, with the mean of them (a learning rate that fails on one seed in three is not a winner);
 * the lowest mean wins, ties to the lowest configuration. Without repeats each trial is its own
 * configuration: the trial with the lowest finite metric. Sets *winner to the index into trials of
 * the winning configuration's first trial (its repeat 0, whose config is the configuration's).
 * LS_ERR ("stage S: no trial has a final_val_loss", with repeats "stage S: no configuration has a
 * final_val_loss in every repeat") when none qualifies. */
int ls_grid_select(const ls_grid_trial *trials, size_t n, const ls_grid_result *results, size_t n_results,
                   ls_grid_metric metric, size_t *winner);

/* Check the grid against the model it trains: the train.ctx its trials will have must fit
 * max_positions (ls_model_config.max_positions, from config.json or a preset): every train.ctx
 * axis value or sampled value, and base's train.ctx when a stage neither has such an axis nor keeps train.ctx
 * from a winner (base's default is not refused when every trial sets its own). LS_ERR with one
 * line ("FILE:LINE: train.ctx: 768 is more than the model's max_position_embeddings (512)").
 * Loading cannot do this: the model need not exist then. */
int ls_grid_check_model(const ls_grid *g, int max_positions);

/* The seeds of repeats 0..repeats-1 of a configuration (config_id: its id; train_seed0,
 * lora_seed0: its own train.seed and lora.seed) into train[] and lora[]: repeat 0 keeps the
 * configuration's own (so repeat 0 is the configuration itself); repeat r >= 1 draws both from
 * splitmix64 seeded by a hash of (config_id, r), in [0, 2^53 - 1], each distinct from the earlier
 * repeats' (repeat r's seeds do not depend on `repeats`: more repeats keep the earlier ones). */
void ls_grid_repeat_seeds(uint64_t config_id, uint64_t train_seed0, uint64_t lora_seed0, size_t repeats,
                          uint64_t *train, uint64_t *lora);

/* Which configuration and repeat of stage `stage` the trial config c is (a config read back from a
 * results file): *config_id gets the id of c with train.seed and lora.seed put back to base's (the
 * configuration's own: a stage with repeats refuses them as axes, parameters or kept keys), and
 * *repeat the repeat whose seeds c has. LS_ERR when the stage has no repeats or c has the seeds of
 * none of its repeats (then *config_id is c's own id and *repeat 0). */
int ls_grid_configuration_of(const ls_grid *g, size_t stage, const ls_trial_config *c, uint64_t *config_id,
                             size_t *repeat);

/* Whether grid g only grows `old`: the same base; old's stages first, in order, each with the same
 * select clause, method, axes or search space (parameters and seed), every old axis value still
 * there, as many configurations (`trials`) and repeats or more (values may be added, trials and
 * repeats raised, and stages added after the old ones). Then the trials old's stages had stay trials of g (a stage whose added values
 * change its winner starts later stages elsewhere), so g can go on with old's results file.
 * LS_ERR with the first difference ("stage lr: train.lr lost the value 1.0e-05"). budget_flops
 * and name are not compared. */
int ls_grid_extends(const ls_grid *old, const ls_grid *g);

/* ---- budget --------------------------------------------------------------------------------- */

typedef struct {
    size_t trial;             /* index into the estimates given */
    double flops;             /* its estimate */
    int skipped;              /* 1: not run, reason says why */
    char reason[160];
} ls_grid_budget_entry;

/* Run order of trials under a budget: largest estimate first (ties: lower index first); each
 * trial whose estimate fits in *left is admitted and its estimate taken from *left, one that does
 * not fit is skipped with a reason ("estimated 3.2e16 FLOPS, 1.1e16 left of the budget"). A
 * non-finite or negative estimate is skipped ("no FLOPS estimate"). *left may be INFINITY (no
 * budget). out has n entries, in run order. */
void ls_grid_budget_plan(const double *flops, size_t n, double *left, ls_grid_budget_entry *out);

/* The same by groups (a configuration's repeats): trial i belongs to group[i] (NULL: each trial
 * alone). A group is admitted or skipped as a whole, at the sum of its trials' estimates (none of
 * them non-finite or negative); groups run largest sum first (ties: the group of the lowest trial
 * index first), each group's trials in index order. A skipped group's reason says its repeats
 * ("estimated 3e+16 FLOPS for 3 repeats, 2e+16 left of the budget"). */
void ls_grid_budget_plan_groups(const double *flops, const size_t *group, size_t n, double *left,
                                ls_grid_budget_entry *out);

#endif
