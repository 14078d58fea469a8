/*
 * cmd_data_gen.c: `lorasweep data generate` (simulate systems into an HDF5 file) and
 * `lorasweep data info` (shapes, types and statistics of a data file, as text or JSON).
 * The work is in src/data.c; this file parses options and prints.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/data.h"

/* ---------------------------------------------------------------- generate */

#define GEN "data generate"

static void print_generate_help(void) {
    ls_lv_config d = ls_lv_config_default(), c = ls_lv_config_course();
    printf("usage: lorasweep data generate --out FILE [--systems N] [--steps N] [--seed S]\n"
           "                               [--t-end T] [--model classic|course]\n"
           "\n"
           "Simulates Lotka-Volterra systems with GSL's rk8pd solver and writes them as HDF5:\n"
           "/trajectories float32 (systems, steps, 2), /time, and the drawn /params and /initial.\n"
           "The file is written beside FILE under a temporary name and renamed, so a failed run\n"
           "leaves an existing FILE as it was. FILE's directory is created when it is missing.\n"
           "\n"
           "  --out FILE       the HDF5 file to write (required)\n"
           "  --systems N      number of systems (default %d)\n"
           "  --steps N        time points per system, both ends included (default %d)\n"
           "  --seed S         seed of the parameter draws (default %llu)\n"
           "  --t-end T        time runs from 0 to T (default %g)\n"
           "  --model M        classic: dx/dt = alpha x - beta x y, dy/dt = delta x y - gamma y,\n"
           "                     alpha [%g, %g], beta [%g, %g], gamma [%g, %g], delta [%g, %g] (default)\n"
           "                   course: the saturating model the course data set was made with,\n"
           "                     logistic prey (K [%g, %g]) and Holling type II predation (h [%g, %g]);\n"
           "                     see docs/data.md\n"
           "  -h, --help       this help\n",
           d.systems, d.steps, (unsigned long long)d.seed, d.t_end, d.alpha_min, d.alpha_max, d.beta_min, d.beta_max,
           d.gamma_min, d.gamma_max, d.delta_min, d.delta_max, c.k_min, c.k_max, c.h_min, c.h_max);
}

int cmd_data_generate(int argc, char **argv) {
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},   {"systems", required_argument, NULL, 'S'},
        {"steps", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
        {"t-end", required_argument, NULL, 't'}, {"model", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    ls_lv_config cfg = ls_lv_config_default();
    const char *out = NULL, *model = "classic";
    long systems = -1, steps = -1, seed = -1;
    double t_end = -1.0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'S':
            if ((rc = cli_long(GEN, "systems", optarg, 1, 10000000L, &systems))) return rc;
            break;
        case 'n':
            if ((rc = cli_long(GEN, "steps", optarg, 2, 1000000L, &steps))) return rc;
            break;
        case 's':
            if ((rc = cli_long(GEN, "seed", optarg, 0, LONG_MAX, &seed))) return rc;
            break;
        case 't':
            if ((rc = cli_double(GEN, "t-end", optarg, 1e-9, 1e6, &t_end))) return rc;
            break;
        case 'm':
            if (strcmp(optarg, "classic") && strcmp(optarg, "course"))
                return cli_usage_error(GEN, "--model must be 'classic' or 'course', got '%s'", optarg);
            model = optarg;
            break;
        case 'h': print_generate_help(); return CLI_EXIT_OK;
        default: return cli_bad_option(GEN, argv);
        }
    }
    if (optind < argc) return cli_usage_error(GEN, "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error(GEN, "--out FILE is required");
    if (!out[0]) return cli_usage_error(GEN, "--out needs a file name");

    if (!strcmp(model, "course")) cfg = ls_lv_config_course();
    if (systems > 0) cfg.systems = (int)systems;
    if (steps > 0) cfg.steps = (int)steps;
    if (seed >= 0) cfg.seed = (uint64_t)seed;
    if (t_end > 0.0) cfg.t_end = t_end;
    if (ls_lv_config_check(&cfg) != LS_OK) return cli_usage_error(GEN, "%s", ls_last_error());

    double t0 = ls_now();
    ls_dataset ds;
    if (ls_lv_generate(&cfg, &ds) != LS_OK) return cli_fail();
    /* the file's directory is created as needed, as other commands create theirs */
    const char *slash = strrchr(out, '/');
    char *dir = slash && slash != out ? ls_strdup(out) : NULL;
    if (dir) dir[slash - out] = '\0';
    rc = (!dir || ls_mkdirs(dir) == LS_OK) && ls_dataset_write(out, &ds) == LS_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    free(dir);
    if (rc == CLI_EXIT_OK)
        printf("%s: %d systems x %d steps, t 0..%g, %s model, seed %llu (%.2f s)\n", out, ds.systems, ds.steps,
               cfg.t_end, model, (unsigned long long)cfg.seed, ls_now() - t0);
    else
        cli_fail();
    ls_dataset_free(&ds);
    return rc;
}

/* ---------------------------------------------------------------- info */

#define INFO "data info"

static const char *const dataset_names[] = {"/trajectories", "/time", "/params", "/initial", "/saturation"};
static const char *const var_labels[LS_LV_VARS] = {"prey", "predator"};

static void print_info_help(void) {
    printf("usage: lorasweep data info FILE [--json]\n"
           "\n"
           "Checks a data file as training would read it, then prints its datasets (type and\n"
           "shape), the time range, statistics per variable over all systems and steps (min, max,\n"
           "mean, 50th and 99th percentile, and the worst-1%% peak: the 99th percentile of the\n"
           "systems' highest values) and the ranges of the stored parameters.\n"
           "\n"
           "  --json       print one JSON object instead of text\n"
           "  -h, --help   this help\n");
}

/* The spacing of the time points, or NAN when they are not equally spaced. */
static double time_step(const ls_dataset *ds) {
    double step = (ds->time[ds->steps - 1] - ds->time[0]) / (double)(ds->steps - 1);
    for (int i = 1; i < ds->steps; i++)
        if (fabs(ds->time[i] - ds->time[i - 1] - step) > 1e-9 * fmax(1.0, fabs(step))) return NAN;
    return step;
}

/* Column c's range of a (S, cols) table. */
static void column_range(const double *a, int rows, int cols, int c, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int r = 0; r < rows; r++) {
        double v = a[(size_t)r * (size_t)cols + (size_t)c];
        *lo = fmin(*lo, v), *hi = fmax(*hi, v);
    }
}

typedef struct {
    const char *name;
    const double *table;
    int cols, col;
} param_column;

/* The columns of params, initial and saturation that the file has; returns how many. */
static int param_columns(const ls_dataset *ds, param_column *pc) {
    static const char *const pnames[] = {"alpha", "beta", "gamma", "delta"};
    static const char *const inames[] = {"x0", "y0"};
    static const char *const snames[] = {"K", "h"};
    int n = 0;
    for (int i = 0; ds->params && i < 4; i++) pc[n++] = (param_column){pnames[i], ds->params, 4, i};
    for (int i = 0; ds->initial && i < 2; i++) pc[n++] = (param_column){inames[i], ds->initial, 2, i};
    for (int i = 0; ds->saturation && i < 2; i++) pc[n++] = (param_column){snames[i], ds->saturation, 2, i};
    return n;
}

static void print_info_text(const char *path, const ls_dataset *ds, const ls_h5_layout *lay, const ls_var_stats *st) {
    /* the file's own text, and its name, escaped: a control byte must not reach the terminal */
    char *name = ls_escape_controls(path), *source = ds->source ? ls_escape_controls(ds->source) : NULL;
    printf("file          %s\n", name);
    if (source) printf("source        %s\n", source);
    free(name);
    free(source);
    printf("systems       %d\nsteps         %d\n", ds->systems, ds->steps);
    for (int d = 0; d < 5; d++) {
        if (!lay[d].dtype[0]) continue;
        char shape[128];
        size_t len = (size_t)snprintf(shape, sizeof shape, "(");
        for (int i = 0; i < lay[d].rank && len < sizeof shape; i++)
            len += (size_t)snprintf(shape + len, sizeof shape - len, i ? ", %llu" : "%llu",
                                    (unsigned long long)lay[d].dims[i]);
        if (len < sizeof shape) snprintf(shape + len, sizeof shape - len, ")");
        printf("%-13s %s %s\n", dataset_names[d] + 1, lay[d].dtype, shape);
    }
    double step = time_step(ds);
    if (isnan(step))
        printf("time range    %g .. %g, unequal steps\n", ds->time[0], ds->time[ds->steps - 1]);
    else
        printf("time range    %g .. %g, step %.9g\n", ds->time[0], ds->time[ds->steps - 1], step);
    printf("\n%-9s %11s %11s %11s %11s %11s %14s\n", "variable", "min", "max", "mean", "p50", "p99", "worst-1% peak");
    for (int v = 0; v < LS_LV_VARS; v++)
        printf("%-9s %11.6g %11.6g %11.6g %11.6g %11.6g %14.6g\n", var_labels[v], st[v].min, st[v].max, st[v].mean,
               st[v].p50, st[v].p99, st[v].peak_p99);
    param_column pc[8];
    int n = param_columns(ds, pc);
    if (n) printf("\n%-9s %11s %11s\n", "parameter", "min", "max");
    for (int i = 0; i < n; i++) {
        double lo, hi;
        column_range(pc[i].table, ds->systems, pc[i].cols, pc[i].col, &lo, &hi);
        printf("%-9s %11.6g %11.6g\n", pc[i].name, lo, hi);
    }
}

static int print_info_json(const char *path, const ls_dataset *ds, const ls_h5_layout *lay, const ls_var_stats *st) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    if (ds->source) cJSON_AddStringToObject(root, "source", ds->source);
    cJSON_AddNumberToObject(root, "systems", ds->systems);
    cJSON_AddNumberToObject(root, "steps", ds->steps);
    cJSON *sets = cJSON_AddObjectToObject(root, "datasets");
    for (int d = 0; d < 5; d++) {
        if (!lay[d].dtype[0]) continue;
        cJSON *o = cJSON_AddObjectToObject(sets, dataset_names[d] + 1);
        cJSON_AddStringToObject(o, "dtype", lay[d].dtype);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int i = 0; i < lay[d].rank; i++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)lay[d].dims[i]));
    }
    cJSON *time = cJSON_AddObjectToObject(root, "time");
    cJSON_AddNumberToObject(time, "start", ds->time[0]);
    cJSON_AddNumberToObject(time, "end", ds->time[ds->steps - 1]);
    double step = time_step(ds);
    if (isnan(step))
        cJSON_AddNullToObject(time, "step");
    else
        cJSON_AddNumberToObject(time, "step", step);
    cJSON *vars = cJSON_AddObjectToObject(root, "variables");
    for (int v = 0; v < LS_LV_VARS; v++) {
        cJSON *o = cJSON_AddObjectToObject(vars, var_labels[v]);
        cJSON_AddNumberToObject(o, "min", st[v].min);
        cJSON_AddNumberToObject(o, "max", st[v].max);
        cJSON_AddNumberToObject(o, "mean", st[v].mean);
        cJSON_AddNumberToObject(o, "p50", st[v].p50);
        cJSON_AddNumberToObject(o, "p99", st[v].p99);
        cJSON_AddNumberToObject(o, "peak_p99", st[v].peak_p99);
    }
    param_column pc[8];
    int n = param_columns(ds, pc);
    if (n) {
        cJSON *params = cJSON_AddObjectToObject(root, "params");
        for (int i = 0; i < n; i++) {
            double lo, hi;
            column_range(pc[i].table, ds->systems, pc[i].cols, pc[i].col, &lo, &hi);
            cJSON *o = cJSON_AddObjectToObject(params, pc[i].name);
            cJSON_AddNumberToObject(o, "min", lo);
            cJSON_AddNumberToObject(o, "max", hi);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    int ok = text && puts(text) >= 0;
    free(text);
    return ok ? LS_OK : ls_error("cannot write to standard output");
}

int cmd_data_info(int argc, char **argv) {
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, json = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': print_info_help(); return CLI_EXIT_OK;
        default: return cli_bad_option(INFO, argv);
        }
    }
    if (optind >= argc) return cli_usage_error(INFO, "a data FILE is required");
    if (optind + 1 < argc) return cli_usage_error(INFO, "unexpected argument '%s'", argv[optind + 1]);
    const char *path = argv[optind];

    ls_dataset ds;
    if (ls_dataset_read(path, &ds) != LS_OK) return cli_fail();
    int rc = LS_OK;
    ls_h5_layout lay[5];
    for (int d = 0; d < 5 && rc == LS_OK; d++)
        if (ls_dataset_layout(path, dataset_names[d], &lay[d]) < 0) rc = LS_ERR;
    ls_var_stats st[LS_LV_VARS];
    for (int v = 0; v < LS_LV_VARS; v++) ls_dataset_stats(&ds, v, &st[v]);
    if (rc == LS_OK) {
        if (json)
            rc = print_info_json(path, &ds, lay, st);
        else
            print_info_text(path, &ds, lay, st);
    }
    if (rc == LS_OK && fflush(stdout) != 0) rc = ls_error("cannot write to standard output");
    ls_dataset_free(&ds);
    return rc == LS_OK ? CLI_EXIT_OK : cli_fail();
}
