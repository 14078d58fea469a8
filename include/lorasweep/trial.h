/*
 * trial.h: one trial from its configuration to its results: load the model, tokenizer and data,
 * split and encode, train the adapter (resuming from a checkpoint when one is there), forecast
 * the test systems, and account the FLOPS. `lorasweep train` runs one; a sweep worker runs many.
 */
#ifndef LORASWEEP_TRIAL_H
#define LORASWEEP_TRIAL_H

#include "lorasweep/config.h"
#include "lorasweep/eval.h"
#include "lorasweep/train.h"

typedef struct ls_trial_result_s {
    uint64_t id;               /* ls_config_hash of the trial */
    double alpha;              /* the data set's scale (per-system scales are in forecast.alpha) */
    int n_train_windows, n_val_windows;
    ls_train_state train;      /* curves, step, tokens and time of training */
    double final_train_loss;   /* mean of the last min(10, steps) steps; NaN without training */
    double final_val_loss;     /* at the end of training (or of the base model); NaN without a split */
    int has_forecast;
    ls_forecast forecast;
    double flops_train, flops_validation, flops_forecast, flops_total;
    double wall_seconds;
    int resumed_step;          /* the step this run started from (its checkpoint's; 0: fresh) */
    double train_run_seconds;  /* this run's training loop: steps, validations, checkpoints */
    ls_lora adapter;           /* the trained adapter */
    ls_model_config model_cfg;
    uint64_t data_checksum;    /* ls_data_file_checksum of the data file the trial ran on */
} ls_trial_result;

/* A model kept between the trials of one process (a sweep worker runs many on the same model):
 * the frozen weights and their backend copy, read once. A trial takes it when it names the same
 * model directory on the same backend and the directory's files have not changed since they were
 * read (ls_model_fingerprint: size, inode, modification and change times); otherwise the kept model
 * is freed first and the trial's is loaded into its place (one model in memory at a time). Zeroed
 * to start; ls_model_cache_free at the end. */
typedef struct ls_model_cache_s {
    char *dir;              /* the model directory as the trial named it, or NULL: nothing kept */
    const ls_backend *be;
    uint64_t fingerprint;   /* of dir's files when they were read */
    ls_model host, dev;     /* dev: the backend copy (aliases host on the CPU) */
    long loads, reuses;     /* how many trials read the model, and how many took it as it was */
} ls_model_cache;
void ls_model_cache_free(ls_model_cache *c);

typedef struct {
    ls_train_hooks train;                 /* progress, should_stop (checkpoint is set by the trial) */
    ls_forecast_progress forecast_progress;
    void *forecast_ctx;
    const char *checkpoint_dir;           /* where to checkpoint and resume from; NULL = nowhere */
    const char *adapter_dir;              /* start from this PEFT adapter instead of a fresh one */
    const ls_train_group *group;          /* data parallel over these ranks (train.h); NULL: alone */
    ls_model_cache *model_cache;          /* keep the model for later trials; NULL: read it and free it */
    int pause_step;                       /* > 0: stop and checkpoint at this step, validated there (a rung
                                           * of early stopping: ls_train_options.pause_step); 0: to the end */
} ls_trial_hooks;

/* Run the trial. LS_ERR with a message for anything that stops it (a missing file, a NaN loss,
 * memory); what check.h checks is checked first, before the weights are read. *out then holds what was done so far and must still be freed. A run stopped by
 * should_stop returns LS_OK with out->train.step < max_steps and no forecast.
 *
 * Resuming from hooks->checkpoint_dir: the checkpoint must have been made from the same data file
 * (its bytes' checksum, recorded in every checkpoint) and its position must lie inside the
 * training windows; otherwise one line naming the data file and what to do, and nothing runs.
 *
 * With hooks->group, every rank of the group calls it with the same config: each loads the
 * inputs (and the checkpoint) itself, they train together, and group rank 0 alone writes the
 * checkpoints and forecasts (the others end with the same adapter and curves, and no forecast).
 * Setup failing on any rank fails it on every rank: the first group call of the trial is one
 * ls_train_group_agree, so a rank that cannot even start it calls ls_train_group_agree(group, 0)
 * instead. train.ranks_per_trial must equal the group's size (1 without a group). */
int ls_trial_run(const ls_trial_config *cfg, const ls_trial_hooks *hooks, ls_trial_result *out);
void ls_trial_result_free(ls_trial_result *r);

/* The trial's encoding section as the trainer and the forecast take it. */
ls_encoding ls_trial_encoding(const ls_trial_config *cfg);

/* Write a trial's files into dir (which must exist): adapter/ (PEFT; only when write_adapter),
 * curves.csv (with the adapter), metrics.json, and forecasts.csv when there is a forecast. Each
 * file is written atomically. */
int ls_trial_write_outputs(const char *dir, const ls_trial_config *cfg, const ls_trial_result *r, int write_adapter);

/* Planned FLOPS of a config without running it (for budgets): training (exact), validation
 * (every pass the trainer makes, over the validation windows of the data set the config names,
 * split and encoded as the trial will: exact) and the forecast (its prompts exact, each sample at
 * the most tokens it can write: an upper bound). Tokens are counted as characters of the LLMTIME
 * text, exact for Qwen's tokenizer (one token per digit and per '.', ',' and ';'). Reads the
 * model's config.json (LS_ERR if it cannot be read) and the data file (one that cannot be read is
 * estimated as the course's shape, as below: the trial will fail on it anyway); LS_ERR where the
 * trial would fail on its data (a split or a forecast the data set cannot hold). */
int ls_trial_estimate_flops(const ls_trial_config *cfg, double *flops);
/* The same for a trial of an early-stopping stage that trains `steps` steps (<= max_steps; fewer:
 * stopped there, so no forecast) and is validated at each of the rungs below that as well. */
int ls_trial_estimate_flops_rungs(const ls_trial_config *cfg, const int *rungs, int n_rungs, int steps, double *flops);
/* An estimate by part, as a finished trial records them (flops_train, ...), and the forecast's
 * tokens per sample: the prompt (the mean over the systems, rounded down, as the trial records
 * it) and the most a sample can write (what the forecast is estimated at). */
typedef struct {
    double train, validation, forecast, total;
    int prompt_tokens, new_tokens_max;
} ls_trial_flops;
/* The same with the model's description given (a preset, or one config.json read once for many
 * trials) and the data set already read (ds, read once for many trials); nothing is read from
 * disk. ds NULL: the course's shape stands in (1000 systems of 100 steps, one integer digit per
 * value), for a plan made before the data exists. */
int ls_trial_estimate_flops_model(const ls_trial_config *cfg, const ls_model_config *model, const ls_dataset *ds,
                                  ls_trial_flops *out);
/* ... and with rungs, for `steps` steps (ls_trial_estimate_flops_rungs). */
int ls_trial_estimate_flops_model_rungs(const ls_trial_config *cfg, const ls_model_config *model, const ls_dataset *ds,
                                        const int *rungs, int n_rungs, int steps, ls_trial_flops *out);

/* Estimates of many trials (sweep plan, a stage's budget plan, the report's runs to the end):
 * each model.path's config.json read once (or one preset for all: have_preset) and each data.path
 * once, the last of each kept. Zeroed to start; ls_flops_estimator_free. */
typedef struct {
    int have_preset;
    ls_model_config preset;
    char *path;          /* the config.json last read */
    int ok;              /* whether it could be read */
    ls_model_config mc;
    char error[512];     /* the first failure: a config.json not read, a trial that would fail */
    char *data_path;     /* the data file last read */
    int data_ok;
    ls_dataset ds;
    char data_note[600]; /* the first data file that could not be read (the course's shape stood in) */
} ls_flops_estimator;
/* ls_trial_estimate_flops_model_rungs with what e has read: the total, NaN (and NaN parts) where
 * the model's config cannot be read or the trial would fail (e->error keeps the first reason). */
double ls_flops_estimate(ls_flops_estimator *e, const ls_trial_config *c, const int *rungs, int n_rungs, int steps,
                         ls_trial_flops *parts);
void ls_flops_estimator_free(ls_flops_estimator *e);

#endif
