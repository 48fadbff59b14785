/* ops.h - the op table: every op's identity (name, arity, kind, dtype rule,
 * attributes) and the facts later stages share (math function, fusion
 * class, in-place legality, sign facts, cost constants, input domain,
 * differentiability), expanded from ir/ops.def. Modules read facts from
 * tl_ops[] instead of keeping per-op lists of their own. */
#ifndef TL_IR_OPS_H
#define TL_IR_OPS_H

#include <stddef.h>
#include <stdint.h>

typedef enum tl_kind {
  TL_KIND_SOURCE, TL_KIND_CONSTANT, TL_KIND_ELEMWISE, TL_KIND_REDUCTION,
  TL_KIND_SHAPE, TL_KIND_LINALG,
  TL_KIND_CONTROL /* call, cond, loop, scan: run functions of the graph's table */
} tl_kind;

/* How an op's result dtype follows from its operands' (promoted) dtype. */
typedef enum tl_dtype_rule {
  TL_DR_SAME,    /* promoted operand dtype */
  TL_DR_NUMERIC, /* promoted dtype; bool operands are an error */
  TL_DR_FLOAT,   /* promoted dtype; bool and ints become f64 */
  TL_DR_BOOL,    /* bool, operands of any dtype */
  TL_DR_CMP,     /* bool, operands promoted together */
  TL_DR_WHERE,   /* operand 0 is the condition; 1 and 2 are promoted */
  TL_DR_SUM,     /* sum/prod: bool and i32 accumulate in i64 (numpy) */
  TL_DR_FIRST,   /* dtype of operand 0 (take) */
  TL_DR_ATTR,    /* given by attributes (in, const, fill, cast, lit) */
  TL_DR_INTEGER  /* promoted dtype; float operands are an error (bitwise ops) */
} tl_dtype_rule;

enum {
  TL_A_AXIS = 1 << 0, TL_A_KEEPDIMS = 1 << 1, TL_A_DTYPE = 1 << 2,
  TL_A_SHAPE = 1 << 3, TL_A_PERM = 1 << 4, TL_A_START = 1 << 5,
  TL_A_STOP = 1 << 6, TL_A_STEP = 1 << 7,
  TL_A_RANGE = 1 << 8, /* an input's declared range [f, hi] (`:range LO HI`) */
  /* control flow: the functions called, the output taken, the bounds */
  TL_A_FN = 1 << 9, TL_A_THEN = 1 << 10, TL_A_ELSE = 1 << 11, TL_A_COND = 1 << 12,
  TL_A_BODY = 1 << 13, TL_A_UNTIL = 1 << 14, TL_A_OUT = 1 << 15, TL_A_MAX = 1 << 16,
  TL_A_CARRY = 1 << 17, TL_A_LENGTH = 1 << 18, TL_A_CONSTS = 1 << 19,
  /* a loop's per-trip results: how many (:stack K), and the symbol its
   * trip count binds at run time (:trips NAME), their first dim */
  TL_A_STACK = 1 << 20, TL_A_TRIPS = 1 << 21
};

/* Fusion classes: the built-in opclasses of the fusion rules (names in
 * tl_fuse_class_names). */
typedef enum tl_fuse_class {
  TL_FUSE_NONE, TL_FUSE_ELEMENTWISE, TL_FUSE_INDEX_MAP, TL_FUSE_LITERAL,
  TL_FUSE_ROW_KERNEL, TL_FUSE_CLASS_COUNT
} tl_fuse_class;
extern const char *const tl_fuse_class_names[TL_FUSE_CLASS_COUNT];

/* Sign facts of an op's result, for every non-NaN element. */
typedef enum tl_sign_rule {
  TL_SIGN_NONE,            /* nothing known */
  TL_SIGN_NONNEG,          /* >= 0 whatever the operands */
  TL_SIGN_POSITIVE,        /* > 0 */
  TL_SIGN_NONPOS,          /* <= 0 */
  TL_SIGN_KEEP,            /* those of operand 0 (shape ops, max/min) */
  TL_SIGN_NONNEG_IF_NONNEG,/* >= 0 when operand 0 is (sqrt, log1p, sum) */
  TL_SIGN_CUSTOM           /* depends on several operands: opt/tensor.c */
} tl_sign_rule;

/* Where an op's operands keep it finite and smooth (random inputs). */
/* Sign facts of a value, for every non-NaN element (bits). */
enum { TL_FACT_NONZERO = 1, TL_FACT_POSITIVE = 2, TL_FACT_NONNEG = 4, TL_FACT_NONPOS = 8 };
/* The facts of op's result from its operands' (the SIGN column, and the
 * ops whose facts depend on several operands); same: the two operands are
 * one value (x*x). Used by the optimizer's analysis and the cost model. */
uint8_t tl_sign_facts(int op, const uint8_t *in, int n, bool same);
/* The facts of a number. */
uint8_t tl_value_facts(double v);
/* The facts of every value in [lo, hi] (an input's declared :range). */
uint8_t tl_range_facts(double lo, double hi);

typedef enum tl_domain {
  TL_DOM_ALL, TL_DOM_POSITIVE, TL_DOM_NEGATIVE, TL_DOM_NONZERO, TL_DOM_GT_MINUS1,
  TL_DOM_UNIT,   /* (-1, 1): asin, acos, atanh */
  TL_DOM_GT_ONE  /* (1, inf): acosh */
} tl_domain;

typedef enum tl_grad_rule {
  TL_GRAD_DIFF, /* differentiable in its float operands */
  TL_GRAD_ZERO, /* piecewise constant: the gradient is zero */
  TL_GRAD_NONE  /* bool result: carries no gradient */
} tl_grad_rule;

#define TL_INPLACE_ROWS (1u << 31) /* in tl_op_info.inplace: a row claim */

typedef struct tl_op_info {
  const char *name;
  int arity; /* -1: variadic, at least one operand */
  tl_kind kind;
  tl_dtype_rule dtype_rule;
  unsigned allowed_attrs, required_attrs;
  int line;             /* of its row in ir/ops.def, for messages */
  /* facts (ir/ops.def says who reads each) */
  const char *math;     /* libm name, f64 ("exp"); NULL if none */
  double (*ref1)(double);         /* the libm function itself (MATH, unary) */
  double (*ref2)(double, double); /* (MATH, binary) */
  uint8_t vmath;        /* float lowering calls vector math */
  uint8_t fuse;         /* tl_fuse_class */
  uint32_t inplace;     /* bit i: operand i may be destroyed; TL_INPLACE_ROWS */
  uint8_t sign;         /* tl_sign_rule */
  uint8_t hazard;       /* numerical hazards (accuracy cost) */
  uint8_t domain;       /* tl_domain */
  uint8_t grad;         /* tl_grad_rule */
  uint8_t nograd;       /* bit i: operand i carries no gradient (indices, conditions) */
  double weight;        /* the optimizer's abstract cost */
  double elem_ns;       /* default ns per f32 element, one thread; 0: none */
} tl_op_info;

typedef enum tl_op {
#define OP(id, name, arity, kind, dr, allowed, required, ...) TL_OP_##id,
#include "ir/ops.def"
#undef OP
  TL_OP_COUNT
} tl_op;

extern const tl_op_info tl_ops[TL_OP_COUNT];

/* Names of the kinds (tl_kind) and of the attributes by bit number (TL_A_*;
 * "range" is an input's, written `:range LO HI`). */
extern const char *const tl_kind_names[TL_KIND_CONTROL + 1];
enum { TL_NATTRS = 22 };
extern const char *const tl_attr_names[TL_NATTRS];

/* Op by name (NULL-terminated string or n bytes); -1 when unknown. */
int tl_op_lookup(const char *name, size_t n);

#endif
