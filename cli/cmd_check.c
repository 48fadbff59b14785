/* cli/cmd_check.c - `tlaloc check-rules [--seed N] [--trials N] [--known
 * RULE]... [-v] [--op-table] F.rw...`: the arguments, then tl_check_rule_files does the
 * work. Exit 0: no counter-example, 1: some, 2: bad input. */
#include "cli/cli.h"

#include "check/check.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f, "usage: tlaloc check-rules [--seed N] [--trials N] [--known RULE]... [-v] [--op-table] F.rw...\n"
             "  checks every rule on random inputs against the reference interpreter\n"
             "  (derivative rules against finite differences, docs/grad.md);\n"
             "  --op-table also checks the op table's claims (ir/ops.def: in-place);\n"
             "  exit 0: no counter-example, 1: some, 2: bad input (see docs/rules.md)\n");
}

int cli_cmd_check_rules(int argc, char **argv) {
  tl_check_opts o = {.seed = 1, .trials = 200, .out = stdout};
  const char **known = tl_xcalloc((size_t)argc + 1, sizeof *known);
  const char **files = tl_xcalloc((size_t)argc + 1, sizeof *files);
  int nfiles = 0, rc = 0;
  bool op_table = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if ((!strcmp(a, "--seed") || !strcmp(a, "--trials") || !strcmp(a, "--known")) && i + 1 < argc) {
      const char *v = argv[++i];
      char *end;
      if (!strcmp(a, "--known")) { known[o.nknown++] = v; continue; }
      long long n = strtoll(v, &end, 10);
      if (*end || n < 0 || (!strcmp(a, "--trials") && (n < 1 || n > 1000000))) {
        fprintf(stderr, "tlaloc check-rules: bad value for %s: '%s'\n", a, v);
        rc = CLI_EXIT_BAD;
        goto out;
      }
      if (!strcmp(a, "--seed")) o.seed = (uint64_t)n; else o.trials = (int)n;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      o.verbose = true;
    } else if (!strcmp(a, "--op-table")) {
      op_table = true;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      goto out;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "tlaloc check-rules: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      rc = CLI_EXIT_BAD;
      goto out;
    } else {
      files[nfiles++] = a;
    }
  }
  o.known = known;
  if (nfiles == 0 && !op_table) { usage(stderr); rc = CLI_EXIT_BAD; goto out; }
  tl_check_result res;
  int errs = 0;
  if (tl_check_rule_files(files, nfiles, op_table, &o, stderr, &errs, &res) < 0) {
    fprintf(stderr, "tlaloc check-rules: %d error%s in the rule files\n", errs, errs == 1 ? "" : "s");
    rc = CLI_EXIT_BAD;
  } else {
    printf("check-rules: %d rules checked, %d with a counter-example, %d known, %d untested\n",
           res.nrules, res.ncex, res.nknown, res.nuntested);
    rc = res.ncex ? CLI_EXIT_CHECK : 0;
  }
  tl_check_result_free(&res);
out:
  tl_free(known);
  tl_free(files);
  return rc;
}
