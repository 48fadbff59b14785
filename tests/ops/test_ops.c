/* test_ops.c - every op of the op table on every engine, against the
 * reference interpreter (ggml's test-backend-ops is the model).
 *
 * For each op, cases are generated from its table entry: an elementwise op
 * is run on every dtype it admits, on broadcasting, scalar and empty
 * shapes, cast to every dtype; the other kinds have a few hand-written
 * shapes and attributes each (reductions over every axis choice, the shape
 * ops' attributes, matmul's vector and batch forms). Each case runs twice:
 * once on values from the op's domain (ir/ops.def, DOMAIN), once on the
 * awkward ones (0, -0, tiny, huge, inf, NaN, INT_MIN/INT_MAX; huge finite
 * values only for elementwise ops, whose result does not depend on an
 * order of evaluation). Every engine but the interpreter runs each case and
 * is compared with the interpreter: dtype and shape equal, integers and
 * bools exact, floats within a relative tolerance (NaN only against NaN,
 * inf only against the same inf); a case the interpreter refuses at run
 * time must be refused by the engine too.
 *
 * An op with no case fails the test: a new op is covered the moment it has
 * a row in the table (elementwise) or a line in op_cases() (other kinds).
 * Prints one line per op and engine; exit 1 on any failure. */
#include "engine/engine.h"
#include "util/alloc.h"
#include "interp/interp.h"
#include "tests/common/tltest.h"

#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAXCASES = 160, CASELEN = 512 };
static const char *const DT[] = {"bool", "i32", "i64", "f32", "f64"};

typedef struct cases {
  char text[MAXCASES][CASELEN];
  int n;
} cases;

static void add(cases *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(cases *c, const char *fmt, ...) {
  if (c->n >= MAXCASES) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->text[c->n++], CASELEN, fmt, ap);
  va_end(ap);
}

/* The cases of an elementwise op: derived from its arity alone. */
static void elementwise_cases(int op, cases *c) {
  const char *nm = tl_ops[op].name;
  static const char *const un[] = {"[3 33]", "[]", "[0 4]"};
  static const char *const bin[][2] = {{"[3 33]", "[33]"}, {"[3 1]", "[1 5]"}, {"[0 4]", "[4]"}, {"[]", "[2 3]"}};
  for (int d = 0; d < 5; d++) {
    if (op == TL_OP_CAST) {
      for (int t = 0; t < 5; t++) add(c, "(graph t (in x %s [3 33]) (out y (cast x :dtype %s)))", DT[d], DT[t]);
      continue;
    }
    if (tl_ops[op].arity == 1)
      for (int s = 0; s < 3; s++) add(c, "(graph t (in x %s %s) (out y (%s x)))", DT[d], un[s], nm);
    else if (tl_ops[op].arity == 2)
      for (int s = 0; s < 4; s++)
        add(c, "(graph t (in x %s %s) (in z %s %s) (out y (%s x z)))", DT[d], bin[s][0], DT[d], bin[s][1], nm);
    else if (tl_ops[op].arity == 3)
      add(c, "(graph t (in c bool [3 1]) (in x %s [3 5]) (in z %s [5]) (out y (%s c x z)))", DT[d], DT[d], nm);
  }
  /* a weak literal operand and mixed dtypes (promotion) */
  if (tl_ops[op].arity == 2) {
    add(c, "(graph t (in x f32 [4 5]) (out y (%s x 2.5)))", nm);
    add(c, "(graph t (in x i32 [4 5]) (in z f32 [5]) (out y (%s x z)))", nm);
  }
}

/* Hand-written cases of the ops that are not elementwise. Returns false for
 * an op it does not know (the test then fails: add its cases here). */
static bool op_cases(int op, cases *c) {
  const char *nm = tl_ops[op].name;
  switch (tl_ops[op].kind) {
  case TL_KIND_ELEMWISE: elementwise_cases(op, c); return true;
  case TL_KIND_REDUCTION:
    if (op == TL_OP_SOFTMAX || op == TL_OP_LOG_SOFTMAX) {
      for (int d = 0; d < 5; d++) {
        add(c, "(graph t (in x %s [3 33]) (out y (%s x :axis 1)))", DT[d], nm);
        add(c, "(graph t (in x %s [3 33]) (out y (%s x :axis 0)))", DT[d], nm);
        add(c, "(graph t (in x %s [2 3 4]) (out y (%s x :axis 1)))", DT[d], nm);
        add(c, "(graph t (in x %s [4 1]) (out y (%s x)))", DT[d], nm);
        add(c, "(graph t (in x %s [0 3]) (out y (%s x :axis 1)))", DT[d], nm);
      }
      return true;
    }
    for (int d = 0; d < 5; d++) {
      add(c, "(graph t (in x %s [3 33]) (out y (%s x)))", DT[d], nm);
      add(c, "(graph t (in x %s [3 33]) (out y (%s x :axis 1)))", DT[d], nm);
      add(c, "(graph t (in x %s [3 33]) (out y (%s x :axis 0 :keepdims true)))", DT[d], nm);
      add(c, "(graph t (in x %s [2 3 4]) (out y (%s x :axis [0 2])))", DT[d], nm);
      add(c, "(graph t (in x %s [0 4]) (out y (%s x :axis 1)))", DT[d], nm);
      add(c, "(graph t (in x %s [0 4]) (out y (%s x :axis 0)))", DT[d], nm);
    }
    return true;
  case TL_KIND_SOURCE:
    for (int d = 0; d < 5; d++) add(c, "(graph t (in x %s [2 3]) (out y x))", DT[d]);
    return true;
  case TL_KIND_CONTROL:
    for (int d = 1; d < 5; d++) { /* functions typed by their call: symbolic parameters */
      const char *t = DT[d];
      switch (op) {
      case TL_OP_CALL:
        add(c, "(func f (in a %s [n m]) (in b %s [m]) (out s (add a b)) (out p (mul a b))) "
               "(graph t (in x %s [3 4]) (in z %s [4]) (let [s p] (call x z :fn f)) (out y (sub s p)) "
               "(out w (call (neg x) z :fn f :out 1)))", t, t, t, t);
        break;
      case TL_OP_COND:
        add(c, "(func f (in a %s [n]) (out r (add a a))) (func h (in a %s [n]) (out r (mul a a))) "
               "(graph t (in p bool []) (in x %s [5]) (out y (cond p x :then f :else h)) "
               "(out z (cond (not p) (neg x) :then f :else h)))", t, t, t);
        break;
      case TL_OP_LOOP:
        add(c, "(func c (in i i64 []) (in a %s [n]) (out k (lt i 5))) "
               "(func b (in i i64 []) (in a %s [n]) (out i2 (add i 1)) (out a2 (add a (cast i :dtype %s)))) "
               "(graph t (in x %s [4]) (let [i y] (loop 0 x :cond c :body b :max 10)) (out o y) (out k i))", t, t, t, t);
        add(c, "(func c (in i i64 []) (in a %s [n]) (out k (lt i 0))) "
               "(func b (in i i64 []) (in a %s [n]) (out i2 (add i 1)) (out a2 (mul a a))) "
               "(graph t (in x %s [4]) (out y (loop 0 x :cond c :body b :max 10 :out 1)))", t, t, t);
        break;
      case TL_OP_SCAN:
        add(c, "(func f (in c %s [m]) (in x %s [m]) (out c2 (add c x)) (out y (mul c2 c))) "
               "(graph t (in x %s [6 3]) (in c0 %s [3]) (let [c ys] (scan c0 x :body f :carry 1)) (out a c) "
               "(out b ys))", t, t, t, t);
        add(c, "(func f (in c %s [m]) (in x %s [m]) (out c2 (add c x)) (out y (mul c2 c))) "
               "(graph t (in x %s [0 3]) (in c0 %s [3]) (let [c ys] (scan c0 x :body f :carry 1)) (out a c) "
               "(out b ys))", t, t, t, t);
        break;
      default: return false;
      }
    }
    return true;
  case TL_KIND_CONSTANT:
    for (int d = 0; d < 5; d++) {
      if (op == TL_OP_LIT) add(c, "(graph t (in x %s [2 3]) (out y (add x 3)) (out z (mul x 0.5)))", DT[d]);
      else if (op == TL_OP_CONST) add(c, "(graph t (in x %s [3]) (out y (add x (const %s [3] 1 0 -2))))", DT[d], DT[d]);
      else if (op == TL_OP_FILL) add(c, "(graph t (in x %s [2 3]) (out y (add x (fill %s [3] 2))))", DT[d], DT[d]);
      else if (op == TL_OP_ZEROS_LIKE || op == TL_OP_ONES_LIKE) add(c, "(graph t (in x %s [2 3]) (out y (%s x)))", DT[d], nm);
      else if (op == TL_OP_DIM)
        add(c, "(graph t (in x %s [2 3]) (out y (dim x :axis 1)) (out z (add (dim x :axis -2) (sum (cast x :dtype i64)))) "
               "(out w (dim (fill f32 [0 5] 1) :axis 1)))", DT[d]);
      else if (op == TL_OP_IOTA)
        add(c, "(graph t (in x %s [2 3 4]) (out y (iota x :axis 1)) (out z (add (iota x :axis -1) (cast x :dtype i64))) "
               "(out w (mul (iota (fill f32 [37 5] 1) :axis 0) (iota (fill f32 [37 5] 1) :axis 1))))", DT[d]);
      else return false;
    }
    return true;
  case TL_KIND_LINALG:
    if (op != TL_OP_MATMUL) return false;
    for (int d = 0; d < 5; d++) {
      add(c, "(graph t (in a %s [3 4]) (in b %s [4 5]) (out y (matmul a b)))", DT[d], DT[d]);
      add(c, "(graph t (in a %s [2 3 4]) (in b %s [4 5]) (out y (matmul a b)))", DT[d], DT[d]);
      add(c, "(graph t (in a %s [4]) (in b %s [4 5]) (out y (matmul a b)))", DT[d], DT[d]);
      add(c, "(graph t (in a %s [3 4]) (in b %s [4]) (out y (matmul a b)))", DT[d], DT[d]);
      add(c, "(graph t (in a %s [3 0]) (in b %s [0 5]) (out y (matmul a b)))", DT[d], DT[d]);
    }
    return true;
  case TL_KIND_SHAPE:
    for (int d = 0; d < 5; d++) {
      const char *t = DT[d];
      switch (op) {
      case TL_OP_RESHAPE:
        add(c, "(graph t (in x %s [3 4]) (out y (reshape (exp x) :shape [2 6])))", t);
        add(c, "(graph t (in x %s [3 4]) (out y (reshape x :shape [-1])))", t);
        break;
      case TL_OP_TRANSPOSE:
        add(c, "(graph t (in x %s [3 33]) (out y (transpose x)))", t);
        add(c, "(graph t (in x %s [2 3 4]) (out y (transpose x :perm [1 2 0])))", t);
        break;
      case TL_OP_BROADCAST_TO:
        add(c, "(graph t (in x %s [3 1]) (out y (broadcast_to x :shape [2 3 5])))", t);
        break;
      case TL_OP_EXPAND_DIMS:
        add(c, "(graph t (in x %s [3 4]) (out y (expand_dims x :axis 1)))", t);
        break;
      case TL_OP_SQUEEZE:
        add(c, "(graph t (in x %s [3 1 4]) (out y (squeeze x :axis 1)))", t);
        add(c, "(graph t (in x %s [1 3 1]) (out y (squeeze x)))", t);
        break;
      case TL_OP_CONCAT:
        add(c, "(graph t (in x %s [3 4]) (in z %s [2 4]) (out y (concat x z :axis 0)))", t, t);
        add(c, "(graph t (in x %s [3 4]) (in z %s [3 1]) (out y (concat x z x :axis 1)))", t, t);
        break;
      case TL_OP_SLICE:
        add(c, "(graph t (in x %s [3 33]) (out y (slice x :axis 1 :start 1 :stop 30 :step 3)))", t);
        add(c, "(graph t (in x %s [5 4]) (out y (slice x :axis 0 :start -1 :stop -6 :step -2)))", t);
        break;
      case TL_OP_TAKE:
        add(c, "(graph t (in x %s [5 4]) (in i i64 [3]) (out y (take x i :axis 0)))", t);
        add(c, "(graph t (in x %s [5 4]) (in i i32 [2 2]) (out y (take x i :axis 1)))", t);
        break;
      case TL_OP_SLICE_UPDATE:
        add(c, "(graph t (in x %s [3 33]) (in v %s [3 10]) (out y (slice_update x v :axis 1 :start 1 :stop 30 :step 3)))", t, t);
        add(c, "(graph t (in x %s [5 4]) (in v %s [3 4]) (out y (slice_update (neg x) v :axis 0 :start -1 :stop -6 :step -2)))", t, t);
        add(c, "(graph t (in x %s [4 6]) (in v %s [4 2]) (out y (slice_update (zeros_like x) (add v v) :axis -1 :start 2 :stop 4)))", t, t);
        break;
      case TL_OP_SCATTER_ADD:
        add(c, "(graph t (in x %s [5 4]) (in i i64 [3]) (in v %s [3 4]) (out y (scatter_add x i v :axis 0)))", t, t);
        add(c, "(graph t (in x %s [5 4]) (in i i32 [2 2]) (in v %s [5 2 2]) (out y (scatter_add (zeros_like x) i (neg v) :axis 1)))", t, t);
        add(c, "(graph t (in x %s [5 4]) (in i i64 [6]) (in v %s [6]) (out y (scatter_add x i v)))", t, t);
        break;
      default: return false;
      }
    }
    return true;
  }
  return false;
}

/* ---- values ---------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* A value from the op's domain (ints small, so that no op overflows). */
static double domain_value(uint64_t *s, tl_domain d, bool integer) {
  double v;
  switch (d) {
  case TL_DOM_POSITIVE: v = integer ? (double)(rng_next(s) % 5) : uniform(s, 0.1, 4); break;
  case TL_DOM_NEGATIVE: v = integer ? -(double)(1 + rng_next(s) % 5) : uniform(s, -4, -0.1); break;
  case TL_DOM_NONZERO: v = (integer ? (double)(1 + rng_next(s) % 5) : uniform(s, 0.3, 3)) * (rng_next(s) & 1 ? 1 : -1); break;
  case TL_DOM_GT_MINUS1: v = integer ? (double)(rng_next(s) % 5) : uniform(s, -0.9, 3); break;
  case TL_DOM_UNIT: v = integer ? 0.0 : uniform(s, -0.95, 0.95); break;
  case TL_DOM_GT_ONE: v = integer ? (double)(2 + rng_next(s) % 5) : uniform(s, 1.1, 4); break;
  default: v = integer ? (double)((int64_t)(rng_next(s) % 11) - 5) : uniform(s, -3, 3); break;
  }
  return v;
}

/* The awkward values; `order_free` adds huge finite ones (an elementwise op
 * computes each from one operand element, whatever the engine's order). */
static double nasty_value(uint64_t *s, int dt, bool order_free) {
  static const double f[] = {0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 4e-320, INFINITY, -INFINITY, NAN, 0.5, -2.5, 1e30, -1e30, 1e300, 3e38};
  static const double i[] = {0, -1, 1, 2, -7, (double)INT32_MIN, (double)INT32_MAX};
  if (dt == TL_BOOL) return (double)(rng_next(s) & 1);
  if (dt == TL_I32 || dt == TL_I64) return i[rng_next(s) % (sizeof i / sizeof *i)];
  int n = order_free ? (int)(sizeof f / sizeof *f) : 12;
  return f[rng_next(s) % (uint64_t)n];
}

static tl_tensor **make_inputs(const tl_graph *g, int op, bool nasty, uint64_t seed) {
  char err[256];
  tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
  uint64_t s = seed;
  for (int i = 0; i < g->ninputs; i++) {
    const tl_type *t = &g->nodes[g->inputs[i]].type;
    in[i] = tl_tensor_new((tl_dtype)t->dtype, t->rank, t->dims, err, sizeof err);
    const char *name = g->names[g->nodes[g->inputs[i]].name];
    bool index = (op == TL_OP_TAKE || op == TL_OP_SCATTER_ADD) && !strcmp(name, "i");
    for (int64_t k = 0; k < in[i]->numel; k++) {
      if (index) { /* take's indices: in range, negative ones included */
        tl_tensor_set_i64(in[i], k, (int64_t)(rng_next(&s) % 7) - 3);
        continue;
      }
      bool integer = !tl_dtype_is_float((tl_dtype)t->dtype);
      double v = nasty && rng_next(&s) % 3 ? nasty_value(&s, t->dtype, tl_ops[op].kind == TL_KIND_ELEMWISE)
                                           : domain_value(&s, (tl_domain)tl_ops[op].domain, integer);
      if (t->dtype == TL_BOOL) v = v != 0;
      if (integer && t->dtype != TL_BOOL) tl_tensor_set_i64(in[i], k, (int64_t)v);
      else tl_tensor_set_f64(in[i], k, v);
    }
  }
  return in;
}

/* Engine result r against the interpreter's e; NULL, or what differs. */
static const char *differ(const tl_tensor *e, const tl_tensor *r, bool reduces, int64_t *at) {
  *at = -1;
  if (e->dtype != r->dtype || e->rank != r->rank) return "dtype or rank differs";
  for (int k = 0; k < e->rank; k++)
    if (e->dims[k] != r->dims[k]) return "shape differs";
  if (!tl_dtype_is_float((tl_dtype)e->dtype)) {
    for (int64_t i = 0; i < e->numel; i++)
      if (tl_tensor_get_i64(e, i) != tl_tensor_get_i64(r, i)) { *at = i; return "integer value differs"; }
    return NULL;
  }
  /* libmvec is within 4 ulp; a reduction may add in another order */
  double rtol = e->dtype == TL_F32 ? 2e-6 : 1e-13, scale = 0;
  for (int64_t i = 0; i < e->numel; i++) {
    double a = tl_tensor_get_f64(e, i);
    if (isfinite(a)) scale = fmax(scale, fabs(a));
  }
  if (reduces) rtol *= 64;
  for (int64_t i = 0; i < e->numel; i++) {
    double a = tl_tensor_get_f64(e, i), b = tl_tensor_get_f64(r, i);
    if (isnan(a) || isnan(b)) {
      if (isnan(a) != isnan(b)) { *at = i; return "NaN against a number"; }
      continue;
    }
    if (isinf(a) || isinf(b)) {
      if (a != b) { *at = i; return "inf against another value"; }
      continue;
    }
    if (fabs(a - b) > rtol * (fabs(a) + fabs(b)) + (reduces ? rtol * scale : 1e-300)) { *at = i; return "float value differs"; }
  }
  return NULL;
}

typedef struct tally { int run, refused, fail; } tally;

/* One case on one engine: 0 pass (or both refused), 1 fail. */
static int run_case(const tl_engine *eng, const tl_graph *g, int op, bool nasty, uint64_t seed, const char *text,
                    tally *t) {
  char ierr[1024];
  tl_error err = {0};
  tl_tensor **in = make_inputs(g, op, nasty, seed);
  tl_tensor **ref = tl_xcalloc((size_t)g->noutputs + 1, sizeof *ref);
  tl_tensor **got = tl_xcalloc((size_t)g->noutputs + 1, sizeof *got);
  int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
  int bad = 0;
  int irc = tl_interp_run(g, in, syms, ref, ierr, sizeof ierr);
  tl_engine_opts o = tl_engine_opts_default();
  o.use_cache = -1;
  void *p = eng->compile(g, &o, &err);
  if (!p) {
    printf("  FAIL %s: %s\n    compile: %s\n", eng->name, text, err.msg);
    bad = 1;
  } else {
    int rrc = eng->run(p, in, syms, got, &err);
    if (irc && rrc) {
      t->refused++;
    } else if (irc || rrc) {
      printf("  FAIL %s%s: %s\n    %s refused it: %s\n", eng->name, nasty ? " (awkward values)" : "", text,
             irc ? "only the interpreter" : eng->name, irc ? ierr : err.msg);
      bad = 1;
    } else {
      bool reduces = tl_ops[op].kind == TL_KIND_REDUCTION || tl_ops[op].kind == TL_KIND_LINALG;
      for (int i = 0; i < g->noutputs && !bad; i++) {
        int64_t at;
        const char *why = differ(ref[i], got[i], reduces, &at);
        if (why) {
          printf("  FAIL %s%s: %s\n    output %d: %s", eng->name, nasty ? " (awkward values)" : "", text, i, why);
          if (at >= 0) printf(" at element %" PRId64 ": interp %.17g, %s %.17g", at, tl_tensor_get_f64(ref[i], at),
                              eng->name, tl_tensor_get_f64(got[i], at));
          printf("\n");
          bad = 1;
        }
      }
    }
    eng->free(p);
  }
  t->run++;
  t->fail += bad;
  for (int i = 0; i < g->noutputs; i++) {
    tl_tensor_free(ref[i]);
    tl_tensor_free(got[i]);
  }
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_free(in);
  tl_free(ref);
  tl_free(got);
  tl_free(syms);
  return bad;
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL; /* an op name: run that op alone */
  static cases c;
  int fails = 0, ops = 0, ncases = 0;
  char skipped[600] = "";
  for (int op = 0; op < TL_OP_COUNT; op++) {
    if (only && strcmp(only, tl_ops[op].name)) continue;
    c.n = 0;
    if (!op_cases(op, &c) || c.n == 0) {
      printf("FAIL %-13s no test cases: add them to op_cases() in tests/ops/test_ops.c\n", tl_ops[op].name);
      fails++;
      continue;
    }
    ops++;
    for (int e = 0; tl_engine_at(e); e++) {
      const tl_engine *eng = tl_engine_at(e);
      if (!strcmp(eng->name, "interp")) continue; /* the reference */
      char why[512];
      if (eng->available && !eng->available(why, sizeof why)) {
        /* once per engine (the first op run): "gpu: skipped: no CUDA driver (...)" */
        size_t nl = strlen(eng->name);
        const char *r = !strncmp(why, eng->name, nl) && !strncmp(why + nl, ": ", 2) ? why + nl + 2 : why;
        if (ops == 1) {
          printf("%s: skipped: %s\n", eng->name, r);
          size_t u = strlen(skipped);
          snprintf(skipped + u, sizeof skipped - u, "%s%s (%s)", u ? ", " : "", eng->name, r);
        }
        continue;
      }
      tally t = {0, 0, 0};
      int typed = 0;
      for (int k = 0; k < c.n; k++) {
        char *diag = NULL;
        tl_graph *g = tlt_parse(c.text[k], &diag);
        tl_free(diag);
        if (!g) continue; /* a dtype the op does not admit: the type checker says so */
        typed++;
        for (int nasty = 0; nasty < 2; nasty++)
          run_case(eng, g, op, nasty, 0x5eed + (uint64_t)k * 31 + (uint64_t)nasty, c.text[k], &t);
        tl_graph_free(g);
      }
      if (typed == 0) {
        printf("FAIL %-13s no case type-checks\n", tl_ops[op].name);
        fails++;
        continue;
      }
      ncases += t.run;
      fails += t.fail;
      printf("%s %-13s %-7s %3d runs (%d typed cases, %d refused by both)\n", t.fail ? "FAIL" : "ok  ",
             tl_ops[op].name, eng->name, t.run, typed, t.refused);
    }
  }
  printf("every op on every engine: %d ops, %d runs, %d failed\n", ops, ncases, fails);
  if (skipped[0]) printf("engines skipped here: %s\n", skipped);
  return fails ? 1 : 0;
}
