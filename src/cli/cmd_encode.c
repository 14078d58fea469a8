/*
 * cmd_encode.c: `lorasweep data encode`: print one system of a data file as LLMTIME text.
 *
 * The text goes to stdout with one final newline, nothing else, so it can be piped into
 * `lorasweep tokenize`. `--alpha auto` uses the same rule as training (ls_llmtime_auto_alpha with
 * the 99th percentile and target 10) over the whole data set by default, or over the printed
 * steps of the one system with --alpha-scope system (no look at steps that are not printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/text.h"

#define CMD "data encode"

enum { AUTO_PCT = 99, AUTO_TARGET = 10 };

static void print_help(void) {
    printf("usage: lorasweep data encode --data FILE --system I [options]\n"
           "\n"
           "Print system I of a data file as LLMTIME text (\"1.900,2.081;1.481,1.559;...\"),\n"
           "followed by a newline. docs/encoding.md describes the scheme.\n"
           "\n"
           "options:\n"
           "  --data FILE            HDF5 data file (/trajectories (S, N, 2))\n"
           "  --system I             system index, 0..S-1\n"
           "  --alpha A|auto         divide values by A (> 0) before rounding; 'auto' (default):\n"
           "                         A = %dth percentile of the values / %d\n"
           "  --alpha-scope SCOPE    where 'auto' looks: 'dataset' (default, every value of the\n"
           "                         file) or 'system' (the printed steps of system I only)\n"
           "  --decimals D           digits after the decimal point, 0..%d (default 3)\n"
           "  --steps N              print only the first N steps (default all)\n"
           "  --verbose              print the chosen alpha to stderr\n"
           "  --help                 this text\n",
           AUTO_PCT, AUTO_TARGET, LS_LLMTIME_MAX_DECIMALS);
}

int cmd_data_encode(int argc, char **argv) {
    static const struct option options[] = {
        {"data", required_argument, NULL, 'd'},     {"system", required_argument, NULL, 's'},
        {"alpha", required_argument, NULL, 'a'},    {"alpha-scope", required_argument, NULL, 'S'},
        {"decimals", required_argument, NULL, 'D'}, {"steps", required_argument, NULL, 'n'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    long system = -1, decimals = 3, steps = -1;
    int alpha_auto = 1, scope_system = 0, verbose = 0;
    double alpha = 0.0;
    int c, rc, n;
    char *text = NULL;
    const float *series;
    ls_dataset ds;
    while ((c = getopt_long(argc, argv, ":hv", options, NULL)) != -1) {
        switch (c) {
        case 'd': path = optarg; break;
        case 's':
            if ((rc = cli_long(CMD, "system", optarg, 0, 2147483647L, &system))) return rc;
            break;
        case 'a':
            if (!strcmp(optarg, "auto")) {
                alpha_auto = 1;
                break;
            }
            if ((rc = cli_double(CMD, "alpha", optarg, -1e308, 1e308, &alpha))) return rc;
            if (!(alpha > 0.0)) return cli_usage_error(CMD, "--alpha must be > 0 or 'auto', got '%s'", optarg);
            alpha_auto = 0;
            break;
        case 'S':
            if (!strcmp(optarg, "dataset"))
                scope_system = 0;
            else if (!strcmp(optarg, "system"))
                scope_system = 1;
            else
                return cli_usage_error(CMD, "--alpha-scope must be 'dataset' or 'system', got '%s'", optarg);
            break;
        case 'D':
            if ((rc = cli_long(CMD, "decimals", optarg, 0, LS_LLMTIME_MAX_DECIMALS, &decimals))) return rc;
            break;
        case 'n':
            if ((rc = cli_long(CMD, "steps", optarg, 1, 2147483647L, &steps))) return rc;
            break;
        case 'v': verbose = 1; break;
        case 'h': print_help(); return CLI_EXIT_OK;
        default: return cli_bad_option(CMD, argv);
        }
    }
    if (optind < argc) return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!path) return cli_usage_error(CMD, "--data FILE is required");
    if (system < 0) return cli_usage_error(CMD, "--system I is required");

    memset(&ds, 0, sizeof ds);
    if (ls_dataset_read(path, &ds) != LS_OK) return cli_fail();
    rc = CLI_EXIT_FAIL;
    if (system >= ds.systems) {
        ls_error("%s: --system %ld is out of range: the file has %d systems (0..%d)", path, system,
                 ds.systems, ds.systems - 1);
        goto done;
    }
    if (steps > ds.steps) {
        ls_error("%s: --steps %ld is more than the %d steps of each system", path, steps, ds.steps);
        goto done;
    }
    n = steps > 0 ? (int)steps : ds.steps;
    series = ds.traj + (size_t)system * (size_t)ds.steps * LS_LV_VARS;
    if (alpha_auto) {
        if (scope_system)
            alpha = ls_llmtime_auto_alpha(series, (size_t)n * LS_LV_VARS, AUTO_PCT, AUTO_TARGET);
        else
            alpha = ls_llmtime_auto_alpha(ds.traj, (size_t)ds.systems * (size_t)ds.steps * LS_LV_VARS,
                                          AUTO_PCT, AUTO_TARGET);
    }
    if (verbose) {
        if (alpha_auto)
            fprintf(stderr, "alpha = %.9g (auto: %dth percentile / %d over the %s)\n", alpha, AUTO_PCT,
                    AUTO_TARGET, scope_system ? "system" : "data set");
        else
            fprintf(stderr, "alpha = %.9g (fixed)\n", alpha);
    }
    ls_llmtime enc = {alpha, (int)decimals};
    size_t len;
    text = ls_llmtime_encode(&enc, series, n, LS_LV_VARS, &len);
    if (!text) goto done;
    if (fwrite(text, 1, len, stdout) != len || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        ls_error("cannot write to standard output");
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_fail();
    free(text);
    ls_dataset_free(&ds);
    return rc;
}
