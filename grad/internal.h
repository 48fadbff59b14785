/* internal.h - private to grad/: a derivative rule as rules.c reads it and
 * apply.c instantiates it.
 *
 * A rule's right side is a term stored flat in post-order (root last), so
 * instantiating it is one loop. Variables are numbered: 0 is ?g (the
 * result's cotangent), 1 is ?out (the result), then the left side's
 * operand variables in operand order, then its attribute variable. */
#ifndef TL_GRAD_INTERNAL_H
#define TL_GRAD_INTERNAL_H

#include "grad/grad.h"

enum { GR_V_G, GR_V_OUT, GR_V_FIRST };
enum { GR_T_VAR, GR_T_NUM, GR_T_OP, GR_T_HELPER };

/* Helper forms: expanded by apply.c from the types at hand (docs/grad.md). */
typedef enum gr_helper {
  GR_H_UNREDUCE,     /* (unreduce E ?x :axis :keepdims): E with ?x's reduced dims as 1s */
  GR_H_COUNT,        /* (count ?x :axis): elements a reduction combines */
  GR_H_RESHAPE_LIKE, /* (reshape_like E ?x) */
  GR_H_UNTRANSPOSE,  /* (untranspose E :perm): the inverse permutation */
  GR_H_UNCONCAT,     /* (unconcat E ?x :axis): the part of E that ?x was */
  GR_H_MT,           /* (mT E): the last two dims swapped */
  GR_H_COUNT_
} gr_helper;

typedef struct gr_term {
  uint8_t kind;      /* GR_T_* */
  int16_t op;        /* tl_op, or gr_helper */
  int var;           /* GR_T_VAR */
  bool is_int;       /* GR_T_NUM */
  double f;
  int64_t i;
  int nkids, kids;   /* children: rule->kid[kids .. kids + nkids) */
  tl_attrs attrs;    /* fixed attributes */
  uint32_t copy;     /* TL_A_* keys taken from the attribute variable */
  int attr_var;      /* that variable, -1 */
  int dtype_var;     /* :dtype ?v: the dtype of operand variable v, -1 */
  tl_loc loc;
} gr_term;

enum { GR_C_RANK, GR_C_SCALAR, GR_C_FLOAT, GR_C_DTYPE, GR_C_SAME_SHAPE };

typedef struct gr_cond {
  int kind;          /* GR_C_* */
  int vars[8], nvars;
  int64_t n;         /* rank */
  int dtype;         /* dtype */
  tl_loc loc;
} gr_cond;

typedef struct gr_rule {
  char *name;
  const char *file;  /* owned by the rule set */
  tl_loc loc;
  int text;          /* load order of its text */
  int op;
  int wrt;           /* operand index; -1: every operand of a variadic op */
  int nvars;
  char **vars;       /* names without '?' */
  int attr_var;      /* -1: none */
  int noperands;     /* operand variables on the left side */
  gr_term *t;
  int nt;
  int *kid;
  int nkid;
  gr_cond *conds;
  int nconds;
} gr_rule;

struct gr_rules {
  gr_rule *r;
  int n, cap;
  char **files;
  int nfiles;
  int ntexts;
};

/* gr_rule_apply; without full, the contribution may keep size-1 dims where
 * it is uniform (broadcasting it gives the operand's). */
int32_t gr_apply(const gr_rules *rs, int i, tl_graph *g, int32_t node, int k, int32_t ct, bool full, char *err,
                 size_t n);
/* x broadcast to the shape of `to` (x itself when it has it). */
int32_t gr_broadcast(tl_graph *g, int32_t x, const tl_type *to, char *err, size_t n);

#endif
