/* check.h - random testing of rewrite rules against the reference
 * interpreter, behind `tlaloc check-rules` (see docs/rules.md).
 *
 * For every rule (each half of a `<=>` rule separately) the checker draws
 * random inputs for the pattern variables (dtypes, broadcasting shapes,
 * magnitudes from tiny to huge, zeros, signs) that satisfy the rule's :if
 * conditions, evaluates both sides with tl_interp_run, and compares them:
 * same dtype and shape, integers and bools exactly, floats within
 *   |l - r| <= rtol * (|l| + |r|) + rtol * 4 * scale
 * (rtol 1e-5 when an input or the result is f32, else 1e-12; scale = the largest finite |value| of
 * any input or any intermediate node of either side), NaN only against NaN,
 * inf only against the same inf. A rule declared "improves accuracy" (the
 * `:if (improves-accuracy)` annotation, or every rule of a ruleset whose
 * name begins with "stability") also passes where the LHS is inf or NaN and
 * the RHS is finite. */
#ifndef TL_CHECK_H
#define TL_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "egraph/rules.h"
#include "grad/grad.h"

typedef struct tl_check_opts {
  uint64_t seed;
  int trials;               /* valid trials per rule (default 200) */
  const char *const *known; /* rule names whose counter-examples are known */
  int nknown;
  FILE *out;                /* report (NULL: silent) */
  bool verbose;
} tl_check_opts;

typedef struct tl_check_result {
  int nrules;     /* rule halves checked */
  int ncex;       /* rule halves with a counter-example (known ones excluded) */
  int nknown;     /* rule halves with a counter-example listed as known */
  int nuntested;  /* rule halves for which no valid trial was found */
  char **failed;  /* names of the rules with a counter-example ("NAME" or
                     "NAME<-" for a backward half), known ones included */
  int nfailed;
} tl_check_result;

void tl_check_result_free(tl_check_result *r);

/* A condition registry with every condition the optimizer accepts plus
 * improves-accuracy; the checker evaluates them itself (by name). */
eg_conds *tl_check_conds_new(void);

/* Checks every rule of r (loaded with a registry from tl_check_conds_new).
 * Returns the number of rules with an unknown counter-example. */
int tl_check_rules(const eg_rules *r, const tl_check_opts *o, tl_check_result *res);

/* Checks every derivative rule of r against central finite differences in
 * f64 and, at the points where an op is not differentiable, PyTorch's
 * convention (check_grad.c); adds to res (not cleared). Returns the number
 * of rules with an unknown counter-example. */
int tl_check_grad_rules(const gr_rules *r, const tl_check_opts *o, tl_check_result *res);

/* Parses text as a .rw file and checks it (rewrite, in-place and
 * derivative rules). Returns -1 on a parse error (the
 * diagnostics go to o->out), else as tl_check_rules. */
int tl_check_rules_text(const char *file, const char *text, const tl_check_opts *o,
                        tl_check_result *res);

/* Loads the .rw files into one rule set (as tl_check_rules_text), with the
 * op table's claims when op_table (tl_check_op_table), and checks it (what
 * `tlaloc check-rules` runs). When a file does not load: -1, the
 * diagnostics written to diag (NULL: dropped), their count in *nerrors (may
 * be NULL), res empty. Else as tl_check_rules. */
int tl_check_rule_files(const char *const *files, int nfiles, bool op_table, const tl_check_opts *o,
                        FILE *diag, int *nerrors, tl_check_result *res);

/* Checks the op table's claims that rule files could also make (the
 * in-place facts of ir/ops.def, see tn_op_table_rules), as tl_check_rules
 * checks a file's; -1 if the table does not load. */
int tl_check_op_table(const tl_check_opts *o, tl_check_result *res);

#endif
