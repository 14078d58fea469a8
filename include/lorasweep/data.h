/*
 * data.h: Lotka-Volterra data sets: read and validate, simulate, write, describe, split.
 *
 * A data set is the course's HDF5 layout:
 *   /trajectories  float32 (S, N, 2)   [..,0] prey, [..,1] predator
 *   /time          float64 (N)         t from 0 to 200
 * Files made by `lorasweep data generate` also hold the drawn parameters:
 *   /params        float64 (S, 4)      alpha, beta, gamma, delta
 *   /initial       float64 (S, 2)      x0, y0
 * Dimension letters: S systems, N time steps, V variables (always 2).
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
} ls_dataset;

/* Read a data file and check it: both datasets present, floating-point, the right ranks and
 * matching lengths, every value finite and no population negative. On failure returns LS_ERR
 * with a message naming the file and the problem (and, for bad values, the system and step). */
int ls_dataset_read(const char *path, ls_dataset *out);
/* Write a data set in the layout above (params/initial only if non-NULL). Overwrites path. */
int ls_dataset_write(const char *path, const ls_dataset *ds);
void ls_dataset_free(ls_dataset *ds);

/* Ranges of the simulated systems: each parameter and initial value is drawn uniformly in
 * [min, max] per system. The defaults (ls_lv_config_default) are those fitted to the course set. */
typedef struct {
    int systems, steps;
    double t_end;                       /* time runs 0..t_end in `steps` equal points */
    uint64_t seed;
    double alpha_min, alpha_max, beta_min, beta_max;
    double gamma_min, gamma_max, delta_min, delta_max;
    double x0_min, x0_max, y0_min, y0_max;
} ls_lv_config;

ls_lv_config ls_lv_config_default(void);
/* Simulate with GSL's adaptive ODE solver; the same config and seed give the same data. */
int ls_lv_generate(const ls_lv_config *cfg, ls_dataset *out);

/* Train / validation / test system indices, as the course split them: the first test_count
 * systems are the test set; the rest are shuffled with `seed` and cut val_fraction / rest. */
typedef struct {
    int *train, *val, *test; /* system indices, each sorted ascending */
    int n_train, n_val, n_test;
} ls_split;

int ls_split_make(int systems, int test_count, double val_fraction, uint64_t seed, ls_split *out);
void ls_split_free(ls_split *sp);

#endif
