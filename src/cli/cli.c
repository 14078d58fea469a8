/* cli.c: subcommand dispatch and the error lines every command prints the same way. */
#include "lorasweep/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lorasweep/common.h"

static void print_commands(FILE *f, const char *prog, const cli_command *cmds) {
    fprintf(f, "usage: %s <command> [options]\n\ncommands:\n", prog);
    for (const cli_command *c = cmds; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n'%s <command> --help' describes each command.\n", prog);
}

int cli_dispatch(const char *prog, const cli_command *cmds, int argc, char **argv) {
    if (argc < 2) {
        print_commands(stderr, prog, cmds);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_commands(stdout, prog, cmds);
        return CLI_EXIT_OK;
    }
    for (const cli_command *c = cmds; c->name; c++) {
        if (!strcmp(c->name, name)) {
            optind = 0; /* glibc: 0 fully re-initialises getopt for the subcommand */
            return c->run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "lorasweep: unknown command '%s %s' (see '%s --help')\n", prog, name, prog);
    return CLI_EXIT_USAGE;
}

int cli_fail(void) {
    fprintf(stderr, "lorasweep: %s\n", ls_last_error());
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lorasweep %s: %s (see 'lorasweep %s --help')\n", cmd, msg, cmd);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, char **argv) {
    const char *arg = argv[optind - 1];
    if (optopt && optopt != '?' && arg && arg[0] == '-' && arg[1] != '-' && strlen(arg) > 2)
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    if (arg && strncmp(arg, "--", 2) == 0 && optopt) /* a known long option lacking its value */
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt && optopt != '?')
        return cli_usage_error(cmd, "unknown option '-%c' or missing value", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg ? arg : "?");
}

int cli_long(const char *cmd, const char *opt, const char *arg, long min, long max, long *out) {
    if (ls_parse_long(arg, min, max, out) != LS_OK)
        return cli_usage_error(cmd, "--%s: %s", opt, ls_last_error());
    return CLI_EXIT_OK;
}

int cli_double(const char *cmd, const char *opt, const char *arg, double min, double max, double *out) {
    if (ls_parse_double(arg, min, max, out) != LS_OK)
        return cli_usage_error(cmd, "--%s: %s", opt, ls_last_error());
    return CLI_EXIT_OK;
}

int cli_set_arg(const char *cmd, const char *arg, int argc, char **argv) {
    if (strchr(arg, '=')) return CLI_EXIT_OK;
    /* "--set train.lr 3e-3": the value went into the next word (getopt has not moved it yet) */
    const char *next = optind < argc ? argv[optind] : NULL, *dot = next ? strrchr(next, '.') : NULL;
    int is_file = dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
    if (next && next[0] != '-' && !is_file)
        return cli_usage_error(cmd, "--set wants KEY=VALUE, got '%s' (did you mean --set %s=%s?)", arg, arg, next);
    return cli_usage_error(cmd, "--set wants KEY=VALUE, got '%s'", arg);
}
