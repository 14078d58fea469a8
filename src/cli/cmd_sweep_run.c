/* cmd_sweep_run.c: `lorasweep sweep run GRID.yaml` under mpirun (the sweep itself: sweep_run.c),
 * or with --ranks N, which starts mpirun itself and turns Ctrl-C into a clean stop. */
#define _GNU_SOURCE /* setpgid, sigaction under -std=c11 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/sweep.h"

static const char usage[] =
    "usage: mpirun -np N lorasweep sweep run GRID.yaml [options]\n"
    "       lorasweep sweep run GRID.yaml --ranks N [options]      (starts mpirun itself)\n"
    "\n"
    "Runs the sweep a grid file describes (docs/sweep.md): rank 0 schedules, ranks 1..N-1 each run\n"
    "one trial at a time (one GPU each when there are GPUs, else their share of the cores).\n"
    "Results go to RESULTS.h5 (default results/<grid name>.h5) with its journal beside it; each\n"
    "trial's files to RESULTS.trials/<id>/. Running the same command again resumes: finished\n"
    "trials are kept, interrupted ones continue from their checkpoints.\n"
    "  --out FILE     the results file\n"
    "  --walltime S   this run's time limit: a trial or rung segment starts only when the time\n"
    "                 model (measured on every earlier run, kept in the journal) says it ends\n"
    "                 before it; when nothing fits, or at S, everything is checkpointed and the\n"
    "                 run exits 3 (the batch script requeues). Under Slurm without --walltime,\n"
    "                 the job's end (SLURM_JOB_END_TIME) less --stop-margin\n"
    "  --stop-margin S  under Slurm: stop this long before the job's end (default 120)\n"
    "  --retry-failed run the trials that failed again (each run is a new attempt)\n"
    "  --hang-timeout S  a worker silent for S seconds while it runs a trial is hung: the others\n"
    "                 checkpoint and the job ends with exit status 5 (default 1800; 0: never)\n"
    "  --ranks N      run mpirun -np N here (N >= 2); Ctrl-C then stops cleanly (exit 3), a\n"
    "                 second Ctrl-C aborts. Under a plain mpirun, Ctrl-C makes mpirun exit 1\n"
    "                 whatever the sweep did: stop it with kill -USR1 MPIRUN_PID instead\n"
    "  --quiet        only the summary line\n"
    "Exit status: 0 all done, 1 some trials failed, 2 bad command line, 3 stopped (run again),\n"
    "4 stopped by a fault of the machine (a full disk: one line names it), 5 a worker hung.\n"
    "As root, Open MPI needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; with more\n"
    "ranks than cores, mpirun --oversubscribe (--ranks adds it itself).\n";

/* Under a launcher already (mpirun, srun): then --ranks has nothing to start. */
static int under_mpi_launcher(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

static volatile sig_atomic_t stop_requests;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requests++;
}

/* --ranks N: mpirun -np N <this program> sweep run ..., in its own process group so that a
 * terminal's Ctrl-C reaches this process only. The first SIGINT/SIGTERM/SIGHUP becomes SIGUSR1 to
 * mpirun, which forwards it to every rank: the sweep checkpoints and exits 3 (mpirun itself
 * answers SIGINT by killing the job and exiting 1). A second one is passed on as SIGINT: abort. */
static int launch_mpirun(int ranks, char **sweep_args, int n_sweep_args) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return cli_usage_error("sweep run", "--ranks: cannot find this program's path: %s", strerror(errno));
    self[n] = '\0';
    char np[16];
    snprintf(np, sizeof np, "%d", ranks);
    char **argv = ls_calloc((size_t)n_sweep_args + 9, sizeof *argv);
    int a = 0;
    argv[a++] = "mpirun";
    argv[a++] = "--quiet"; /* not Open MPI's banner for a rank's exit 3: the sweep says why */
    if (ranks > sysconf(_SC_NPROCESSORS_ONLN)) argv[a++] = "--oversubscribe";
    argv[a++] = "-np", argv[a++] = np, argv[a++] = self, argv[a++] = "sweep", argv[a++] = "run";
    for (int i = 0; i < n_sweep_args; i++) argv[a++] = sweep_args[i];
    argv[a] = NULL;

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: waitpid returns EINTR and we act */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL), sigaction(SIGTERM, &sa, NULL), sigaction(SIGHUP, &sa, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        fprintf(stderr, "lorasweep: sweep run --ranks: fork: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL), signal(SIGTERM, SIG_DFL), signal(SIGHUP, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY); /* a background group must not read the terminal */
        if (devnull >= 0) dup2(devnull, 0), close(devnull);
        execvp("mpirun", argv);
        fprintf(stderr, "lorasweep: sweep run --ranks: cannot run mpirun: %s (install Open MPI, or start the "
                        "sweep with your cluster's launcher)\n", strerror(errno));
        _exit(CLI_EXIT_FAIL);
    }
    setpgid(pid, pid); /* also here: no window in which the child is still in our group */
    free(argv);
    int status = 0, forwarded = 0;
    for (;;) {
        if (stop_requests > forwarded) {
            if (forwarded == 0) {
                fprintf(stderr, "\nlorasweep: stopping: running trials checkpoint, then the sweep exits "
                                "(again to abort without checkpoints)\n");
                kill(pid, SIGUSR1);
            } else {
                kill(pid, SIGINT);
            }
            forwarded = stop_requests;
        }
        pid_t w = waitpid(pid, &status, 0);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "lorasweep: sweep run --ranks: waitpid: %s\n", strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int cmd_sweep_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"walltime", required_argument, 0, 'w'},
        {"quiet", no_argument, 0, 'q'},     {"retry-failed", no_argument, 0, 'r'},
        {"ranks", required_argument, 0, 'n'}, {"hang-timeout", required_argument, 0, 't'},
        {"stop-margin", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    ls_sweep_run_options opt = {0};
    opt.hang_timeout_s = 1800;
    opt.stop_margin_s = 120;
    long ranks = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:w:qrh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': opt.out_path = optarg; break;
        case 'w':
            if (cli_double("sweep run", "walltime", optarg, 1, 1e9, &opt.walltime_s)) return CLI_EXIT_USAGE;
            break;
        case 'm':
            if (cli_double("sweep run", "stop-margin", optarg, 0, 1e9, &opt.stop_margin_s)) return CLI_EXIT_USAGE;
            break;
        case 'q': opt.quiet = 1; break;
        case 'r': opt.retry_failed = 1; break;
        case 't':
            if (cli_double("sweep run", "hang-timeout", optarg, 0, 1e9, &opt.hang_timeout_s)) return CLI_EXIT_USAGE;
            break;
        case 'n':
            if (cli_long("sweep run", "ranks", optarg, 2, 100000, &ranks)) return CLI_EXIT_USAGE;
            break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("sweep run", argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("sweep run", optind == argc ? "GRID.yaml is required" : "one GRID.yaml only");
    opt.grid_path = argv[optind];
    if (ranks > 0) {
        if (under_mpi_launcher())
            return cli_usage_error("sweep run", "--ranks starts mpirun itself: drop it when running under mpirun or srun");
        /* the same arguments less --ranks: everything after the subcommand name */
        char **rest = ls_calloc((size_t)argc, sizeof *rest);
        int n_rest = 0;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--ranks")) { i++; continue; }
            if (!strncmp(argv[i], "--ranks=", 8)) continue;
            rest[n_rest++] = argv[i];
        }
        int rc = launch_mpirun((int)ranks, rest, n_rest);
        free(rest);
        return rc;
    }
    ls_sweep_place place;
    if (ls_sweep_mpi_init(&argc, &argv, &place) != LS_OK) return cli_fail();
    int status;
    if (place.size < 2) {
        fprintf(stderr, "lorasweep sweep run: needs 2 or more MPI ranks (rank 0 schedules, the others train): "
                        "mpirun -np 3 lorasweep sweep run %s, or lorasweep sweep run %s --ranks 3\n",
                opt.grid_path, opt.grid_path);
        status = CLI_EXIT_USAGE;
    } else {
        status = ls_sweep_run(&opt, &place);
    }
    ls_sweep_mpi_finalize();
    return status;
}
