/* tests/support/egg_math.h - the scalar "math" language of egg's test suite,
 * used as the e-graph engine's test and benchmark yardstick (not part of the
 * library: tests/egraph and bench/egraph link it as a static library) (shared/bench/egg-math-suite.md): ops
 * d i + - * / pow ln sqrt sin cos, constants (f64) and symbols as leaves, the
 * ConstantFold analysis and the conditions the math rules use.
 *
 *   eg_math m; eg_math_init(&m);
 *   eg_egraph *g = eg_new(eg_math_params(&m, false));
 *   eg_rules *r = eg_rules_new(&m.lang, m.conds);  // then eg_rules_load... */
#ifndef TL_TESTS_SUPPORT_EGG_MATH_H
#define TL_TESTS_SUPPORT_EGG_MATH_H

#include "egraph/egraph.h"
#include "egraph/rules.h"

enum {
  EG_MATH_CONST, EG_MATH_SYM, EG_MATH_D, EG_MATH_I, EG_MATH_ADD, EG_MATH_SUB,
  EG_MATH_MUL, EG_MATH_DIV, EG_MATH_POW, EG_MATH_LN, EG_MATH_SQRT,
  EG_MATH_SIN, EG_MATH_COS, EG_MATH_NOPS
};

/* ConstantFold data: egg's Option<f64>. */
typedef struct eg_math_data { double v; uint8_t has; } eg_math_data;

typedef struct eg_math {
  eg_lang lang;
  eg_analysis fold;  /* ConstantFold, with egg's pruning modify */
  eg_conds *conds;   /* nonzero const is-sym const-or-distinct-var */
  bool prune;        /* prune folded classes to leaves (egg default: true) */
} eg_math;

/* Fills m (its vtables point into m, so m must not move). */
void eg_math_init(eg_math *m);
void eg_math_fini(eg_math *m);
/* Params for an e-graph over the math language with constant folding. */
eg_params eg_math_params(const eg_math *m, bool explain);
/* Constant value of a class, if the analysis has one. */
bool eg_math_const(eg_egraph *g, eg_id c, double *v);

#endif
