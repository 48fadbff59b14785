/* cli/cmd_compile.c - `tlaloc compile G.tg -o G.o [--header G.h] [--name
 * NAME] [-O0|-O1|-O2|-O3]`: the arguments, then be_compile_aot does the work. */
#include "cli/cli.h"

#include "backend/backend.h"
#include "ir/tg.h"

#include <stdio.h>
#include <string.h>

int cli_cmd_compile(int argc, char **argv) {
  be_aot_params ap = {.opt_level = 3};
  const char *in = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-o") && i + 1 < argc) ap.object_path = argv[++i];
    else if (!strcmp(a, "--header") && i + 1 < argc) ap.header_path = argv[++i];
    else if (!strcmp(a, "--name") && i + 1 < argc) ap.name = argv[++i];
    else if (!strcmp(a, "--target") && i + 1 < argc) {
      if (strcmp(argv[++i], "cpu")) {
        fprintf(stderr, "tlaloc compile: only --target cpu is supported here\n");
        return CLI_EXIT_BAD;
      }
    } else if (!strcmp(a, "-O0")) ap.opt_level = 0;
    else if (!strcmp(a, "-O1")) ap.opt_level = 1;
    else if (!strcmp(a, "-O2")) ap.opt_level = 2;
    else if (!strcmp(a, "-O3")) ap.opt_level = 3;
    else if (a[0] != '-' && !in) in = a;
    else {
      fprintf(stderr, "tlaloc compile: unexpected argument '%s'\n", a);
      in = NULL;
      break;
    }
  }
  if (!in || !ap.object_path) {
    fprintf(stderr, "usage: tlaloc compile G.tg -o G.o [--header G.h] [--name NAME] [-O0|-O1|-O2|-O3]\n");
    return CLI_EXIT_BAD;
  }
  tl_graph *g = tl_tg_load(in, stderr);
  if (!g) return CLI_EXIT_BAD;
  char err[512];
  int rc = 0;
  if (be_compile_aot(g, ap, err, sizeof err)) {
    fprintf(stderr, "tlaloc compile: %s\n", err);
    rc = CLI_EXIT_BAD;
  }
  tl_graph_free(g);
  return rc;
}
