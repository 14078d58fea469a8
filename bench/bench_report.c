/*
 * bench_report.c: how long `lorasweep report` takes on a big sweep. Writes a results file of N
 * finished trials (S steps of training loss each, 10 validations, a forecast of 10 systems x 20
 * steps) with the results API, then times reading it (ls_report_load), printing each format and
 * drawing the figures.
 *
 *   build/bench/bench_report [--trials N] [--steps S] [--dir DIR]
 */
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"
#include "lorasweep/report.h"
#include "lorasweep/results.h"

enum { SYSTEMS = 10, HORIZON = 20, EVALS = 10 };

static int make_file(const char *path, int n, int steps) {
    ls_results_meta meta = {"bench", "", 0xbe7c, "", 0, 0};
    ls_results *r;
    remove(path);
    if (ls_results_open(MPI_COMM_SELF, path, &meta, 0, &r, NULL) != LS_OK) return LS_ERR;
    ls_results_trial_spec *specs = ls_calloc((size_t)n, sizeof *specs);
    for (int i = 0; i < n; i++)
        specs[i] = (ls_results_trial_spec){.id = 0x1000 + (uint64_t)i, .stage = i % 3, .config_yaml = "train: {lr: 1e-4}\n",
                                           .lr = 1e-5 * (1 + i % 7), .lora_rank = 2 << (i % 3), .ctx = 128 << (i % 3),
                                           .batch_size = 4, .max_steps = steps, .max_evals = EVALS + 1,
                                           .forecast_systems = SYSTEMS, .forecast_steps = HORIZON};
    int rc = ls_results_add_trials(r, specs, n);
    float *loss = ls_malloc((size_t)steps * sizeof *loss), fc[SYSTEMS * HORIZON * 2];
    int sys[SYSTEMS], vstep[EVALS];
    float vloss[EVALS];
    for (int i = 0; i < n && rc == LS_OK; i++) {
        uint64_t id = 0x1000 + (uint64_t)i;
        for (int s = 0; s < steps; s++) loss[s] = (float)(2.0 + 1.0 / (1 + s * (1 + i % 5)));
        for (int e = 0; e < EVALS; e++) vstep[e] = (e + 1) * steps / EVALS, vloss[e] = loss[vstep[e] - 1];
        for (int k = 0; k < SYSTEMS * HORIZON * 2; k++) fc[k] = (float)(1 + k % 17);
        for (int k = 0; k < SYSTEMS; k++) sys[k] = k;
        ls_forecast f = {.n_systems = SYSTEMS, .steps = HORIZON, .system = sys, .mean = fc, .std = fc, .truth = fc};
        ls_result_metrics m;
        ls_result_metrics_init(&m);
        m.steps = steps, m.final_train_loss = loss[steps - 1], m.final_val_loss = vloss[EVALS - 1];
        for (int k = 0; k < 3; k++) m.mse[k] = m.mae[k] = 1 + i % 11;
        m.flops_total = 1e15 * (1 + i % 3);
        rc = ls_results_write_train_loss(r, id, 1, steps, loss);
        if (rc == LS_OK) rc = ls_results_write_evals(r, id, EVALS, vstep, vloss);
        if (rc == LS_OK) rc = ls_results_write_metrics(r, id, &m);
        if (rc == LS_OK) rc = ls_results_write_forecast(r, id, &f);
        if (rc == LS_OK) rc = ls_results_write_status(r, id, LS_RESULT_DONE, NULL);
    }
    free(loss);
    free(specs);
    if (ls_results_close(r) != LS_OK) rc = LS_ERR;
    return rc;
}

int main(int argc, char **argv) {
    int trials = 1000, steps = 500;
    const char *dir = "/tmp";
    static const struct option opts[] = {
        {"trials", required_argument, 0, 't'}, {"steps", required_argument, 0, 's'}, {"dir", required_argument, 0, 'd'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "t:s:d:", opts, NULL)) != -1) {
        if (c == 't') trials = atoi(optarg);
        else if (c == 's') steps = atoi(optarg);
        else if (c == 'd') dir = optarg;
        else {
            fprintf(stderr, "usage: bench_report [--trials N] [--steps S] [--dir DIR]\n");
            return 2;
        }
    }
    if (trials < 1 || steps < EVALS) {
        fprintf(stderr, "bench_report: --trials >= 1, --steps >= %d\n", EVALS);
        return 2;
    }
    MPI_Init(&argc, &argv);
    char path[4200], figs[4200];
    snprintf(path, sizeof path, "%s/bench_report.h5", dir);
    snprintf(figs, sizeof figs, "%s/bench_report_figs", dir);
    double t0 = ls_now();
    if (make_file(path, trials, steps) != LS_OK) {
        fprintf(stderr, "bench_report: %s\n", ls_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double t1 = ls_now();
    ls_report rep;
    if (ls_report_load(path, &rep) != LS_OK) {
        fprintf(stderr, "bench_report: %s\n", ls_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double t2 = ls_now();
    FILE *null = fopen("/dev/null", "w");
    double tf[4];
    for (int f = 0; f < 4; f++) {
        double a = ls_now();
        ls_report_print(null, &rep, (ls_report_format)f, -1);
        tf[f] = ls_now() - a;
    }
    ls_report_plot_options opt = {.stage = -1};
    double t3 = ls_now();
    int prc = ls_report_plots(&rep, figs, &opt, null);
    double t4 = ls_now();
    fclose(null);
    printf("results file: %d trials x %d steps written in %.2f s (%s)\n", trials, steps, t1 - t0, path);
    printf("load (every row, curve, forecast, config):  %8.3f s\n", t2 - t1);
    printf("print table / md / csv / json:               %8.3f / %.3f / %.3f / %.3f s\n", tf[0], tf[1], tf[2], tf[3]);
    printf("figures (4 x PNG + SVG):                     %8.3f s%s\n", t4 - t3, prc == LS_OK ? "" : " (failed)");
    ls_report_free(&rep);
    MPI_Finalize();
    return 0;
}
