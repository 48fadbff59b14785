/* cli/cmd_compile.c - `tlaloc compile G.tg -o G.o [--header G.h] [--name
 * NAME] [-O0|-O1|-O2|-O3] [--cpu LEVEL]`: the arguments, then be_compile_aot does the work;
 * with --target ptx (`-o G.ptx --header G.h [--launcher G_launch.c]
 * [--arch sm_NN]`) gpu_compile_aot writes the GPU's kernels and launcher. */
#include "cli/cli.h"

#include "backend/backend.h"
#include "gpu/gpu.h"
#include "ir/tg.h"

#include <stdio.h>
#include <string.h>

int cli_cmd_compile(int argc, char **argv) {
  be_aot_params ap = {.opt_level = 3};
  gpu_options go = gpu_options_default();
  const char *in = NULL, *launcher = NULL;
  int ptx = 0, opt_given = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-o") && i + 1 < argc) ap.object_path = argv[++i];
    else if (!strcmp(a, "--header") && i + 1 < argc) ap.header_path = argv[++i];
    else if (!strcmp(a, "--name") && i + 1 < argc) ap.name = argv[++i];
    else if (!strcmp(a, "--launcher") && i + 1 < argc) launcher = argv[++i];
    else if (!strcmp(a, "--arch") && i + 1 < argc) go.arch = argv[++i];
    else if (!strcmp(a, "--cpu") && i + 1 < argc) ap.cpu = argv[++i];
    else if (!strcmp(a, "--target") && i + 1 < argc) {
      const char *t = argv[++i];
      if (!strcmp(t, "ptx")) ptx = 1;
      else if (strcmp(t, "cpu")) {
        fprintf(stderr, "tlaloc compile: --target is cpu or ptx, not '%s'\n", t);
        return CLI_EXIT_BAD;
      }
    } else if (!strcmp(a, "-O0")) ap.opt_level = 0, opt_given = 1;
    else if (!strcmp(a, "-O1")) ap.opt_level = 1, opt_given = 1;
    else if (!strcmp(a, "-O2")) ap.opt_level = 2, opt_given = 1;
    else if (!strcmp(a, "-O3")) ap.opt_level = 3, opt_given = 1;
    else if (a[0] != '-' && !in) in = a;
    else {
      fprintf(stderr, "tlaloc compile: unexpected argument '%s'\n", a);
      in = NULL;
      break;
    }
  }
  if (!in || !ap.object_path) {
    fprintf(stderr, "usage: tlaloc compile G.tg -o G.o [--header G.h] [--name NAME] [-O0|-O1|-O2|-O3]\n"
                    "                      [--cpu x86-64|x86-64-v2|x86-64-v3|x86-64-v4|native]\n"
                    "       tlaloc compile G.tg --target ptx -o G.ptx [--header G.h [--launcher G_launch.c]]\n"
                    "                      [--name NAME] [--arch sm_90] [-O0|-O1|-O2|-O3]\n");
    return CLI_EXIT_BAD;
  }
  tl_graph *g = tl_tg_load(in, stderr);
  if (!g) return CLI_EXIT_BAD;
  tl_error err = {0};
  int rc = 0;
  if (ptx) {
    if (opt_given) go.opt_level = ap.opt_level;
    gpu_aot_params gp = {.name = ap.name, .ptx_path = ap.object_path, .header_path = ap.header_path,
                         .launcher_path = launcher};
    if (gpu_compile_aot(g, &go, gp, &err)) {
      fprintf(stderr, "tlaloc compile: %s\n", err.msg);
      rc = err.status;
    }
  } else if (be_compile_aot(g, ap, &err)) {
    fprintf(stderr, "tlaloc compile: %s\n", err.msg);
    rc = err.status;
  }
  tl_graph_free(g);
  return rc;
}
