/* control.h - the control-flow rules of the optimizer (docs/rules.md
 * "Control-flow rules"): the `(control ...)` declarations of the rule
 * files, carried out on the e-graph's call, cond, loop and scan nodes.
 *
 * A declaration's right side is a node of a control op (the left node's
 * operands it does not name pass through) or one of the transformations
 * below; its result joins the left node's e-class, and extraction chooses
 * by cost, so every right side here is an alternative, not a decision:
 *   (inline ?f)           f's body on the call's operands
 *   (hoist-invariant ?b)  a scan's body's nodes that read only its consts,
 *                         or a loop's that read only state the body passes
 *                         through, computed once before the loop: new
 *                         consts (scan) or new pass-through state (loop)
 *   (hoist-common ?f ?g)  what both branches of a cond compute from its
 *                         operands, computed once before the cond
 * Function conditions: (same-fn ?f ?g) (the two compute the same results
 * from the same parameters) and (straight-line ?f) (no control flow).
 * New functions (a transformation's bodies) are appended to the table the
 * graph is optimized against. */
#ifndef TL_OPT_CONTROL_H
#define TL_OPT_CONTROL_H

#include "egraph/rules.h"
#include "opt/tensor.h"

extern const eg_control_lang tn_control_lang;

/* One pass of the control rules of the rulesets marked in `active` (NULL:
 * all) over e, functions from and added to t (the store's table).
 * applied[i] counts control i's new results. Returns how many results
 * were added (0: nothing changed). A rule's application that cannot be
 * carried out (a dim no parameter fixes, say) is skipped silently; each
 * node is transformed once per rule (done: a set the caller keeps across
 * passes, NULL-initialised, freed with tn_control_done_free). */
typedef struct tn_control_done tn_control_done;
size_t tn_control_pass(tn_ctx *c, eg_egraph *e, const eg_rules *r, const bool *active, tl_fns *t,
                       size_t *applied, tn_control_done **done);
void tn_control_done_free(tn_control_done *d);

#endif
