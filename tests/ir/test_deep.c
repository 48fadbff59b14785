/* test_deep.c - graphs as deep as they are long: a 300,000-long unnamed chain
 * built by code prints (tl_tg_print cuts it with lets, tl_tg_print_node
 * writes it in place) on the default stack, and reads back. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ir/tg.h"
#include "util/alloc.h"
#include "tests/common/tltest.h"

Test(ir_deep, unnamed_chain_prints_and_reads_back) {
  tl_graph *g = tl_graph_new("chain");
  tl_type t = {.dtype = TL_F32, .rank = 1, .dims = {4}};
  int32_t x = tl_graph_add_input(g, "x", &t, (tl_loc){0, 0});
  tl_attrs one;
  tl_attrs_init(&one);
  one.is_int = 1;
  one.i = 1; /* as the parser makes "1" */
  char err[256];
  int32_t lit = tl_graph_add(g, TL_OP_LIT, &one, NULL, 0, (tl_loc){0, 0}, err, sizeof err);
  cr_assert_geq(lit, 0, "%s", err);
  const int n = 300000;
  int32_t c = x;
  for (int i = 0; i < n; i++) {
    int32_t in[2] = {c, lit};
    c = tl_graph_add(g, TL_OP_ADD, NULL, in, 2, (tl_loc){0, 0}, err, sizeof err);
    cr_assert_geq(c, 0, "%s", err);
  }
  tl_graph_add_output(g, "y", c);
  char *s = tl_tg_print_node(g, c);
  cr_assert_eq(strlen(s), (size_t)n * strlen("(add  1)") + 1);
  cr_assert(!strncmp(s, "(add (add (add x 1) 1) 1)", 5));
  tl_free(s);
  s = tl_tg_print(g);
  tl_graph *back = tlt_parse(s, NULL);
  cr_assert(back);
  cr_assert(tl_graph_equal(g, back));
  tl_graph_free(back);
  tl_free(s);
  tl_graph_free(g);
}
