/* fuzz_rw.c - the .rw rule reader, then what the rules feed: an accepted
 * text is used to optimise a fixed small graph (saturation under small
 * limits with the e-graph checker on after every rebuild, extraction,
 * rebuilding a graph) and is checked by check-rules' random testing with a
 * few trials. Properties: a refusal has a file:line:col message; the
 * optimised graph's outputs have the original's types (the analysis never
 * merges classes of different types, so even unsound rules keep them). */
#include "fuzz/fuzz.h"
#include "util/alloc.h"
#include "check/check.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "opt/tensor.h"

#include <string.h>
#include <unistd.h>

static char path[64];
static tl_graph *graph;

/* Enough ops for most rules to find something to match. */
static const char graph_text[] =
  "(graph g (in x f32 [n 4]) (in y f32 [4]) (in i i64 [n])\n"
  "  (let s (softmax (add x y) :axis 1))\n"
  "  (out a (log s))\n"
  "  (out b (sum (mul (exp x) (exp (neg x))) :axis 0))\n"
  "  (out c (div (sqrt (abs y)) (add 1 (pow y 2))))\n"
  "  (out d (log (add 1 (exp (sub (matmul x (transpose (mul x 2) :perm [1 0])) 0)))))\n"
  "  (out e (where (gt x 0) (log1p (exp x)) (mul x x)))\n"
  "  (out f (mean (maximum (cast i :dtype f32) (neg (sigmoid (sum x :axis 1)))) :axis 0 :keepdims true)))\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(path, sizeof path, "%s/tl-fuzz-rw-%d.rw",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  setenv("TLALOC_PROFILE", "/nonexistent/tlaloc-fuzz-profile", 1); /* the built-in model */
  tl_diag d;
  tl_diag_init(&d, "graph.tg", graph_text, strlen(graph_text));
  graph = tl_tg_parse(graph_text, strlen(graph_text), &d);
  if (!graph) FUZZ_FAIL("the fixed graph does not parse:\n%s", tl_diag_text(&d));
  tl_diag_free(&d);
  return 0;
}

static bool same_type(const tl_type *a, const tl_type *b) {
  return a->dtype == b->dtype && a->rank == b->rank &&
         memcmp(a->dims, b->dims, a->rank * sizeof *a->dims) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  /* parse alone, with the optimizer's conditions */
  tn_ctx *c = tn_ctx_new();
  eg_rules *rs = eg_rules_new(&c->lang, c->conds);
  tl_diag d = {0};
  int errs = eg_rules_load(rs, "fuzz.rw", text, size, &d);
  if (errs && (strncmp(tl_diag_text(&d), "fuzz.rw:", 8) != 0))
    FUZZ_FAIL("%d errors without a file:line:col message: '%s'", errs, d.nerrors ? tl_diag_text(&d) : "");
  int nrules = rs->nrules;
  tl_diag_free(&d);
  eg_rules_free(rs);
  tn_ctx_free(c);
  if (errs || nrules == 0) return 0;

  /* the optimizer with these rules alone */
  FILE *f = fopen(path, "wb");
  if (!f) FUZZ_FAIL("cannot write %s", path);
  fwrite(data, 1, size, f);
  fclose(f);
  tl_opt_params p = tl_opt_defaults();
  const char *paths[1] = {path};
  p.rule_paths = paths;
  p.nrule_paths = 1;
  p.limits = (eg_limits){.iters = 4, .nodes = 3000, .seconds = 5, .bytes = 64u << 20};
  p.check = true;
  p.extract_seconds = 1;
  char err[1024];
  tl_opt *o = tl_opt_new(&p, err, sizeof err);
  if (!o) FUZZ_FAIL("rules that parse do not load into the optimizer: %s", err);
  tl_error oe = {0};
  tl_graph *best = tl_opt_graph(o, graph, &oe);
  /* a refusal is allowed: a rule that does not hold may leave an output
   * without a well-typed program */
  if (best) {
    if (best->noutputs != graph->noutputs) FUZZ_FAIL("outputs lost");
    for (int i = 0; i < graph->noutputs; i++) {
      const tl_type *a = &graph->nodes[graph->outputs[i].node].type;
      const tl_type *b = &best->nodes[best->outputs[i].node].type;
      char ta[128], tb[128];
      if (!same_type(a, b))
        FUZZ_FAIL("output %d changed type: %s -> %s", i, tl_type_str(graph, a, ta, sizeof ta),
                  tl_type_str(best, b, tb, sizeof tb));
    }
    char *s = tl_tg_print(best);
    tl_free(s);
    tl_graph_free(best);
  }
  tl_opt_free(o);
  unlink(path);

  /* check-rules' random testing, a few trials per rule */
  eg_conds *conds = tl_check_conds_new();
  c = tn_ctx_new();
  rs = eg_rules_new(&c->lang, conds);
  d = (tl_diag){0};
  if (eg_rules_load(rs, "fuzz.rw", text, size, &d) == 0) {
    tl_check_opts co = {.seed = 1, .trials = 3};
    tl_check_result res;
    tl_check_rules(rs, &co, &res);
    tl_check_result_free(&res);
  }
  tl_diag_free(&d);
  eg_rules_free(rs);
  eg_conds_free(conds);
  tn_ctx_free(c);
  return 0;
}
