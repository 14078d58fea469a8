/*
 * eval.h: forecast evaluation as the course did it. For each system: encode the first
 * context_steps steps as LLMTIME text, let the model continue it until forecast_steps more steps
 * are written (samples continuations, batched over one prefilled KV cache), decode them, and
 * compare the per-step mean of the samples with the true values: MSE and MAE in the data's own
 * units, for prey, predator and both.
 *
 * Shapes: S systems, K samples, H forecast steps (the horizon), 2 variables.
 */
#ifndef LORASWEEP_EVAL_H
#define LORASWEEP_EVAL_H

#include "lorasweep/data.h"
#include "lorasweep/generate.h"
#include "lorasweep/train.h"

typedef struct {
    int context_steps, forecast_steps, samples;
    int max_new_tokens;    /* per sample; 0 = enough for forecast_steps at this encoding */
    ls_sampler sampler;
    int grammar;           /* sample only text that parses */
    uint64_t seed;
} ls_forecast_options;

enum { LS_METRIC_PREY, LS_METRIC_PREDATOR, LS_METRIC_BOTH, LS_METRIC_COUNT };

typedef struct {
    int n_systems, steps, samples;
    int *system;             /* (S) indices into the data set */
    double *alpha;           /* (S) the scale each system was encoded with */
    float *truth;            /* (S, H, 2) */
    float *mean, *median, *std; /* (S, H, 2) over the samples that reached the step; NaN if none */
    float *sample_values;    /* (S, K, H, 2) NaN where a sample stopped short */
    int *failed;             /* (S) samples that parsed to fewer than H steps */
    double *mse, *mae;       /* (S, 3) prey, predator, both; NaN when no step had a forecast */
    double mse_mean[LS_METRIC_COUNT], mae_mean[LS_METRIC_COUNT]; /* means over the systems */
    int failed_total;        /* over all systems */
    long prompt_tokens, generated_tokens;
    double seconds;
} ls_forecast;

/* Called after each system: (systems done, of total). */
typedef void (*ls_forecast_progress)(void *ctx, int done, int total);

int ls_forecast_run(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_tokenizer *tok,
                    const ls_dataset *ds, const int *systems, int n_systems, const ls_encoding *enc,
                    double dataset_alpha, const ls_forecast_options *o, ls_forecast_progress progress, void *ctx,
                    ls_forecast *out);
void ls_forecast_free(ls_forecast *f);

/* Score a forecast from its truth and sample_values (n_systems, steps, samples and every array
 * allocated): per system and step, the mean, median and standard deviation (population, / n) of
 * the samples that have a value there (NaN where none has); a sample missing any step is failed;
 * per system, the MSE and MAE of the mean against the truth over the steps and variables that
 * have a mean, for prey, predator and both (NaN where none has); then their means over the
 * systems that have one (NaN systems left out, each system weighing the same) and failed_total.
 * ls_forecast_run calls it once every system is forecast. */
void ls_forecast_score(ls_forecast *f);

/* Tokens a sample may need for `steps` steps under a grammar of `decimals` decimals. */
int ls_forecast_token_budget(int steps, int decimals);
/* The new tokens each sample may take: max_new_tokens, or (0) the budget of forecast_steps. */
int ls_forecast_new_tokens(int max_new_tokens, int forecast_steps, int decimals);

/* The length of the longest prompt ls_forecast_run builds for systems[0..n_systems): each
 * system's first context_steps steps as LLMTIME text, at the alpha the forecast uses, tokenized
 * with tok. tok NULL counts characters instead, which is the token count of Qwen's tokenizer
 * (every digit and every separator of LLMTIME text is a token of its own). For checking that a
 * forecast fits the model before anything runs; LS_ERR when context_steps is not in the data. */
int ls_forecast_longest_prompt(const ls_tokenizer *tok, const ls_dataset *ds, const int *systems, int n_systems,
                               int context_steps, const ls_encoding *enc, double dataset_alpha, int *longest);

/* The most tokens a sample can write under the grammar before its `steps`-th ';' ends it: every
 * number at its longest (LS_GRAMMAR_MAX_INT_DIGITS integer digits, '.', the decimals, ',' or ';'). */
int ls_forecast_grammar_tokens(int steps, int decimals);

#endif
