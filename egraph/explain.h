/* explain.h - why two terms are equal: the chain of rewrites between them.
 *
 * With eg_params.explain set, every union records its reason (rule and
 * direction, congruence, analysis) as an edge of a proof forest over e-class
 * ids, and every distinct original term keeps its own id (egg's design,
 * Willsey et al. POPL 2021 and Flatt et al. FMCAD 2022). eg_explain walks
 * the forest path between two ids, expanding congruence edges into the
 * children's proofs, and returns a flat explanation: the start term, then
 * after every step the whole term with the rewritten subterm marked
 * `(Rewrite=> rule SUBTERM)` (or `Rewrite<=` when the rule ran right to
 * left). Nothing is allocated for this when explanations are off. */
#ifndef TL_EGRAPH_EXPLAIN_H
#define TL_EGRAPH_EXPLAIN_H

#include "egraph/egraph.h"

typedef struct eg_expl eg_expl;

typedef struct eg_expl_step {
  const char *rule;    /* rule or analysis name ("constant-fold"), "user" */
  bool backward;       /* applied right to left */
  const char *before;  /* the rewritten subterm before and after the step */
  const char *after;
  const char *term;    /* the whole term after the step, marked */
  const char *plain;   /* the whole term after the step, unmarked */
} eg_expl_step;

/* Bounds: a term longer than EG_EXPL_TERM_BYTES has its remaining
 * operands written "..." (terms print as trees, and a DAG with sharing
 * prints exponentially long); a marked term shows 8 levels at each end of
 * a longer path to the rewrite, "..." between; an explanation whose proof
 * takes more than 2^25 units of work to expand (proof tasks, and each
 * step's path length) or 2^17 steps, or whose steps' text passes 16 MiB,
 * stops there,
 * truncated (its text then ends with a line saying so). Nothing recurses
 * on the depth of terms or proofs. */
#define EG_EXPL_TERM_BYTES 4096

/* NULL when explanations are off or a and b are not equal. */
eg_expl *eg_explain(eg_egraph *g, eg_id a, eg_id b);
void eg_expl_free(eg_expl *e);
size_t eg_expl_nsteps(const eg_expl *e);
/* The proof was longer than the work bound: the steps are its beginning. */
bool eg_expl_truncated(const eg_expl *e);
const eg_expl_step *eg_expl_step_at(const eg_expl *e, size_t i);
const char *eg_expl_start(const eg_expl *e);  /* term of a */
const char *eg_expl_text(const eg_expl *e);   /* start, then each marked term */
/* The term an id was created from (explanations on); malloc'd string. */
char *eg_id_term(eg_egraph *g, eg_id id);

#endif
