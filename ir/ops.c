/* ops.c - the op table (expanded from ops.def) and dtype promotion (the
 * dtypes themselves are tensor/tensor.h's). */
#include "ir/ir.h"

#include <math.h>
#include <string.h>

/* The fact macros of ops.def, each a designated initialiser (ops.h). */
#define EW .fuse = TL_FUSE_ELEMENTWISE, .inplace = 0x7,
#define MATH(f) .math = #f, .ref1 = f, .vmath = 1,
#define MATH2(f) .math = #f, .ref2 = f, .vmath = 1,
#define VMATH .vmath = 1,
#define FUSE(c) .fuse = TL_FUSE_##c,
#define INPLACE_ROWS .inplace = 1u | TL_INPLACE_ROWS,
#define SIGN(s) .sign = s,
#define HAZARD(n) .hazard = n,
#define WEIGHT(w) .weight = w,
#define NS(t) .elem_ns = t,
#define DOMAIN(d) .domain = d,
#define GRAD(g) .grad = g,
#define NOGRAD(m) .nograd = m,

const tl_op_info tl_ops[TL_OP_COUNT] = {
#define OP(id, name, arity, kind, dr, allowed, required, ...) \
  [TL_OP_##id] = {name, arity, kind, dr, allowed, required, __LINE__, __VA_ARGS__},
#include "ir/ops.def"
#undef OP
};

const char *const tl_fuse_class_names[TL_FUSE_CLASS_COUNT] = {
  [TL_FUSE_NONE] = "", [TL_FUSE_ELEMENTWISE] = "elementwise", [TL_FUSE_INDEX_MAP] = "index-map",
  [TL_FUSE_LITERAL] = "literal", [TL_FUSE_ROW_KERNEL] = "row-kernel",
};

const char *const tl_kind_names[TL_KIND_CONTROL + 1] = {"source", "constant", "elementwise", "reduction",
                                                       "shape", "linalg", "control"};
const char *const tl_attr_names[TL_NATTRS] = {"axis", "keepdims", "dtype", "shape", "perm", "start", "stop",
                                              "step", "range", "fn", "then", "else", "cond", "body", "until",
                                              "out", "max", "carry", "length", "consts", "stack", "trips"};
_Static_assert(TL_A_TRIPS == 1 << (TL_NATTRS - 1), "a name per attribute bit");

int tl_op_lookup(const char *name, size_t n) {
  for (int i = 0; i < TL_OP_COUNT; i++)
    if (strlen(tl_ops[i].name) == n && memcmp(tl_ops[i].name, name, n) == 0)
      return i;
  return -1;
}

/* numpy's table restricted to tlaloc's dtypes: the smallest type that holds
 * both; an f32 cannot hold every i32 exactly, so i32+f32 is f64 in numpy. */
tl_dtype tl_dtype_promote(tl_dtype a, tl_dtype b) {
  if (a == b) return a;
  if (a == TL_BOOL) return b;
  if (b == TL_BOOL) return a;
  if (tl_dtype_is_int(a) && tl_dtype_is_int(b)) return TL_I64;
  if (tl_dtype_is_float(a) && tl_dtype_is_float(b)) return TL_F64;
  return TL_F64; /* one int and one float: i32+f32 and i64+f32 are f64 */
}

void tl_perm_drop_reversal(tl_attrs *a, int r) {
  if (!(a->present & TL_A_PERM) || a->nperm != r) return;
  for (int i = 0; i < r; i++)
    if ((a->perm[i] < 0 ? a->perm[i] + r : a->perm[i]) != r - 1 - i) return;
  a->present &= ~(unsigned)TL_A_PERM;
  a->nperm = 0;
  memset(a->perm, 0, sizeof a->perm);
}

void tl_attrs_init(tl_attrs *a) {
  memset(a, 0, sizeof *a);
  a->lit = -1;
}

uint8_t tl_value_facts(double v) {
  if (isnan(v)) return 0;
  return (uint8_t)((v != 0 ? TL_FACT_NONZERO : 0) | (v > 0 ? TL_FACT_POSITIVE : 0) |
                   (v >= 0 ? TL_FACT_NONNEG : 0) | (v <= 0 ? TL_FACT_NONPOS : 0));
}

uint8_t tl_range_facts(double lo, double hi) {
  uint8_t f = 0;
  if (lo > 0) f |= TL_FACT_POSITIVE | TL_FACT_NONNEG | TL_FACT_NONZERO;
  else if (lo >= 0) f |= TL_FACT_NONNEG;
  if (hi <= 0) f |= TL_FACT_NONPOS;
  if (hi < 0) f |= TL_FACT_NONZERO;
  return f;
}

uint8_t tl_sign_facts(int op, const uint8_t *in, int n, bool same) {
  enum { Z = TL_FACT_NONZERO, P = TL_FACT_POSITIVE, NN = TL_FACT_NONNEG, NP = TL_FACT_NONPOS };
  uint8_t f0 = n > 0 ? in[0] : 0, f1 = n > 1 ? in[1] : 0;
  switch ((tl_sign_rule)tl_ops[op].sign) {
  case TL_SIGN_NONE: return 0;
  case TL_SIGN_NONNEG: return NN;
  case TL_SIGN_POSITIVE: return P | NN | Z;
  case TL_SIGN_NONPOS: return NP;
  case TL_SIGN_KEEP: return f0;
  case TL_SIGN_NONNEG_IF_NONNEG: return f0 & NN;
  case TL_SIGN_CUSTOM: break;
  }
  switch (op) {
  case TL_OP_ADD:
    if ((f0 & P && f1 & NN) || (f1 & P && f0 & NN)) return P | NN | Z;
    return (uint8_t)(((f0 & f1 & NN) ? NN : 0) | ((f0 & f1 & NP) ? NP : 0));
  case TL_OP_MUL:
    if (n == 2 && same) return NN; /* x*x */
    return (f0 & f1 & NN) ? NN : 0;
  case TL_OP_DIV:
    return (f0 & NN && f1 & P) ? NN : 0;
  case TL_OP_MAXIMUM:
    return (uint8_t)((f0 | f1) & (P | NN)) | (((f0 | f1) & P) ? Z : 0);
  case TL_OP_NEG:
    return (uint8_t)(((f0 & Z) ? Z : 0) | ((f0 & NN) ? NP : 0) | ((f0 & NP) ? NN : 0));
  default:
    return 0;
  }
}
