/* be_tool.c - test helper: `be-tool compile ARGS...` runs cli_cmd_compile
 * (the body of `tlaloc compile`); `be-tool ref G.tg SIZE` prints the
 * interpreter's outputs on examples/aot/main.c's deterministic inputs. */
#include "backend/backend.h"
#include "cli/cli.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ref(const char *path, int64_t sym) {
  char err[512];
  size_t len;
  char *src = tl_read_file(path, &len, err, sizeof err);
  if (!src) return 2;
  tl_diag d;
  tl_diag_init(&d, path, src, len);
  tl_graph *g = tl_tg_parse(src, len, &d);
  tl_diag_free(&d);
  tl_free(src);
  if (!g) return 2;
  int64_t syms[64];
  if (g->nsyms > 64) return 2;
  /* every base symbol is SIZE; derived dims follow from them */
  if (tl_syms_at(g, syms, sym, 0, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  tl_tensor *in[16] = {0}, *out[16] = {0};
  for (int k = 0; k < g->ninputs; k++) {
    const tl_type *t = &g->nodes[g->inputs[k]].type;
    int64_t dims[TL_MAX_RANK];
    tl_concrete_dims(g, t, syms, dims, err, sizeof err);
    in[k] = tl_tensor_new((tl_dtype)t->dtype, t->rank, dims, err, sizeof err);
    for (int64_t i = 0; i < in[k]->numel; i++) {
      double v = sin(0.37 * (double)i + k);
      if (t->dtype == TL_F32) ((float *)in[k]->data)[i] = (float)v;
      else if (t->dtype == TL_F64) ((double *)in[k]->data)[i] = v;
      else if (t->dtype == TL_BOOL) ((uint8_t *)in[k]->data)[i] = v > 0;
      else tl_tensor_set_i64(in[k], i, i % 3);
    }
  }
  if (tl_interp_run(g, in, syms, out, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  for (int o = 0; o < g->noutputs; o++) {
    for (int64_t i = 0; i < out[o]->numel; i++) printf("%.17g\n", tl_tensor_get_f64(out[o], i));
    tl_tensor_free(out[o]);
  }
  for (int k = 0; k < g->ninputs; k++) tl_tensor_free(in[k]);
  tl_graph_free(g);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "compile")) return cli_cmd_compile(argc - 1, argv + 1);
  if (argc == 4 && !strcmp(argv[1], "ref")) return ref(argv[2], atoll(argv[3]));
  fprintf(stderr, "usage: be-tool compile ARGS... | be-tool ref G.tg SIZE\n");
  return 2;
}
