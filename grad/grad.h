/* grad.h - automatic differentiation as a graph-to-graph transformation:
 * reverse mode (grad, vjp) and forward mode (jvp), from derivative rules
 * that are data (rules/grad.rw; docs/grad.md has the rule language, the
 * conventions and the names).
 *
 *   gr_rules *r = gr_rules_new();
 *   if (gr_rules_load_path(r, tl_rules_dir(), &diag)) ...   // every .rw of the folder
 *   gr_params p = {.mode = GR_GRAD, .wrt = (const char *[]){"w"}, .nwrt = 1};
 *   tl_graph *dg = gr_transform(g, r, &p, err, sizeof err);        // outputs d<loss>_d<w>
 *   ... an ordinary graph: print it, optimise it, run it, differentiate it again
 *   tl_graph_free(dg); gr_rules_free(r);
 *
 * The result shares the forward values with the gradients (one graph), and
 * every traversal is a loop over node ids, so graphs 10^6 nodes deep are
 * fine. A derivative that no rule gives, or a rule that does not
 * type-check on the graph's types, is an error naming the op, the operand
 * and the rule; nothing is guessed. */
#ifndef TL_GRAD_H
#define TL_GRAD_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/ir.h"
#include "util/util.h"

/* ---- derivative rules ------------------------------------------------------ */

typedef struct gr_rules gr_rules;

gr_rules *gr_rules_new(void);
void gr_rules_free(gr_rules *r);

/* Reads the `grad` declarations of a .rw text (its rewrite rules, fuse and
 * inplace declarations are skipped: egraph/ reads those). Returns the
 * number of errors, each appended to diag as file:line:col, the line and a
 * caret; a text with errors adds nothing. Texts load in order: a later
 * text's rules for an (op, operand) replace every earlier text's. */
int gr_rules_load(gr_rules *r, const char *file, const char *text, size_t len, tl_buf *diag);
/* A .rw file, or every *.rw file of a folder in name order. */
int gr_rules_load_path(gr_rules *r, const char *path, tl_buf *diag);

/* A loaded rule, for check-rules and messages. `wrt` is the operand the
 * rule differentiates for (-1: each operand of a variadic op); `text` is
 * its number in load order (its file). */
typedef struct gr_rule_info {
  const char *name, *file;
  int line, col;
  int op, wrt, text;
} gr_rule_info;
int gr_rules_count(const gr_rules *r);
gr_rule_info gr_rule_at(const gr_rules *r, int i);

/* The (op, operand) pairs of differentiable ops (the op table's GRAD and
 * NOGRAD columns) that no rule covers, one "op operand N" line each into
 * out; returns their number. */
int gr_rules_missing(const gr_rules *r, tl_buf *out);

/* The rule the transform uses for operand k of node `node` of g (the last
 * text that has rules for that op and operand; in it, the first rule whose
 * conditions hold on the types), or -1. */
int gr_rule_pick(const gr_rules *r, const tl_graph *g, int32_t node, int k);
/* Whether rule i covers operand k of node and its conditions hold. */
bool gr_rule_applies(const gr_rules *r, int i, const tl_graph *g, int32_t node, int k);
/* Rule i instantiated for operand k of node, with the cotangent ct of the
 * node's result (a node of g): the operand's cotangent contribution, added
 * to g, with the broadcast dims the operand was stretched over summed and
 * cast to the operand's dtype. -1 with a message when it does not
 * type-check. */
int32_t gr_rule_apply(const gr_rules *r, int i, tl_graph *g, int32_t node, int k, int32_t ct, char *err,
                      size_t n);

/* ---- the transform ------------------------------------------------------------ */

typedef enum gr_mode {
  GR_GRAD, /* scalar outputs: outputs d<out>_d<in> */
  GR_VJP,  /* inputs ct_<out> (each output's cotangent): outputs vjp_<in> */
  GR_JVP   /* inputs t_<in> (tangents): outputs jvp_<out> */
} gr_mode;

typedef struct gr_params {
  gr_mode mode;
  const char *const *of; /* outputs to differentiate, by name; none: every output */
  int nof;
  const char *const *wrt; /* inputs to differentiate with respect to; none: every float input */
  int nwrt;
  bool with_outputs;      /* the original outputs first, under their names */
} gr_params;

/* The derivative graph of g (g is not changed). Its inputs are g's, in
 * order, then the cotangents or tangents of the mode. GR_GRAD: one sweep
 * per output, seeded with 1; an output that is not a float scalar is an
 * error. GR_VJP: one sweep seeded with every ct_<out>. GR_JVP: the VJP
 * transposed (the VJP graph is linear in its cotangents; the reverse
 * sweep of <vjp, t> with respect to them is the JVP: Townsend's trick, so
 * forward mode needs no rules of its own). An input with no path to the
 * output gets zeros. NULL with a message on error. */
tl_graph *gr_transform(const tl_graph *g, const gr_rules *r, const gr_params *p, char *err, size_t n);

#endif
