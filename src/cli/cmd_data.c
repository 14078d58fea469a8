/* cmd_data.c: `lorasweep data <generate|info|encode>`. */
#include <stddef.h>

#include "lorasweep/cli.h"

static const cli_command data_commands[] = {
    {"generate", cmd_data_generate, "simulate Lotka-Volterra systems into an HDF5 file"},
    {"info", cmd_data_info, "print the shapes and statistics of a data file"},
    {"encode", cmd_data_encode, "print one system as LLMTIME text"},
    {NULL, NULL, NULL},
};

int cmd_data(int argc, char **argv) { return cli_dispatch("lorasweep data", data_commands, argc, argv); }
