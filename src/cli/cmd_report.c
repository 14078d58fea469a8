/* cmd_report.c: `lorasweep report RESULTS.h5`: tables and figures of a sweep (report.c). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/report.h"

static const char usage[] =
    "usage: lorasweep report RESULTS.h5 [--format table|md|csv|json] [--plots DIR] [--stage NAME]\n"
    "                        [--trial ID] [--systems I,J,K] [--out FILE] [--configurations]\n"
    "\n"
    "Tables and figures of a sweep's results file (docs/analysis.md): every trial sorted by final\n"
    "validation loss, the context-length comparison, FLOPS of each trial and of the sweep against\n"
    "its budget, the best configuration beside the untrained baseline, failed and skipped trials;\n"
    "with repeats (a grid's `repeats:`), each configuration's mean, standard deviation and n.\n"
    "A file that a sweep is still writing, or that an interrupted sweep left, is reported as far\n"
    "as it goes, with what is unfinished marked.\n"
    "  --format F     table (default), md (markdown), csv (one row per trial), json (for programs)\n"
    "  --plots DIR    also draw the figures into DIR (PNG and SVG): loss curves, validation loss\n"
    "                 over lr x rank, forecasts, FLOPS against validation loss\n"
    "  --stage NAME   only the trials of this stage\n"
    "  --trial ID     forecasts of this trial (id or a unique prefix; default: the best)\n"
    "  --systems L    data set indices of the systems to draw (default: the first three forecast)\n"
    "  --out FILE     write the report to FILE instead of standard output\n"
    "  --configurations  with --format csv: one row per configuration (mean, std and n over its\n"
    "                 repeats) instead of one per trial\n"
    "Exit status: 0 reported, 1 the file is not a readable results file, 2 bad command line.\n";

static int parse_systems(const char *arg, ls_report_plot_options *opt) {
    char *copy = ls_strdup(arg), *save = NULL;
    int rc = CLI_EXIT_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == CLI_EXIT_OK; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (opt->n_systems == (int)(sizeof opt->systems / sizeof *opt->systems))
            rc = cli_usage_error("report", "--systems: at most %zu systems", sizeof opt->systems / sizeof *opt->systems);
        else if (cli_long("report", "systems", tok, 0, 100000000, &v)) rc = CLI_EXIT_USAGE;
        else opt->systems[opt->n_systems++] = (int)v;
    }
    if (rc == CLI_EXIT_OK && opt->n_systems == 0) rc = cli_usage_error("report", "--systems: no system given");
    free(copy);
    return rc;
}

static int print_report(FILE *out, const ls_report *rep, ls_report_format fmt, int stage, int by_config) {
    return by_config ? ls_report_print_configs_csv(out, rep, stage) : ls_report_print(out, rep, fmt, stage);
}

/* The report into a memory buffer, then to stdout or atomically into --out. */
static int emit(const ls_report *rep, ls_report_format fmt, int stage, int by_config, const char *out_path) {
    if (!out_path) return print_report(stdout, rep, fmt, stage, by_config);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return ls_error("cannot buffer the report");
    int rc = print_report(mem, rep, fmt, stage, by_config);
    fclose(mem);
    if (rc == LS_OK) rc = ls_write_file_atomic(out_path, buf, len);
    free(buf);
    return rc;
}

int cmd_report(int argc, char **argv) {
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'}, {"plots", required_argument, 0, 'p'},
        {"stage", required_argument, 0, 's'},  {"trial", required_argument, 0, 't'},
        {"systems", required_argument, 0, 'y'}, {"out", required_argument, 0, 'o'},
        {"configurations", no_argument, 0, 'c'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    ls_report_format fmt = LS_REPORT_TABLE;
    ls_report_plot_options popt = {.stage = -1};
    const char *plots = NULL, *stage_name = NULL, *out_path = NULL;
    int c, by_config = 0;
    while ((c = getopt_long(argc, argv, ":f:p:s:t:y:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (ls_report_format_parse(optarg, &fmt) != LS_OK) return cli_usage_error("report", "%s", ls_last_error());
            break;
        case 'p': plots = optarg; break;
        case 's': stage_name = optarg; break;
        case 't':
            if (!*optarg || strspn(optarg, "0123456789abcdefABCDEF") != strlen(optarg) || strlen(optarg) > 16)
                return cli_usage_error("report", "--trial: '%s' is not a trial id (up to 16 hex digits)", optarg);
            popt.trial_id = optarg;
            break;
        case 'y':
            if (parse_systems(optarg, &popt) != CLI_EXIT_OK) return CLI_EXIT_USAGE;
            break;
        case 'o': out_path = optarg; break;
        case 'c': by_config = 1; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("report", argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("report", optind == argc ? "RESULTS.h5 is required" : "one RESULTS.h5 only");
    if (by_config && fmt != LS_REPORT_CSV)
        return cli_usage_error("report", "--configurations is for --format csv (the table, markdown and JSON have "
                               "the configurations already)");

    /* the results file is parallel HDF5: a serial reader is an MPI program of one rank */
    int mpi_was_up = 0;
    MPI_Initialized(&mpi_was_up);
    if (!mpi_was_up) MPI_Init(NULL, NULL);
    ls_report rep;
    int status = CLI_EXIT_OK;
    if (ls_report_load(argv[optind], &rep) != LS_OK) {
        status = cli_fail();
    } else {
        int stage = -1;
        if (stage_name && (stage = ls_report_stage_find(&rep, stage_name)) < 0) {
            char names[512] = "";
            for (int s = 0; s < rep.n_stages; s++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", s ? ", " : "", rep.stage_names[s]);
            status = cli_usage_error("report", "--stage %s: %s has no such stage (its stages: %s)", stage_name,
                                     argv[optind], names);
        }
        popt.stage = stage;
        if (status == CLI_EXIT_OK && plots && ls_report_plot_check(&rep, &popt) != LS_OK) status = cli_fail();
        if (status == CLI_EXIT_OK && emit(&rep, fmt, stage, by_config, out_path) != LS_OK) status = cli_fail();
        /* figures after the tables; their list goes where it cannot corrupt machine-readable output */
        FILE *log = fmt == LS_REPORT_TABLE || fmt == LS_REPORT_MARKDOWN ? (out_path ? stderr : stdout) : stderr;
        if (status == CLI_EXIT_OK && plots) {
            fputc('\n', log);
            if (ls_report_plots(&rep, plots, &popt, log) != LS_OK) status = cli_fail();
        }
        ls_report_free(&rep);
    }
    if (!mpi_was_up) MPI_Finalize();
    return status;
}
