/* fuzz_tg.c - the .tg parser. Every input must either be refused with at
 * least one diagnostic or give a graph whose canonical text parses back to
 * an equal graph and prints the same again (the printer and the parser are
 * inverses on what the parser accepts). */
#include "fuzz/fuzz.h"
#include "util/alloc.h"
#include "ir/tg.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *src = (const char *)data; /* not NUL-terminated: the parser takes a length */
  tl_diag d;
  tl_diag_init(&d, "fuzz.tg", src, size);
  tl_graph *g = tl_tg_parse(src, size, &d);
  if (!g) {
    if (d.nerrors == 0 || !*tl_diag_text(&d)) FUZZ_FAIL("refused without a diagnostic");
    tl_diag_free(&d);
    return 0;
  }
  if (d.nerrors) FUZZ_FAIL("a graph despite %d errors:\n%s", d.nerrors, tl_diag_text(&d));
  tl_diag_free(&d);

  /* every named value's type prints */
  char buf[256];
  for (int32_t i = 0; i < g->nnodes; i++) tl_type_str(g, &g->nodes[i].type, buf, sizeof buf);

  char *t1 = tl_tg_print(g);
  tl_diag d2;
  tl_diag_init(&d2, "printed.tg", t1, strlen(t1));
  tl_graph *g2 = tl_tg_parse(t1, strlen(t1), &d2);
  if (!g2) FUZZ_FAIL("the printed graph does not parse:\n%s\n%s", t1, tl_diag_text(&d2));
  if (!tl_graph_equal(g, g2)) FUZZ_FAIL("parse(print(g)) != g; printed:\n%s", t1);
  char *t2 = tl_tg_print(g2);
  if (strcmp(t1, t2) != 0) FUZZ_FAIL("printing is not idempotent:\n%s\n---\n%s", t1, t2);
  tl_free(t1);
  tl_free(t2);
  tl_diag_free(&d2);
  tl_graph_free(g2);
  tl_graph_free(g);
  return 0;
}
