/*
 * report.h: what a results file says, as tables (text, markdown, CSV, JSON) and figures.
 *
 *   ls_report rep;
 *   ls_report_load("results/demo.h5", &rep);        // MPI must be initialised (the file is parallel HDF5)
 *   ls_report_print(stdout, &rep, LS_REPORT_TABLE, NULL);
 *   ls_report_plots(&rep, "results/demo-report", &plot_options, stdout);
 *   ls_report_free(&rep);
 *
 * The journal beside the file (RESULTS.h5.journal) is the truth about status, as for the sweep
 * itself: a trial the journal calls running while no sweep holds the lock was interrupted. A file
 * that is still being written, or was left by an interrupted sweep, is reported as far as it goes.
 */
#ifndef LORASWEEP_REPORT_H
#define LORASWEEP_REPORT_H

#include <stdio.h>

#include "lorasweep/asha.h"
#include "lorasweep/config.h"
#include "lorasweep/grid.h"
#include "lorasweep/results.h"

typedef enum { LS_REPORT_TABLE, LS_REPORT_MARKDOWN, LS_REPORT_CSV, LS_REPORT_JSON } ls_report_format;

/* "table", "md", "csv", "json" into *out; LS_ERR for another name. */
int ls_report_format_parse(const char *name, ls_report_format *out);

typedef struct {
    ls_results_row_data row;     /* hyperparameters, metrics, status, error (from the HDF5 row) */
    int stage;                   /* = row.stage */
    const char *stage_name;      /* the grid's name for it, or "stage N" */
    ls_result_status status;     /* the journal's status when there is a journal, else the row's */
    int live;                    /* running in a sweep that is alive now (not interrupted) */
    int progress_step;           /* last reported step of a running trial (journal), 0 unknown */
    int attempts;                /* starts the journal saw */
    int baseline;                /* max_steps == 0: the untrained model, evaluated */
    char *message;               /* error of a failed trial, reason of a skipped one ("" none) */
    char *config_yaml;           /* the resolved config, as stored */
    ls_trial_config config;      /* parsed (the defaults when the text does not parse: config_ok 0) */
    int config_ok;
    /* curves: train loss per step (NaN where not written), validation points; NULL until
     * ls_report_load_curves (a report of 100k trials or of a hostile file holds only the rows) */
    float *train_loss;
    int n_train;
    int *val_step;
    float *val_loss;
    int n_val;
    /* forecast: S systems x H steps x (prey, predator); systems[s] is the data set index; NULL
     * until ls_report_load_forecast (S -1: it could not be read) */
    int S, H;
    int *systems;
    float *fc_mean, *fc_std, *fc_truth;
    int configuration;           /* index into ls_report.configs: its configuration in its stage */
    int repeat;                  /* its repeat (0 in a stage without repeats; -1: seeds of no repeat) */
    /* early stopping (a trial of a stage with `early_stopping`, else NULL, -1 and NaN): */
    double *rung_val;            /* its validation loss at each of the stage's rungs, NaN where it
                                  * did not get to (the journal's decisions, else its curve; a done
                                  * trial's top rung is its final validation loss) */
    int rung;                    /* stopped: the rung it stopped at (0 = the first, as its message) */
    double flops_to_end;         /* the FLOPS it would have spent in the same stage without early
                                  * stopping: a stopped trial's estimate to max_steps (as `sweep plan`
                                  * and the budget estimate a trial), a done one's own less its extra
                                  * validations at rungs, any other its own; NaN: no estimate */
} ls_report_trial;

/* A stage's early stopping, as its grid has it: the rungs are those the sweep paused at. */
typedef struct {
    ls_grid_es_type type;        /* LS_GRID_ES_NONE: the stage has none */
    int eta;
    int n_rungs;
    int rungs[LS_ES_MAX_RUNGS];  /* steps, ascending; the last is max_steps (the top) */
} ls_report_es;

/* What early stopping saved in a stage: its trials' FLOPS against the same trials all run to
 * the end (ls_report_trial.flops_to_end). */
typedef struct {
    int trials, stopped;
    double spent, to_end;        /* to_end NaN: some trial has no estimate */
} ls_report_savings;

/* Mean and sample standard deviation (n - 1 in the denominator; NaN when n < 2) of n values. */
typedef struct {
    int n;
    double mean, std;
} ls_report_stat;

/* The statistics of a configuration, in this order. */
enum {
    LS_REPORT_STAT_VAL_LOSS,     /* final validation loss */
    LS_REPORT_STAT_MSE,          /* forecast MSE: prey, predator, both */
    LS_REPORT_STAT_MAE = LS_REPORT_STAT_MSE + 3, /* forecast MAE: prey, predator, both */
    LS_REPORT_STAT_FLOPS = LS_REPORT_STAT_MAE + 3, /* FLOPS in all */
    LS_REPORT_N_STATS
};

/* A configuration of a stage: its repeats (a stage with `repeats`, grouped by
 * ls_grid_configuration_of), or one trial (a stage without). A repeat that an earlier stage ran
 * (the same configuration and seeds, one trial) counts in both. */
typedef struct {
    uint64_t id;                 /* the configuration's id: its repeat 0's trial id */
    int stage;
    int repeats;                 /* planned: the stage's repeats (1 without) */
    int n_trials;                /* its trials in the file, at most `repeats` */
    int *trials;                 /* into ls_report.trials, by repeat */
    int first;                   /* representative trial: its first repeat done, else its first trial */
    int done;                    /* its trials done */
    int complete;                /* every planned repeat done with a finite validation loss: the
                                  * configuration competes (as the sweep's selection has it) */
    int baseline;                /* its trials are untrained (max_steps 0) */
    ls_report_stat stat[LS_REPORT_N_STATS]; /* over its done trials that have the value */
} ls_report_config;

enum { LS_REPORT_MAX_VARYING = 8 };

typedef struct {
    char path[4096];
    ls_results_info info;
    double budget_flops;         /* from the grid text; 0 none */
    int n_stages;                /* stages of the grid (at least those seen in the file) */
    char **stage_names;
    int *stage_ctx_axis;         /* 1: the grid's stage has a train.ctx axis (a context comparison) */
    int *stage_from;             /* the stage whose winner it starts from (select.from), or -1 */
    ls_report_es *stage_es;      /* each stage's early stopping (type NONE without, or without the grid) */
    char estimate_note[512];     /* why a run to the end could not be estimated ("" it could) */
    int n_started;               /* stages 0..n_started-1 have trials in the file */
    int have_journal;            /* 1 when the journal was read */
    char journal_note[512];      /* why it was not, or what replay said ("" nothing) */
    char lock_owner[256];        /* "job J pid P host H" of the sweep writing it now ("" none) */
    int n_trials;
    ls_report_trial *trials;     /* in file order */
    struct ls_results *res;      /* the file, open read only until ls_report_free: series are read
                                  * from it one trial at a time (ls_report_load_curves) */
    int counts[6];               /* by ls_result_status (stopped: early stopping) */
    int interrupted;             /* running trials with no live sweep */
    const ls_config_key *varying[LS_REPORT_MAX_VARYING]; /* keys besides lr, rank, ctx and steps whose
                                  * values differ between trials (a stage's lora.alpha axis): shown too */
    int n_varying;
    int best;                    /* the best trained configuration's representative trial, -1 */
    int baseline;                /* index of the untrained baseline, -1 */
    /* configurations: the best is the trained one with the lowest mean final validation loss among
     * those complete (all repeats done; failing that, among those with a done repeat) */
    int n_configs;
    ls_report_config *configs;   /* by stage, then by their first trial in the file */
    int best_config, baseline_config; /* into configs, -1 */
    int repeated;                /* some stage of the grid has repeats */
    int have_grid;               /* the file's grid text parsed: stage repeats are known */
    ls_grid grid;
} ls_report;

/* Read everything of a results file (and its journal when present). LS_ERR with one line for a
 * missing file, a file that is not a lorasweep results file, or one that cannot be read. */
int ls_report_load(const char *path, ls_report *rep);
void ls_report_free(ls_report *rep);

/* Index of the stage named name, or -1. */
int ls_report_stage_find(const ls_report *rep, const char *name);

/* Read trial i's curves (training loss, validation points) or forecast from the file; LS_OK at
 * once when already read. ls_report_unload frees both again (figures read, draw, unload). */
int ls_report_load_curves(ls_report *rep, int i);
int ls_report_load_forecast(ls_report *rep, int i);
void ls_report_unload(ls_report *rep, int i);

/* Trials of stage s not yet ended (pending or running): while there are any, stage s hands on no
 * winner and the stages that select from it wait. */
int ls_report_stage_unfinished(const ls_report *rep, int s);

/* Stage s's trials' FLOPS against the same trials all run to the end (0: the stage has no early
 * stopping; then *out is zero). */
int ls_report_stage_savings(const ls_report *rep, int s, ls_report_savings *out);

/* A varying key's value in trial t, for a table cell or a legend ("8.0", "[q_proj, v_proj]"). */
void ls_report_value(const ls_report_trial *t, const ls_config_key *key, char *buf, size_t cap);

/* Whether a trial is shown when the report is limited to one stage (stage < 0: every trial). */
static inline int ls_report_shows(const ls_report_trial *t, int stage) { return stage < 0 || t->stage == stage; }

/* The whole report (trial table, configurations over their repeats when the grid has repeats,
 * context comparison, FLOPS against the budget, best vs the untrained baseline, failed and
 * skipped trials) in a format; stage < 0 shows every stage. */
int ls_report_print(FILE *out, const ls_report *rep, ls_report_format fmt, int stage);

/* One CSV row per configuration (mean, standard deviation and n over its repeats) instead of one
 * per trial; stage < 0: every stage. */
int ls_report_print_configs_csv(FILE *out, const ls_report *rep, int stage);

typedef struct {
    int stage;                   /* -1: every stage */
    const char *trial_id;        /* forecast figure of this trial (hex id or a prefix); NULL: the best */
    int systems[16];             /* data set indices to draw; n_systems 0: the first three forecast */
    int n_systems;
} ls_report_plot_options;

/* Check the options against the file before anything is printed: --trial names one trial
 * that has a forecast, --systems are systems it forecast. LS_ERR with one line otherwise. */
int ls_report_plot_check(ls_report *rep, const ls_report_plot_options *opt);

/* Write the figures into dir (created when missing) as PNG + SVG and print one line per figure
 * ("  loss curves: DIR/loss_curves.png (.svg)") to `log`, or why one was left out. */
int ls_report_plots(ls_report *rep, const char *dir, const ls_report_plot_options *opt, FILE *log);

#endif
