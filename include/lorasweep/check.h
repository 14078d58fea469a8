/*
 * check.h: what a trial needs, checked before any work, so that a mistake in a trial or grid
 * file costs seconds instead of a failed trial after training (or every trial of a sweep).
 *
 * Two kinds of checks, each naming the key to change:
 *  - the files a trial opens: model.path (a directory with config.json and model.safetensors or
 *    model.safetensors.index.json), the tokenizer (model.tokenizer, or model.path's
 *    tokenizer.json) and data.path, e.g.
 *      sweep/x.yaml: data.path: data/lv.h5: No such file or directory
 *  - what must fit the model and the data: train.ctx within the model's positions, the split
 *    within the data's systems, the forecast's steps within the data's steps, and the forecast's
 *    prompt plus its new tokens within the model's positions, e.g.
 *      t.yaml: eval.context_steps + eval.forecast_steps: a forecast prompt of 960 tokens (80
 *      steps) plus 368 new tokens (20 steps) needs 1328 positions, more than the model's 256: ...
 *
 * `lorasweep train` and `eval` check the files before they create the output directory, and
 * ls_trial_run checks everything before it loads the weights; `sweep plan` and the start of
 * `sweep run` check a whole grid (ls_check_grid). The weights are not read (only found); the
 * tokenizer and the data are read, once per path.
 */
#ifndef LORASWEEP_CHECK_H
#define LORASWEEP_CHECK_H

#include "lorasweep/config.h"
#include "lorasweep/data.h"
#include "lorasweep/grid.h"
#include "lorasweep/model.h"
#include "lorasweep/tokenizer.h"
#include "lorasweep/train.h"

/* The files of a trial exist and can be opened, and model.path's config.json is a Qwen2 config,
 * which goes to *model. With a preset (sweep plan --preset: the model is not downloaded yet), a
 * model.path that does not exist stands for the preset: nothing in it is checked, nor a
 * tokenizer.json expected there, and *model is the preset. LS_ERR with one line
 * "SOURCE: KEY: PATH: problem", PATH as written in the file. */
int ls_check_files(const ls_trial_config *cfg, const ls_model_config *preset, ls_model_config *model);

/* train.ctx within the model's positions: "SOURCE: train.ctx: 512 is more than the model's 256
 * positions (max_position_embeddings)". */
int ls_check_ctx(const ls_trial_config *cfg, const ls_model_config *model);

/* split.test_systems and split.val_fraction leave training systems among the data's `systems`. */
int ls_check_split(const ls_trial_config *cfg, int systems);

/* The forecast, when eval.systems > 0: context plus forecast steps within the data's steps, and
 * the longest prompt (ls_forecast_longest_prompt over the test systems it forecasts; tok NULL
 * counts characters) plus the new tokens within the model's positions. dataset_alpha is the
 * data set's alpha, as the trial computes it. */
int ls_check_forecast(const ls_trial_config *cfg, const ls_model_config *model, const ls_tokenizer *tok,
                      const ls_dataset *ds, const ls_split *split, double dataset_alpha);

/* Everything above for many trials, reading each tokenizer and data file once. */
typedef struct ls_check ls_check;
/* preset: as for ls_check_files (may be NULL). */
ls_check *ls_check_new(const ls_model_config *preset);
/* Files, train.ctx, split and forecast of one trial. */
int ls_check_trial(ls_check *k, const ls_trial_config *cfg);
void ls_check_free(ls_check *k);

/* A whole grid before any work: the files of base; train.ctx of every stage against the model
 * (ls_grid_check_model); then every trial that can be expanded without a winner, and the trials
 * of a stage with `select` with each trial of its select.from stage standing in for the winner
 * (as loading does). A trial's error names it: "FILE:LINE: stage S (OVERRIDES): KEY: problem". */
int ls_check_grid(const ls_grid *g, const ls_model_config *preset);

#endif
