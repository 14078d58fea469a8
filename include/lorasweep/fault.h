/*
 * fault.h: named fault sites, compiled into every build, so that tests can crash the program at
 * an exact point (inside a write, between the journal and the results file) instead of after a
 * sleep that may come too late. docs/results.md lists the sites.
 *
 *   LS_FAULT="site:N[:action][,site:N[:action]...]"
 *
 * makes the N-th pass through `site` in this process (counted from 1) do `action`:
 *   kill   SIGKILL this process, as `kill -9` would (the default);
 *   stop   SIGTERM this process: a clean stop request (checkpoint, exit 3);
 *   enospc the site fails as a write to a full disk would (errno ENOSPC), once;
 *   fail   the site fails with an error of its own (errno EIO), once.
 * Without LS_FAULT a site costs one branch on a cached flag.
 */
#ifndef LORASWEEP_FAULT_H
#define LORASWEEP_FAULT_H

/* Pass through `site`. Returns 0, or -1 (errno ENOSPC or EIO) when the site is told to fail;
 * kill and stop act before returning (kill does not return). */
int ls_fault(const char *site);
/* The site of a file write: "write@<basename of path>" (write@state.safetensors, write@curves.csv). */
int ls_fault_write(const char *path);

#endif
