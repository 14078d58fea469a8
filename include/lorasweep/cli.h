/*
 * cli.h: the command-line layer. Each subcommand is a function `int cmd_x(int argc, char **argv)`
 * that returns the process exit status; it parses its own options with getopt_long and prints
 * its --help. Errors reach the user as one line "lorasweep: ..." on stderr.
 */
#ifndef LORASWEEP_CLI_H
#define LORASWEEP_CLI_H

#include <getopt.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

/* Exit statuses: 0 success, 1 the work failed (bad input file, ...), 2 bad command line. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* Run the subcommand named by argv[1] among cmds (NULL-terminated); handles --help and
 * unknown names. `prog` is the full command so far, e.g. "lorasweep data". */
int cli_dispatch(const char *prog, const cli_command *cmds, int argc, char **argv);

/* Print "lorasweep: <last error>" and return CLI_EXIT_FAIL. */
int cli_fail(void);
/* Print "lorasweep <cmd>: <message> (see 'lorasweep <cmd> --help')" and return CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Report what getopt_long rejected (unknown option, missing argument) as a usage error.
 * Call it when getopt_long returns '?' or ':' (optstring must start with ':'). */
int cli_bad_option(const char *cmd, char **argv);
/* Check the argument of --set: KEY=VALUE gives CLI_EXIT_OK, anything else a usage error, with
 * "did you mean --set KEY=VALUE?" when the value came as the next word ("--set train.lr 3e-3").
 * Call it from the getopt_long loop, while optind still points after the argument. */
int cli_set_arg(const char *cmd, const char *arg, int argc, char **argv);
/* Parse an option's number strictly, or print a usage error naming the option. */
int cli_long(const char *cmd, const char *opt, const char *arg, long min, long max, long *out);
int cli_double(const char *cmd, const char *opt, const char *arg, double min, double max, double *out);

/* Subcommands. */
int cmd_data(int argc, char **argv);
int cmd_data_generate(int argc, char **argv);
int cmd_data_info(int argc, char **argv);
int cmd_data_encode(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_model(int argc, char **argv); /* init, info */
int cmd_flops(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_sweep_run(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
