/* ops.c - the op table (expanded from ops.def) and dtype promotion (the
 * dtypes themselves are tensor/tensor.h's). */
#include "ir/ir.h"

#include <string.h>

const tl_op_info tl_ops[TL_OP_COUNT] = {
#define OP(id, name, arity, kind, dr, allowed, required) \
  [TL_OP_##id] = {name, arity, kind, dr, allowed, required},
#include "ir/ops.def"
#undef OP
};

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

void tl_attrs_init(tl_attrs *a) {
  memset(a, 0, sizeof *a);
  a->lit = -1;
}
