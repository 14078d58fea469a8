/* cmd_sweep_run.c: `lorasweep sweep run GRID.yaml` under mpirun (the sweep itself: sweep_run.c). */
#include <stdio.h>
#include <string.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/sweep.h"

static const char usage[] =
    "usage: mpirun -np N lorasweep sweep run GRID.yaml [--out RESULTS.h5] [--walltime SECONDS] [--retry-failed] [--quiet]\n"
    "\n"
    "Runs the sweep a grid file describes (docs/sweep.md): rank 0 schedules, ranks 1..N-1 each run\n"
    "one trial at a time (one GPU each when there are GPUs, else their share of the cores).\n"
    "Results go to RESULTS.h5 (default results/<grid name>.h5) with its journal beside it; each\n"
    "trial's files to RESULTS.trials/<id>/. Running the same command again resumes: finished\n"
    "trials are kept, interrupted ones continue from their checkpoints.\n"
    "  --walltime S   stop handing out trials and checkpoint after S seconds (a batch job's limit)\n"
    "  --retry-failed run the trials that failed again (each run is a new attempt)\n"
    "  --quiet        only the summary line\n"
    "Exit status: 0 all done, 1 some trials failed, 2 bad command line, 3 stopped (run again).\n"
    "As root, Open MPI needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; with more\n"
    "ranks than cores, mpirun --oversubscribe.\n";

int cmd_sweep_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"walltime", required_argument, 0, 'w'},
        {"quiet", no_argument, 0, 'q'},     {"retry-failed", no_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    ls_sweep_run_options opt = {0};
    int c;
    while ((c = getopt_long(argc, argv, ":o:w:qrh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': opt.out_path = optarg; break;
        case 'w':
            if (cli_double("sweep run", "walltime", optarg, 1, 1e9, &opt.walltime_s)) return CLI_EXIT_USAGE;
            break;
        case 'q': opt.quiet = 1; break;
        case 'r': opt.retry_failed = 1; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("sweep run", argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("sweep run", optind == argc ? "GRID.yaml is required" : "one GRID.yaml only");
    opt.grid_path = argv[optind];
    ls_sweep_place place;
    if (ls_sweep_mpi_init(&argc, &argv, &place) != LS_OK) return cli_fail();
    int status;
    if (place.size < 2) {
        fprintf(stderr, "lorasweep sweep run: needs 2 or more MPI ranks (rank 0 schedules, the others train): "
                        "mpirun -np 3 lorasweep sweep run %s\n", opt.grid_path);
        status = CLI_EXIT_USAGE;
    } else {
        status = ls_sweep_run(&opt, &place);
    }
    ls_sweep_mpi_finalize();
    return status;
}
