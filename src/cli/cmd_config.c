/* cmd_config.c: `lorasweep config <show|check|doc>`: trial configuration files. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/config.h"

static const char usage_show[] =
    "usage: lorasweep config show TRIAL.yaml [--json] [--set KEY=VALUE]...\n"
    "\n"
    "Prints every key of the trial, defaults filled in, in canonical order (YAML, or JSON with\n"
    "--json), after checking it as `config check` does. The YAML starts with comments giving the\n"
    "trial's id (a hash of the keys) and where its relative paths resolve to.\n"
    "  --json             print JSON instead of YAML\n"
    "  --set KEY=VALUE    override one key, e.g. --set train.lr=3e-4 --set lora.targets=[q_proj,v_proj]\n"
    "                     (VALUE is YAML; relative paths resolve as in the file; repeatable)\n";

static const char usage_check[] =
    "usage: lorasweep config check TRIAL.yaml [--set KEY=VALUE]...\n"
    "\n"
    "Loads the trial and checks every key and the rules between keys; prints \"TRIAL.yaml: ok\" and\n"
    "the trial's id, or one error line naming the file, the line and the key. Files named in the\n"
    "trial are not opened.\n"
    "  --set KEY=VALUE    override one key (repeatable)\n";

static const char usage_doc[] =
    "usage: lorasweep config doc\n"
    "\n"
    "Prints the reference of every key (markdown): type, default, allowed values, meaning.\n"
    "docs/config.md holds the same text.\n";

/* Parse the options of show/check; loads, overrides and validates the trial into c.
 * Returns CLI_EXIT_OK, or the exit status after printing the error. */
static int load_trial(const char *cmd, const char *usage, int allow_json, int argc, char **argv,
                      ls_trial_config *c, int *json) {
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {"set", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    char **sets = ls_calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0, ch, rc = CLI_EXIT_OK;
    *json = 0;
    while (rc == CLI_EXIT_OK && (ch = getopt_long(argc, argv, ":s:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            if (!allow_json) rc = cli_usage_error(cmd, "unknown option '--json'");
            else *json = 1;
            break;
        case 's':
            if ((rc = cli_set_arg(cmd, optarg, argc, argv)) == CLI_EXIT_OK) sets[nsets++] = optarg;
            break;
        case 'h': fputs(usage, stdout); free(sets); return -1;
        default: rc = cli_bad_option(cmd, argv); break;
        }
    }
    if (rc == CLI_EXIT_OK && optind >= argc) rc = cli_usage_error(cmd, "a trial file is required");
    if (rc == CLI_EXIT_OK && optind + 1 < argc) rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (rc != CLI_EXIT_OK) {
        free(sets);
        return rc;
    }
    if (ls_config_load_file(argv[optind], c) != LS_OK) {
        free(sets);
        return cli_fail();
    }
    for (int i = 0; i < nsets && rc == CLI_EXIT_OK; i++) {
        char *eq = strchr(sets[i], '=');
        *eq = '\0';
        if (ls_config_set(c, sets[i], eq + 1) != LS_OK) rc = cli_usage_error(cmd, "--set %s", ls_last_error());
        *eq = '=';
    }
    free(sets);
    if (rc == CLI_EXIT_OK && ls_config_validate(c) != LS_OK) rc = cli_fail();
    if (rc != CLI_EXIT_OK) ls_config_free(c);
    return rc;
}

static int config_show(int argc, char **argv) {
    ls_trial_config c;
    int json, rc = load_trial("config show", usage_show, 1, argc, argv, &c, &json);
    if (rc < 0) return CLI_EXIT_OK; /* --help */
    if (rc != CLI_EXIT_OK) return rc;
    char *text = json ? ls_config_to_json(&c) : ls_config_to_yaml(&c);
    if (!json) {
        printf("# lorasweep config show %s: every key, defaults filled in (see `lorasweep config doc`)\n",
               c.source);
        printf("# id %016" PRIx64 "\n", ls_config_hash(&c));
        printf("# model.path resolves to %s\n", c.resolved.model_path);
        printf("# model.tokenizer resolves to %s\n", c.resolved.tokenizer);
        printf("# data.path resolves to %s\n", c.resolved.data_path);
    }
    fputs(text, stdout);
    free(text);
    ls_config_free(&c);
    return CLI_EXIT_OK;
}

static int config_check(int argc, char **argv) {
    ls_trial_config c;
    int json, rc = load_trial("config check", usage_check, 0, argc, argv, &c, &json);
    if (rc < 0) return CLI_EXIT_OK;
    if (rc != CLI_EXIT_OK) return rc;
    printf("%s: ok, id %016" PRIx64 "\n", c.source, ls_config_hash(&c));
    ls_config_free(&c);
    return CLI_EXIT_OK;
}

static int config_doc(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage_doc, stdout);
            return CLI_EXIT_OK;
        }
        return cli_bad_option("config doc", argv);
    }
    if (optind < argc) return cli_usage_error("config doc", "unexpected argument '%s'", argv[optind]);
    ls_config_doc_markdown(stdout);
    return CLI_EXIT_OK;
}

static const cli_command config_commands[] = {
    {"show", config_show, "print a trial with every key resolved (YAML or JSON)"},
    {"check", config_check, "check a trial file; one error line or ok"},
    {"doc", config_doc, "print the reference of every key (markdown)"},
    {NULL, NULL, NULL},
};

int cmd_config(int argc, char **argv) { return cli_dispatch("lorasweep config", config_commands, argc, argv); }
