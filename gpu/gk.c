/* gk.c - building kernel descriptions (gk.h): instructions appended in
 * program order, equal value instructions merged within a scope, integer
 * constants folded; and the checker and printer of a finished kernel. */
#include "gpu/gk.h"

#include "tensor/tensor.h"
#include "util/util.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gk_math_names[GK_MATH_COUNT] = {
    "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "erf", "erfc", "pow", "fmod",
    "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "cbrt", "atan2", "hypot"};

int gk_math_lookup(const char *libm_name) {
  for (int i = 0; i < GK_MATH_COUNT; i++)
    if (!strcmp(gk_math_names[i], libm_name)) return i;
  return -1;
}

gk_ty gk_ty_of_dtype(int dtype) {
  switch (dtype) {
  case TL_BOOL: return GK_I1;
  case TL_I32: return GK_I32;
  case TL_I64: return GK_I64;
  case TL_F32: return GK_F32;
  default: return GK_F64;
  }
}

size_t gk_ty_size(gk_ty ty) {
  switch (ty) {
  case GK_I1: return 1;
  case GK_I32: case GK_F32: return 4;
  case GK_I64: case GK_F64: return 8;
  default: return 0;
  }
}

gk_kernel *gk_new(const char *name, int threads) {
  gk_kernel *k = tl_xcalloc(1, sizeof *k);
  snprintf(k->name, sizeof k->name, "%s", name);
  k->launch.threads = threads;
  k->nowrite = -1;
  k->align_base = -1;
  k->memocap = 256;
  k->memo = tl_xmalloc(k->memocap * sizeof *k->memo);
  memset(k->memo, 0xff, k->memocap * sizeof *k->memo);
  return k;
}

void gk_free(gk_kernel *k) {
  if (!k) return;
  tl_free(k->ins);
  tl_free(k->vars);
  tl_free(k->bufs);
  tl_free(k->buf_written);
  tl_free(k->syms);
  tl_free(k->open);
  tl_free(k->closed);
  tl_free(k->memo);
  tl_free(k);
}

gk_ty gk_type(const gk_kernel *k, int32_t v) {
  assert(v >= 0 && v < k->nins);
  return (gk_ty)k->ins[v].ty;
}

static bool visible(const gk_kernel *k, int32_t v) {
  if (v < 0 || v >= k->nins) return false;
  int32_t s = k->ins[v].scope;
  return s < 0 || !k->closed[s];
}

static int32_t cur_scope(const gk_kernel *k) { return k->nopen ? k->open[k->nopen - 1] : -1; }

static int32_t append(gk_kernel *k, gk_ins in) {
  if (k->nins == k->capins) {
    k->capins = k->capins ? 2 * k->capins : 64;
    k->ins = tl_xrealloc(k->ins, (size_t)k->capins * sizeof *k->ins);
    k->closed = tl_xrealloc(k->closed, (size_t)k->capins);
  }
  in.scope = cur_scope(k);
  k->closed[k->nins] = 0;
  k->ins[k->nins] = in;
  return k->nins++;
}

/* ---- merging equal value instructions ------------------------------------ */

static uint64_t ins_hash(const gk_ins *x) {
  uint64_t h = 1469598103934665603ull;
  const int64_t f[8] = {x->op, x->ty, x->aux, x->a, x->b, x->c, x->d, x->k.i};
  for (int i = 0; i < 8; i++) {
    h ^= (uint64_t)f[i];
    h *= 1099511628211ull;
    h ^= h >> 29;
  }
  return h;
}

static bool ins_same(const gk_ins *x, const gk_ins *y) {
  return x->op == y->op && x->ty == y->ty && x->aux == y->aux && x->a == y->a && x->b == y->b && x->c == y->c &&
         x->d == y->d && x->k.i == y->k.i;
}

static void memo_grow(gk_kernel *k) {
  uint32_t cap = k->memocap * 2;
  int32_t *m = tl_xmalloc(cap * sizeof *m);
  memset(m, 0xff, cap * sizeof *m);
  for (uint32_t i = 0; i < k->memocap; i++) {
    int32_t v = k->memo[i];
    if (v < 0) continue;
    uint32_t j = (uint32_t)ins_hash(&k->ins[v]) & (cap - 1);
    while (m[j] >= 0) j = (j + 1) & (cap - 1);
    m[j] = v;
  }
  tl_free(k->memo);
  k->memo = m;
  k->memocap = cap;
}

/* The value instruction x: an equal one that is still visible, else new.
 * Entries of closed scopes stay in the table (their slot is reused when a
 * newer equal instruction replaces them). */
static int32_t value(gk_kernel *k, gk_ins x) {
  x.scope = 0;
  if (2 * (k->memon + 1) > k->memocap) memo_grow(k);
  uint32_t j = (uint32_t)ins_hash(&x) & (k->memocap - 1);
  int32_t stale = -1;
  while (k->memo[j] >= 0) {
    gk_ins y = k->ins[k->memo[j]];
    y.scope = 0;
    if (ins_same(&x, &y)) {
      if (visible(k, k->memo[j])) return k->memo[j];
      stale = (int32_t)j;
    }
    j = (j + 1) & (k->memocap - 1);
  }
  int32_t v = append(k, x);
  if (stale >= 0) k->memo[stale] = v;
  else {
    k->memo[j] = v;
    k->memon++;
  }
  return v;
}

static void check_operand(const gk_kernel *k, int32_t v) {
  /* a broken invariant of the builder, not a user error */
  if (!visible(k, v)) {
    fprintf(stderr, "%s:%d: gk: kernel %s: operand %d is not visible at instruction %d\n", __FILE__, __LINE__,
            k->name, v, k->nins);
    abort();
  }
}

static bool is_const(const gk_kernel *k, int32_t v, int64_t *out) {
  const gk_ins *x = &k->ins[v];
  if (x->op != GK_CONST || x->ty == GK_F32 || x->ty == GK_F64) return false;
  *out = x->k.i;
  return true;
}

/* ---- value builders -------------------------------------------------------- */

static int64_t wrap(gk_ty ty, int64_t v) {
  if (ty == GK_I32) return (int32_t)(uint32_t)(uint64_t)v;
  if (ty == GK_I1) return v & 1;
  return v;
}

int32_t gk_ci(gk_kernel *k, gk_ty ty, int64_t v) {
  gk_ins x = {.op = GK_CONST, .ty = (uint8_t)ty};
  x.k.i = wrap(ty, v);
  return value(k, x);
}

int32_t gk_cf(gk_kernel *k, gk_ty ty, double v) {
  gk_ins x = {.op = GK_CONST, .ty = (uint8_t)ty};
  x.k.f = ty == GK_F32 ? (double)(float)v : v;
  return value(k, x);
}

int32_t gk_sreg_v(gk_kernel *k, gk_sreg r) {
  gk_ins x = {.op = GK_SREG, .ty = GK_I64, .aux = (uint8_t)r};
  return value(k, x);
}

int32_t gk_sym(gk_kernel *k, int sym) {
  int i = 0;
  while (i < k->nsyms && k->syms[i] != sym) i++;
  if (i == k->nsyms) {
    TL_GROW(k->syms, k->nsyms, k->capsyms);
    k->syms[k->nsyms++] = sym;
  }
  gk_ins x = {.op = GK_SYM, .ty = GK_I64, .a = sym};
  return value(k, x);
}

int32_t gk_bin_v(gk_kernel *k, gk_bin op, int32_t a, int32_t b) {
  check_operand(k, a);
  check_operand(k, b);
  gk_ty ty = gk_type(k, a);
  assert(ty == gk_type(k, b));
  int64_t ca = 0, cb = 0;
  bool ka = is_const(k, a, &ca), kb = is_const(k, b, &cb);
  if (op <= GK_LSHR) { /* integer folding */
    if (ka && kb) {
      uint64_t ua = (uint64_t)ca, ub = (uint64_t)cb;
      switch (op) {
      case GK_ADD: return gk_ci(k, ty, (int64_t)(ua + ub));
      case GK_SUB: return gk_ci(k, ty, (int64_t)(ua - ub));
      case GK_MUL: return gk_ci(k, ty, (int64_t)(ua * ub));
      case GK_AND: return gk_ci(k, ty, ca & cb);
      case GK_OR: return gk_ci(k, ty, ca | cb);
      case GK_XOR: return gk_ci(k, ty, ca ^ cb);
      case GK_SDIV: if (cb != 0 && !(cb == -1 && ca == INT64_MIN)) return gk_ci(k, ty, ca / cb); break;
      case GK_SREM: if (cb != 0 && !(cb == -1 && ca == INT64_MIN)) return gk_ci(k, ty, ca % cb); break;
      default: break;
      }
    }
    if (op == GK_ADD && kb && cb == 0) return a;
    if (op == GK_ADD && ka && ca == 0) return b;
    if (op == GK_SUB && kb && cb == 0) return a;
    if (op == GK_MUL && kb && cb == 1) return a;
    if (op == GK_MUL && ka && ca == 1) return b;
    if (op == GK_MUL && ((kb && cb == 0) || (ka && ca == 0))) return gk_ci(k, ty, 0);
    if (op == GK_SDIV && kb && cb == 1) return a;
    if (op == GK_SREM && kb && cb == 1) return gk_ci(k, ty, 0);
    if (ty == GK_I1 && op == GK_AND && ka) return ca ? b : gk_ci(k, ty, 0);
    if (ty == GK_I1 && op == GK_AND && kb) return cb ? a : gk_ci(k, ty, 0);
    if (ty == GK_I1 && op == GK_OR && ka) return ca ? gk_ci(k, ty, 1) : b;
    if (ty == GK_I1 && op == GK_OR && kb) return cb ? gk_ci(k, ty, 1) : a;
  }
  gk_ins x = {.op = GK_BIN, .ty = (uint8_t)ty, .aux = (uint8_t)op, .a = a, .b = b};
  return value(k, x);
}

int32_t gk_fneg(gk_kernel *k, int32_t a) {
  check_operand(k, a);
  gk_ins x = {.op = GK_FNEG, .ty = (uint8_t)gk_type(k, a), .a = a};
  return value(k, x);
}

int32_t gk_icmp_v(gk_kernel *k, gk_icmp p, int32_t a, int32_t b) {
  check_operand(k, a);
  check_operand(k, b);
  int64_t ca = 0, cb = 0;
  if (is_const(k, a, &ca) && is_const(k, b, &cb)) {
    bool r = p == GK_IEQ ? ca == cb : p == GK_INE ? ca != cb : p == GK_ISLT ? ca < cb : p == GK_ISLE ? ca <= cb
           : p == GK_ISGT ? ca > cb : ca >= cb;
    return gk_ci(k, GK_I1, r);
  }
  gk_ins x = {.op = GK_ICMP, .ty = GK_I1, .aux = (uint8_t)p, .a = a, .b = b};
  return value(k, x);
}

int32_t gk_fcmp_v(gk_kernel *k, gk_fcmp p, int32_t a, int32_t b) {
  check_operand(k, a);
  check_operand(k, b);
  gk_ins x = {.op = GK_FCMP, .ty = GK_I1, .aux = (uint8_t)p, .a = a, .b = b};
  return value(k, x);
}

int32_t gk_select(gk_kernel *k, int32_t c, int32_t a, int32_t b) {
  check_operand(k, c);
  check_operand(k, a);
  check_operand(k, b);
  assert(gk_type(k, c) == GK_I1 && gk_type(k, a) == gk_type(k, b));
  int64_t cc = 0;
  if (is_const(k, c, &cc)) return cc ? a : b;
  if (a == b) return a;
  gk_ins x = {.op = GK_SELECT, .ty = (uint8_t)gk_type(k, a), .a = c, .b = a, .c = b};
  return value(k, x);
}

int32_t gk_conv_v(gk_kernel *k, gk_conv kind, int32_t a, gk_ty to) {
  check_operand(k, a);
  int64_t ca = 0;
  if (is_const(k, a, &ca)) {
    gk_ty from = gk_type(k, a);
    if (kind == GK_SEXT) return gk_ci(k, to, from == GK_I1 ? -(ca & 1) : ca);
    if (kind == GK_ZEXT) return gk_ci(k, to, from == GK_I1 ? (ca & 1) : from == GK_I32 ? (int64_t)(uint32_t)ca : ca);
    if (kind == GK_TRUNC) return gk_ci(k, to, ca);
  }
  gk_ins x = {.op = GK_CONV, .ty = (uint8_t)to, .aux = (uint8_t)kind, .a = a};
  return value(k, x);
}

int32_t gk_intr_v(gk_kernel *k, gk_intr f, int32_t a, int32_t b, int32_t c) {
  check_operand(k, a);
  if (b >= 0) check_operand(k, b);
  if (c >= 0) check_operand(k, c);
  gk_ins x = {.op = GK_INTR, .ty = (uint8_t)gk_type(k, a), .aux = (uint8_t)f, .a = a, .b = b, .c = c};
  return value(k, x);
}

int32_t gk_math_v(gk_kernel *k, gk_math f, int32_t a, int32_t b) {
  check_operand(k, a);
  if (b >= 0) check_operand(k, b);
  gk_ins x = {.op = GK_MATH, .ty = (uint8_t)gk_type(k, a), .aux = (uint8_t)f, .a = a, .b = b, .c = -1};
  return value(k, x);
}

static int param_buf(gk_kernel *k, int32_t buf, bool write) {
  if (k->is_const && k->is_const[buf]) return -1;
  int i = 0;
  while (i < k->nbufs && k->bufs[i] != buf) i++;
  if (i == k->nbufs) {
    if (k->nbufs == k->capbufs) {
      k->capbufs = k->capbufs ? 2 * k->capbufs : 8;
      k->bufs = tl_xrealloc(k->bufs, (size_t)k->capbufs * sizeof *k->bufs);
      k->buf_written = tl_xrealloc(k->buf_written, (size_t)k->capbufs);
    }
    k->bufs[k->nbufs] = buf;
    k->buf_written[k->nbufs++] = 0;
  }
  if (write) k->buf_written[i] = 1;
  return i;
}

/* The alignment a load or store at idx may assume: a run of align_vec
 * elements (at most 16 bytes) at the kernel's aligned base index, else
 * the element's own. */
static int align_of(const gk_kernel *k, int32_t idx, int dtype) {
  int es = (int)tl_dtype_size((tl_dtype)dtype), a = es;
  if (idx == k->align_base && k->align_vec > 1) {
    a = es * k->align_vec;
    if (a > 16) a = 16;
  }
  return a;
}

int32_t gk_load(gk_kernel *k, int32_t buf, int dtype, int32_t idx) {
  check_operand(k, idx);
  assert(gk_type(k, idx) == GK_I64);
  param_buf(k, buf, false);
  gk_ins x = {.op = GK_LOAD, .ty = (uint8_t)gk_ty_of_dtype(dtype), .aux = (uint8_t)dtype, .a = buf, .b = idx,
              .c = align_of(k, idx, dtype)};
  if (buf == k->nowrite) return append(k, x); /* the kernel stores to it: never merged */
  return value(k, x);
}

void gk_store(gk_kernel *k, int32_t buf, int dtype, int32_t idx, int32_t v) {
  check_operand(k, idx);
  check_operand(k, v);
  assert(gk_type(k, v) == gk_ty_of_dtype(dtype));
  param_buf(k, buf, true);
  gk_ins x = {.op = GK_STORE, .aux = (uint8_t)dtype, .a = buf, .b = idx, .c = v, .d = align_of(k, idx, dtype)};
  append(k, x);
}

int32_t gk_shm(gk_kernel *k, gk_ty ty, int32_t n) {
  assert(k->nshm < 8);
  k->shm_ty[k->nshm] = (uint8_t)ty;
  k->shm_n[k->nshm] = n;
  return k->nshm++;
}

int32_t gk_shload(gk_kernel *k, int32_t arr, int32_t idx) {
  check_operand(k, idx);
  gk_ins x = {.op = GK_SHLOAD, .ty = k->shm_ty[arr], .a = arr, .b = idx};
  return append(k, x);
}

void gk_shstore(gk_kernel *k, int32_t arr, int32_t idx, int32_t v) {
  check_operand(k, idx);
  check_operand(k, v);
  assert(gk_type(k, v) == k->shm_ty[arr]);
  gk_ins x = {.op = GK_SHSTORE, .a = arr, .b = idx, .c = v};
  append(k, x);
}

int32_t gk_shfl_xor(gk_kernel *k, int32_t v, int mask) {
  check_operand(k, v);
  k->uses_shuffles = true;
  gk_ins x = {.op = GK_SHFL, .ty = (uint8_t)gk_type(k, v), .a = v};
  x.k.i = mask;
  return append(k, x);
}

int32_t gk_var(gk_kernel *k, gk_ty ty) {
  TL_GROW(k->vars, k->nvars, k->capvars);
  k->vars[k->nvars] = (uint8_t)ty;
  return k->nvars++;
}

int32_t gk_get(gk_kernel *k, int32_t var) {
  gk_ins x = {.op = GK_GET, .ty = k->vars[var], .a = var};
  return append(k, x);
}

void gk_set(gk_kernel *k, int32_t var, int32_t v) {
  check_operand(k, v);
  assert(gk_type(k, v) == k->vars[var]);
  gk_ins x = {.op = GK_SET, .a = var, .b = v};
  append(k, x);
}

static void open_scope(gk_kernel *k, int32_t at) {
  TL_GROW(k->open, k->nopen, k->capopen);
  k->open[k->nopen++] = at;
}

void gk_loop(gk_kernel *k, int32_t var, int32_t lo, int32_t hi, int32_t step) {
  check_operand(k, lo);
  check_operand(k, hi);
  check_operand(k, step);
  assert(k->vars[var] == GK_I64 && gk_type(k, lo) == GK_I64 && gk_type(k, hi) == GK_I64);
  gk_ins x = {.op = GK_LOOP, .a = var, .b = lo, .c = hi, .d = step};
  open_scope(k, append(k, x));
}

void gk_if(gk_kernel *k, int32_t cond) {
  check_operand(k, cond);
  assert(gk_type(k, cond) == GK_I1);
  gk_ins x = {.op = GK_IF, .a = cond};
  open_scope(k, append(k, x));
}

void gk_end(gk_kernel *k) {
  assert(k->nopen > 0);
  gk_ins x = {.op = GK_END};
  int32_t s = k->open[k->nopen - 1];
  x.a = s;
  append(k, x);
  k->nopen--;
  k->closed[s] = 1;
}

void gk_barrier(gk_kernel *k) {
  k->uses_barriers = true;
  gk_ins x = {.op = GK_BARRIER};
  append(k, x);
}

void gk_err(gk_kernel *k, int64_t code) {
  gk_ins x = {.op = GK_ERR};
  x.k.i = code;
  append(k, x);
}

/* ---- checking and printing ------------------------------------------------ */

static bool is_float(gk_ty t) { return t == GK_F32 || t == GK_F64; }

int gk_verify(const gk_kernel *k, char *err, size_t n) {
  int32_t *stack = tl_xmalloc(((size_t)k->nins + 1) * sizeof *stack);
  uint8_t *open = tl_xcalloc((size_t)k->nins + 1, 1);
  int depth = 0, rc = 0;
#define BAD(...) do { snprintf(err, n, __VA_ARGS__); rc = -1; goto done; } while (0)
#define USE(v) do { int32_t v_ = (v); \
    if (v_ < 0 || v_ >= i) BAD("kernel %s: instruction %d uses %d, not defined before it", k->name, i, v_); \
    if (k->ins[v_].scope >= 0 && !open[k->ins[v_].scope]) BAD("kernel %s: instruction %d uses %d out of its scope", k->name, i, v_); \
    if (k->ins[v_].op >= GK_STORE) BAD("kernel %s: instruction %d uses statement %d as a value", k->name, i, v_); \
  } while (0)
  for (int32_t i = 0; i < k->nins; i++) {
    const gk_ins *x = &k->ins[i];
    if (x->scope != (depth ? stack[depth - 1] : -1)) BAD("kernel %s: instruction %d has the wrong scope", k->name, i);
    switch (x->op) {
    case GK_CONST: case GK_SREG: case GK_SYM: break;
    case GK_BIN:
      USE(x->a); USE(x->b);
      if (k->ins[x->a].ty != x->ty || k->ins[x->b].ty != x->ty || (x->aux >= GK_FADD) != is_float((gk_ty)x->ty))
        BAD("kernel %s: instruction %d: operand types", k->name, i);
      break;
    case GK_FNEG: USE(x->a); break;
    case GK_ICMP: case GK_FCMP: USE(x->a); USE(x->b); break;
    case GK_SELECT: USE(x->a); USE(x->b); USE(x->c); break;
    case GK_CONV: case GK_SHFL: case GK_SHLOAD: USE(x->op == GK_SHLOAD ? x->b : x->a); break;
    case GK_INTR: case GK_MATH:
      USE(x->a);
      if (x->b >= 0) USE(x->b);
      if (x->op == GK_INTR && x->c >= 0) USE(x->c);
      break;
    case GK_LOAD: USE(x->b); break;
    case GK_GET: if (x->a < 0 || x->a >= k->nvars) BAD("kernel %s: instruction %d: no variable %d", k->name, i, x->a); break;
    case GK_STORE: case GK_SHSTORE: USE(x->b); USE(x->c); break;
    case GK_SET: USE(x->b); break;
    case GK_LOOP: case GK_IF:
      if (x->op == GK_LOOP) { USE(x->b); USE(x->c); USE(x->d); } else USE(x->a);
      stack[depth++] = i;
      open[i] = 1;
      break;
    case GK_END:
      if (!depth || x->a != stack[depth - 1]) BAD("kernel %s: instruction %d: END does not close %d", k->name, i, x->a);
      open[stack[--depth]] = 0;
      break;
    case GK_BARRIER: case GK_ERR: break;
    default: BAD("kernel %s: instruction %d: unknown op %d", k->name, i, x->op);
    }
  }
  if (depth) BAD("kernel %s: %d LOOP/IF not closed", k->name, depth);
done:
#undef USE
#undef BAD
  tl_free(stack);
  tl_free(open);
  return rc;
}

static const char *const op_names[GK_OP_COUNT] = {
  "const", "sreg", "sym", "bin", "fneg", "icmp", "fcmp", "select", "conv", "intr", "math", "load", "shload",
  "shfl", "get", "store", "shstore", "set", "loop", "if", "end", "barrier", "err"};
static const char *const ty_names[] = {"void", "i1", "i32", "i64", "f32", "f64"};

char *gk_print(const gk_kernel *k) {
  tl_buf b = {0};
  tl_buf_printf(&b, "kernel %s: %d threads, %d vars, %d shared arrays, %d buffers, %d symbols\n", k->name,
                k->launch.threads, k->nvars, k->nshm, k->nbufs, k->nsyms);
  int depth = 0;
  for (int32_t i = 0; i < k->nins; i++) {
    const gk_ins *x = &k->ins[i];
    if (x->op == GK_END) depth--;
    tl_buf_printf(&b, "%5d %*s%s", i, 2 * depth, "", op_names[x->op]);
    if (x->op < GK_STORE) tl_buf_printf(&b, ".%s", ty_names[x->ty]);
    if (x->op == GK_CONST) {
      if (is_float((gk_ty)x->ty)) tl_buf_printf(&b, " %.17g", x->k.f);
      else tl_buf_printf(&b, " %lld", (long long)x->k.i);
    } else {
      tl_buf_printf(&b, " aux=%d a=%d b=%d c=%d d=%d", x->aux, x->a, x->b, x->c, x->d);
      if (x->op == GK_SHFL || x->op == GK_ERR) tl_buf_printf(&b, " k=%lld", (long long)x->k.i);
    }
    tl_buf_printf(&b, "\n");
    if (x->op == GK_LOOP || x->op == GK_IF) depth++;
  }
  return b.s;
}
