/*
 * data.h: Lotka-Volterra data sets: read and validate, simulate, write, describe, split.
 *
 * A data set is the course's HDF5 layout:
 *   /trajectories  float32 (S, N, 2)   [..,0] prey, [..,1] predator
 *   /time          float64 (N)         t from 0 to 200
 * Files made by `lorasweep data generate` also hold the drawn parameters:
 *   /params        float64 (S, 4)      alpha, beta, gamma, delta
 *   /initial       float64 (S, 2)      x0, y0
 *   /saturation    float64 (S, 2)      K, h   (only for the saturating model, see below)
 * and a string attribute "columns" on each dataset, "source" on the root (how it was made).
 * Dimension letters: S systems, N time steps, V variables (always 2).
 *
 * The model (docs/data.md):
 *   dx/dt = alpha x (1 - x/K) - beta x y / (1 + h x)     x prey
 *   dy/dt = delta x y / (1 + h x) - gamma y              y predator
 * With K = 0 (read: no carrying capacity) and h = 0 it is the classic Lotka-Volterra system.
 * The course set was made by the saturating form (Rosenzweig-MacArthur): its oscillations damp
 * towards an equilibrium; ls_lv_config_course() reproduces it, ls_lv_config_default() is classic.
 */
#ifndef LORASWEEP_DATA_H
#define LORASWEEP_DATA_H

#include <stddef.h>
#include <stdint.h>

enum { LS_LV_VARS = 2 };

typedef struct {
    int systems;      /* S */
    int steps;        /* N */
    float *traj;      /* (S, N, 2) row-major: traj[(s*N + n)*2 + v] */
    double *time;     /* (N) */
    double *params;   /* (S, 4) alpha beta gamma delta, or NULL when the file has none */
    double *initial;  /* (S, 2) x0 y0, or NULL */
    double *saturation; /* (S, 2) K h (0 = term off), or NULL for the classic model */
    char *source;     /* how the data was made (root attribute "source"), or NULL */
} ls_dataset;

/* Read a data file and check it: both datasets present, floating-point, the right ranks and
 * matching lengths, every value finite, time increasing and no population negative; /params,
 * /initial and /saturation are read when present (right shapes, finite). On failure returns LS_ERR
 * with a message naming the file and the problem (and, for bad values, the system and step). */
int ls_dataset_read(const char *path, ls_dataset *out);
/* Write a data set in the layout above (params/initial/saturation/source only if non-NULL).
 * Writes a temporary file beside path and renames it over path, so a failed write leaves an
 * existing file as it was. Checks the data as ls_dataset_read would before writing. */
int ls_dataset_write(const char *path, const ls_dataset *ds);
void ls_dataset_free(ls_dataset *ds);

/* HDF5 objects (files, groups, datasets, attributes, types) this process still has open, in any
 * file; names (up to cap bytes, "" if none) lists the first of them. Every function of the data,
 * results and report modules closes what it opens, so this is 0 after they return: the tests and
 * sanitizer builds check it (HDF5's memory is otherwise hidden from the leak checker). */
int ls_hdf5_open_objects(char *names, size_t cap);

/* The identity of a data file: 64-bit FNV-1a of its bytes. A trial records it in its checkpoint
 * and metrics.json and refuses to resume from a checkpoint made from other bytes; a sweep records
 * it in its results file (ls_results_file_checksum is this). LS_ERR with a message if the path is
 * not a regular readable file. */
int ls_data_file_checksum(const char *path, uint64_t *out);
/* How a checksum is written in files: "fnv1a64:<16 hex digits>" (buf of at least 25 bytes). */
void ls_data_checksum_text(uint64_t checksum, char *buf, size_t cap);
/* The reverse; LS_ERR (no message) for anything else. */
int ls_data_checksum_parse(const char *text, uint64_t *out);

/* Ranges of the simulated systems: each parameter and initial value is drawn uniformly in
 * [min, max] per system, in the order alpha, beta, gamma, delta (or eff), x0, y0, then K and h
 * when their ranges are set. A range of 0..0 for K, h or eff switches that term off. */
typedef struct {
    int systems, steps;
    double t_end;                       /* time runs 0..t_end in `steps` equal points */
    uint64_t seed;                      /* mt19937 takes 32 bits: the high half is xor-folded in */
    double alpha_min, alpha_max, beta_min, beta_max;
    double gamma_min, gamma_max, delta_min, delta_max;
    double x0_min, x0_max, y0_min, y0_max;
    double k_min, k_max;                /* prey carrying capacity K; 0..0: none (classic) */
    double h_min, h_max;                /* predator handling time h; 0..0: linear response */
    double eff_min, eff_max;            /* when set, delta = eff * beta and delta_min/max unused */
} ls_lv_config;

/* Classic Lotka-Volterra, ranges from the course brief (delta_min raised to 0.06, see
 * docs/data.md), 1000 systems x 100 steps over t 0..200, seed 42. */
ls_lv_config ls_lv_config_default(void);
/* The saturating model with the ranges recovered from the course set (docs/data.md). */
ls_lv_config ls_lv_config_course(void);
/* Check a config; LS_ERR with a message naming the bad field. */
int ls_lv_config_check(const ls_lv_config *cfg);
/* Simulate with GSL's adaptive ODE solver (rk8pd, relative tolerance 1e-10); the same config
 * and seed give the same data. Fills params, initial, saturation (when K or h is on), source. */
int ls_lv_generate(const ls_lv_config *cfg, ls_dataset *out);

/* One system's parameters; k = 0 means no carrying capacity, h = 0 a linear response. */
typedef struct {
    double alpha, beta, gamma, delta, k, h, x0, y0;
} ls_lv_system;
/* Integrate one system in double precision at `steps` equal points of 0..t_end into
 * out (N, 2). LS_ERR if the solver fails or a value is not finite. */
int ls_lv_solve(const ls_lv_system *sys, double t_end, int steps, double *out);

/* Summary of one variable (0 prey, 1 predator) over all systems and steps. Percentiles are
 * linear between order statistics (numpy's default); peak_p99 is the 99th percentile of the
 * systems' peaks (max over steps): how high the worst 1% of systems go. */
typedef struct {
    double min, max, mean, p50, p99, peak_p99;
} ls_var_stats;
void ls_dataset_stats(const ls_dataset *ds, int var, ls_var_stats *out);

/* How a dataset is stored in a file: element type ("float32", "float64", "int64", "string", ...)
 * and shape. Returns 1 when present, 0 when absent, LS_ERR when the file cannot be read. */
typedef struct {
    char dtype[16];
    int rank;
    uint64_t dims[8];
} ls_h5_layout;
int ls_dataset_layout(const char *path, const char *name, ls_h5_layout *out);

/* Train / validation / test system indices, as the course split them: the first test_count
 * systems are the test set; the rest are shuffled with `seed` and cut val_fraction / rest. */
typedef struct {
    int *train, *val, *test; /* system indices, each sorted ascending */
    int n_train, n_val, n_test;
} ls_split;

/* n_val = round(val_fraction * (systems - test_count)). LS_ERR for systems < 1, test_count
 * outside 0..systems-1, val_fraction outside [0, 1), or no system left for training. */
int ls_split_make(int systems, int test_count, double val_fraction, uint64_t seed, ls_split *out);
void ls_split_free(ls_split *sp);

#endif
