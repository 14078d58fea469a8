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

typedef struct {
    char *name;
    int line;                 /* where the stage starts */
    size_t n_axes;
    ls_grid_axis *axes;       /* in file order; the last one varies fastest */
    size_t n_trials;          /* product of the axes' lengths (1 without axes) */
    int select_from;          /* index of an earlier stage, or -1: the stage starts from base alone */
    ls_grid_metric metric;
    size_t n_keep;
    const ls_config_key **keep; /* keys copied from the winner of select_from */
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
    size_t index;             /* in the stage, product order: the first axis varies slowest */
    char *overrides;          /* "train.lr=1.0e-05 lora.rank=2": kept keys, then the axes */
} ls_grid_trial;

/* Completed trials' metrics, for ls_grid_select. NaN: not measured. */
typedef struct {
    uint64_t id;
    double metric[LS_GRID_METRIC_COUNT];
} ls_grid_result;

/* Load and check a grid file. Relative paths of base resolve against the file's directory; the
 * files they name are not opened. Every axis key and value is checked (unknown key, wrong type,
 * out of range, empty axis, duplicate axis or value, too many trials), and stages' select
 * clauses (an earlier stage, a metric, kept keys that are not also axes of the stage). Every
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

/* The winner of a stage: among trials[0..n) those with a result (matched by id) whose metric is
 * finite, the lowest metric; ties go to the lowest index. Sets *winner to its index into trials.
 * LS_ERR ("stage S: no trial has a final_val_loss") when none qualifies. */
int ls_grid_select(const ls_grid_trial *trials, size_t n, const ls_grid_result *results, size_t n_results,
                   ls_grid_metric metric, size_t *winner);

/* Check the grid against the model it trains: the train.ctx its trials will have must fit
 * max_positions (ls_model_config.max_positions, from config.json or a preset): every train.ctx
 * axis value, and base's train.ctx when a stage neither has such an axis nor keeps train.ctx
 * from a winner (base's default is not refused when every trial sets its own). LS_ERR with one
 * line ("FILE:LINE: train.ctx: 768 is more than the model's max_position_embeddings (512)").
 * Loading cannot do this: the model need not exist then. */
int ls_grid_check_model(const ls_grid *g, int max_positions);

/* Whether grid g only grows `old`: the same base; old's stages first, in order, each with the same
 * select clause and axes, every old axis value still there (values may be added, and stages after
 * the old ones). Then the trials old's stages had stay trials of g (a stage whose added values
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

#endif
