/* fault.c: LS_FAULT fault sites (fault.h). Parsed once; counts are per process. */
#include "lorasweep/fault.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_RULES = 16, MAX_SITE = 48 };
typedef enum { ACT_KILL, ACT_STOP, ACT_ENOSPC, ACT_FAIL } fault_action;
typedef struct {
    char site[MAX_SITE];
    long at, seen;
    fault_action action;
} fault_rule;

static fault_rule rules[MAX_RULES];
static int n_rules = -1; /* -1: LS_FAULT not read yet */

/* A malformed LS_FAULT is a mistake in a test: say so once, then ignore that rule. */
static void parse_rules(void) {
    n_rules = 0;
    const char *env = getenv("LS_FAULT");
    if (!env || !*env) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && n_rules < MAX_RULES; tok = strtok_r(NULL, ",", &save)) {
        fault_rule r = {0};
        char action[16] = "kill";
        if (sscanf(tok, "%47[^:]:%ld:%15s", r.site, &r.at, action) < 2 || r.at < 1) {
            fprintf(stderr, "lorasweep: LS_FAULT: '%s' is not site:N[:kill|stop|enospc|fail]; ignored\n", tok);
            continue;
        }
        if (!strcmp(action, "kill")) r.action = ACT_KILL;
        else if (!strcmp(action, "stop")) r.action = ACT_STOP;
        else if (!strcmp(action, "enospc")) r.action = ACT_ENOSPC;
        else if (!strcmp(action, "fail")) r.action = ACT_FAIL;
        else {
            fprintf(stderr, "lorasweep: LS_FAULT: unknown action '%s' (kill, stop, enospc, fail); ignored\n", action);
            continue;
        }
        rules[n_rules++] = r;
    }
}

int ls_fault(const char *site) {
    if (n_rules < 0) parse_rules();
    for (int i = 0; i < n_rules; i++) {
        fault_rule *r = &rules[i];
        if (strcmp(r->site, site) || ++r->seen != r->at) continue;
        switch (r->action) {
        case ACT_KILL: raise(SIGKILL); break;
        case ACT_STOP: raise(SIGTERM); break; /* every command takes it as a stop (sweep, train) */
        case ACT_ENOSPC: errno = ENOSPC; return -1;
        case ACT_FAIL: errno = EIO; return -1;
        }
    }
    return 0;
}

int ls_fault_write(const char *path) {
    if (n_rules == 0) return 0; /* the common case without LS_FAULT: no string work */
    const char *base = strrchr(path, '/');
    char site[MAX_SITE + 8];
    snprintf(site, sizeof site, "write@%s", base ? base + 1 : path);
    return ls_fault(site);
}
