/* main.c: the lorasweep program, one binary with subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/backend.h"
#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/data.h"

static const cli_command commands[] = {
    {"data", cmd_data, "generate, inspect and encode Lotka-Volterra data sets"},
    {"tokenize", cmd_tokenize, "encode text to Qwen token ids, or decode ids to text"},
    {"config", cmd_config, "show, check and document trial configuration files"},
    {"model", cmd_model, "write a random checkpoint of a preset, or check and describe one"},
    {"flops", cmd_flops, "count the FLOPS of a training run and its evaluation"},
    {"score", cmd_score, "mean next-token loss of a model (+ adapter) over lines of text"},
    {"generate", cmd_generate, "continue a prompt with a model (+ adapter), greedy or sampled"},
    {"train", cmd_train, "train one trial (a YAML file): LoRA, validation, forecast, FLOPS"},
    {"eval", cmd_eval, "forecast the test systems with the base model or an adapter"},
    {"bench", cmd_bench, "time a training step against this machine's sgemm"},
    {"sweep", cmd_sweep, "plan (and run) a sweep of trials from a grid file"},
    {"report", cmd_report, "tables and plots of a sweep's results file"},
    {NULL, NULL, NULL},
};

/* LS_CHECK_HDF5=1 (the tests set it): HDF5 objects still open at exit are a leak of ours (a
 * missing close on some path), which LeakSanitizer cannot tell from HDF5's own memory. */
static void check_hdf5_at_exit(void) {
    char names[512];
    int n = ls_hdf5_open_objects(names, sizeof names);
    if (n > 0) {
        fprintf(stderr, "lorasweep: %d HDF5 object%s left open at exit: %s\n", n, n == 1 ? "" : "s", names);
        _exit(97);
    }
}

int main(int argc, char **argv) {
    if (getenv("LS_CHECK_HDF5")) { /* HDF5 first: its own exit handler (which closes all) must run after ours */
        ls_hdf5_open_objects(NULL, 0);
        atexit(check_hdf5_at_exit);
    }
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("lorasweep %s\n", LS_VERSION);
        return 0;
    }
    ls_cpu_threads_set(ls_thread_count(1)); /* the CPUs this process may use, not the machine's */
    return cli_dispatch("lorasweep", commands, argc, argv);
}
