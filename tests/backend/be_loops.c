/* be_loops.c - the loop structure of kernels, part of be-diff:
 *  - elementwise kernels merge adjacent dims into one loop exactly when
 *    every access allows it (be_ew_loops: loop counts of chosen kernels),
 *    and compute the interpreter's values either way;
 *  - reductions and softmax over a leading or middle axis (column mode,
 *    chunks of 1024 columns) and over short or long symbolic rows (both
 *    loop versions), NaN and infinities included;
 *  - matmul reads a transposed operand through BLAS's trans flag (no copy
 *    kernel), takes gemv for one row or one column, and folds a batch that
 *    shares its right operand into one product;
 *  - a root program's kernels carry no run-time overlap checks.
 * Every case runs on one thread and on two (sizes above the split
 * threshold where it matters). */
#include "backend/be_internal.h"
#include "util/alloc.h"
#include "interp/interp.h"
#include "tests/common/tltest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);
extern int be_compare_into;

typedef struct lcase {
  const char *name, *text;
  int64_t syms[4]; /* symbol values, in order of appearance */
  int loops;       /* loops of the kernel writing output 0 (its first part for a concat); -1: not checked */
  int special;     /* inputs get NaN and infinities */
} lcase;

/* NaN, +inf and -inf at scattered places of a float input (be_pass.c too). */
void be_add_specials(tl_tensor *t);
void be_add_specials(tl_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++) {
    double v = i % 17 == 3 ? NAN : i % 23 == 5 ? INFINITY : i % 29 == 7 ? -INFINITY : 0;
    if (v == 0) continue;
    if (t->dtype == TL_F32) ((float *)t->data)[i] = (float)v;
    else if (t->dtype == TL_F64) ((double *)t->data)[i] = v;
  }
}

/* 1 when g's module as emitted (before LLVM's passes) holds the text
 * needle, 0 when not, -1 on error (be_short.c too) */
int be_emitted_has(const tl_graph *g, const char *needle, char *err, size_t n);
int be_emitted_has(const tl_graph *g, const char *needle, char *err, size_t n) {
  be_plan pl;
  if (be_plan_build(&pl, g, err, n)) return -1;
  LLVMContextRef cx = LLVMContextCreate();
  LLVMTargetMachineRef tm = be_host_tm(1);
  tl_error e = {0};
  LLVMModuleRef m = tm ? be_emit_module(&pl, cx, tm, "l", "tlk_main", 1, BE_SPLIT_ELEMS, &e) : NULL;
  if (!m) tl_error_to(&e, err, n);
  int r = -1;
  if (m) {
    char *s = LLVMPrintModuleToString(m);
    r = strstr(s, needle) != NULL;
    LLVMDisposeMessage(s);
    LLVMDisposeModule(m);
  }
  if (tm) LLVMDisposeTargetMachine(tm);
  LLVMContextDispose(cx);
  be_plan_free(&pl);
  return r;
}

/* Loops of the kernel that writes output 0, or -1 when it is not an
 * elementwise kernel. */
static int out_loops(const tl_graph *g, char *err, size_t n) {
  be_plan pl;
  int r = -1;
  if (be_plan_build(&pl, g, err, n) == 0)
    for (int k = 0; k < pl.nks && r < 0; k++)
      if (pl.ks[k].out == pl.out_buf[0] && pl.ks[k].kind == BE_K_EW) {
        be_loops l;
        be_ew_loops(&pl, &pl.ks[k], &l);
        r = l.n;
      }
  be_plan_free(&pl);
  return r;
}

/* streams: 1 the module must have streaming stores, -1 none, 0 unchecked */
static int run_case(const lcase *c, int streams, int verbose) {
  char *diag = NULL, err[512];
  tl_graph *g = tlt_parse(c->text, &diag);
  if (!g) {
    printf("FAIL %s: parse: %s\n", c->name, diag);
    tl_free(diag);
    return 1;
  }
  tl_free(diag);
  int bad = 0;
  if (c->loops >= 0) {
    int l = out_loops(g, err, sizeof err);
    if (l != c->loops) {
      printf("FAIL %s: %d loops, expected %d\n", c->name, l, c->loops);
      bad = 1;
    }
  }
  if (streams) {
    int h = be_emitted_has(g, "!nontemporal", err, sizeof err);
    if (h != (streams > 0)) {
      printf("FAIL %s: %s\n", c->name,
             h < 0 ? err : h ? "streaming stores where none were expected" : "no streaming stores");
      bad = 1;
    }
  }
  int64_t syms[4] = {c->syms[0], c->syms[1], c->syms[2], c->syms[3]};
  tl_tensor *in[4] = {0};
  if (tl_random_inputs(g, in, syms, 5, err, sizeof err)) {
    printf("FAIL %s: inputs: %s\n", c->name, err);
    bad = 1;
  } else {
    if (c->special)
      for (int i = 0; i < g->ninputs; i++) be_add_specials(in[i]);
    be_options o = be_options_default();
    o.use_cache = 0;
    int wrong = 0;
    for (int th = 1; th <= 2 && !wrong; th++) {
      char what[300];
      snprintf(what, sizeof what, "%s (%d thread%s)", c->name, th, th > 1 ? "s" : "");
      o.threads = th;
      wrong = be_compare_opts(g, in, syms, what, verbose, &o, NULL);
      if (streams > 0 && !wrong) { /* the streaming stores run only into the caller's buffers */
        be_compare_into = 1;
        strcat(what, " into buffers");
        wrong = be_compare_opts(g, in, syms, what, verbose, &o, NULL);
        be_compare_into = 0;
      }
    }
    bad |= wrong;
  }
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_graph_free(g);
  return bad;
}

static const lcase ew_cases[] = {
  {"same shape", "(graph l (in x f32 [r c]) (in y f32 [r c]) (out z (exp (add x y))))", {7, 37}, 1, 0},
  {"same shape, rank 3", "(graph l (in x f64 [a b c]) (out z (cos x)))", {3, 5, 37}, 1, 0},
  {"scalar operands", "(graph l (in x f32 [r c]) (in s f32 []) (out z (add (mul x 2.0) s)))", {9, 13}, 1, 0},
  {"[1 1] operand", "(graph l (in x f32 [r c]) (in s f32 [1 1]) (out z (sub x s)))", {9, 13}, 1, 0},
  {"row broadcast [c]", "(graph l (in x f32 [r c]) (in b f32 [c]) (out z (add x b)))", {9, 13}, 2, 0},
  {"row broadcast [1 c]", "(graph l (in x f32 [r c]) (in b f32 [1 c]) (out z (add x b)))", {9, 13}, 2, 0},
  {"column broadcast", "(graph l (in x f32 [r c]) (in m f32 [r 1]) (out z (exp (sub x m))))", {9, 13}, 2, 0},
  {"broadcast over the leading dim only", "(graph l (in x f32 [a b c]) (in y f32 [b c]) (out z (mul x y)))",
   {3, 4, 21}, 2, 0},
  {"transpose", "(graph l (in x f32 [a b]) (out z (exp (transpose x))))", {9, 13}, 2, 0},
  {"transpose of the leading dims", "(graph l (in x f32 [a b c]) (out z (neg (transpose x :perm [1 0 2]))))",
   {3, 4, 21}, 3, 0},
  {"slice step 1 on the outer dim", "(graph l (in x f32 [9 13]) (out z (exp (slice x :axis 0 :start 2))))",
   {0}, 1, 0},
  {"slice on the inner dim", "(graph l (in x f32 [9 13]) (out z (exp (slice x :axis 1 :start 1))))", {0}, 2, 0},
  {"slice step 2 on the outer dim", "(graph l (in x f32 [9 13]) (out z (exp (slice x :axis 0 :step 2))))",
   {0}, 2, 0},
  {"unit dims", "(graph l (in x f32 [r c]) (out z (exp (expand_dims x :axis 1))))", {9, 13}, 1, 0},
  {"squeeze", "(graph l (in x f32 [r 1 c]) (out z (exp (squeeze x :axis 1))))", {9, 13}, 1, 0},
  {"broadcast_to", "(graph l (in x f32 [c]) (out z (exp (broadcast_to x :shape [r c]))))", {9, 13}, 2, 0},
  {"reshape alias", "(graph l (in x f32 [r c]) (let t (exp x)) (out z (neg (reshape t :shape [c r]))))",
   {9, 13}, 1, 0},
  {"take rows", "(graph l (in x f32 [r c]) (in i i64 [k]) (out z (exp (take x i :axis 0))))", {5, 13, 7}, 2, 0},
  {"take columns", "(graph l (in x f32 [r c]) (in i i32 [k]) (out z (exp (take x i :axis 1))))", {5, 13, 7}, 2,
   0},
  {"flat take", "(graph l (in x f32 [r c]) (in i i64 [k 3]) (out z (exp (take x i))))", {5, 13, 7}, 2, 0},
  {"concat on the outer axis", "(graph l (in x f32 [9 c]) (in y f32 [4 c]) (out z (concat (exp x) (neg y) :axis 0)))",
   {13}, 1, 0},
  {"concat on the inner axis", "(graph l (in x f32 [r 13]) (in y f32 [r 4]) (out z (concat (exp x) (neg y) :axis 1)))",
   {9}, 2, 0},
  {"im2col part", "(graph l (in x f32 [n ch 6 7]) (out z (concat (expand_dims (slice (slice x :axis 2 :start 0 :stop 4)"
                  " :axis 3 :start 0 :stop 4) :axis 2) (expand_dims (slice (slice x :axis 2 :start 1 :stop 5)"
                  " :axis 3 :start 1 :stop 5) :axis 2) :axis 2)))",
   {2, 3}, -1, 0},
  {"NaN and infinities", "(graph l (in x f32 [r c]) (in y f32 [r c]) (out z (maximum (exp x) (tanh y))))", {7, 37}, 1,
   1},
  {"split across threads", "(graph l (in x f32 [r c]) (out z (sin x)))", {1, 70000}, 1, 0},
  {"split across threads, two loops", "(graph l (in x f64 [r c]) (in m f64 [r 1]) (out z (exp (sub x m))))",
   {700, 101}, 2, 0},
  /* one merged loop calling math: blocks of a cache line with prefetches
   * of the streamed inputs, then the rest (lower_stream.c, "streaming prefetch") */
  {"prefetched blocks and a tail", "(graph l (in a f32 [n]) (in b f32 [n]) (out z (add (mul (tanh (exp a)) b) 1)))",
   {70001}, 1, 1},
  {"prefetched, f64 and a broadcast scalar", "(graph l (in a f64 [r c]) (in s f64 []) (out z (log1p (mul a s))))",
   {37, 29}, 1, 0},
  {"prefetched, mixed dtypes", "(graph l (in a f32 [n]) (in b f64 [n]) (in i i32 [n]) (out z (mul (exp a) (add b i))))",
   {1000}, 1, 0},
  {"prefetched, fewer elements than a block", "(graph l (in a f32 [n]) (out z (sigmoid a)))", {15}, 1, 1},
  {"prefetched, in place over a dead temporary",
   "(graph l (in a f32 [n]) (let t (mul a 3)) (let u (exp t)) (out z (add (tanh u) (sin t))))", {40000}, -1, 0},
};

static const lcase red_cases[] = {
  /* column mode: the last dim is kept; 1100 columns are two chunks */
  {"sum over axis 0", "(graph l (in x f32 [r c]) (out z (sum x :axis 0)))", {33, 1100}, -1, 0},
  {"mean over axis 0, f64", "(graph l (in x f64 [r c]) (out z (mean x :axis 0 :keepdims true)))", {33, 1100}, -1, 0},
  {"prod over axis 0", "(graph l (in x f64 [r c]) (out z (prod (add 1.0 (mul 0.1 x)) :axis 0)))", {9, 261}, -1, 0},
  {"max over axis 0, NaN", "(graph l (in x f32 [r c]) (out z (max x :axis 0)))", {33, 1100}, -1, 1},
  {"min over axis 0, NaN", "(graph l (in x f64 [r c]) (out z (min x :axis 0)))", {33, 1100}, -1, 1},
  {"max over axis 0, i32", "(graph l (in x i32 [r c]) (out z (max x :axis 0)))", {33, 1100}, -1, 0},
  {"sum over axis 0, i64", "(graph l (in x i64 [r c]) (out z (sum x :axis 0)))", {33, 1100}, -1, 0},
  {"logsumexp over axis 0", "(graph l (in x f32 [r c]) (out z (logsumexp x :axis 0)))", {33, 1100}, -1, 0},
  {"logsumexp over axis 0, NaN and infinities", "(graph l (in x f64 [r c]) (out z (logsumexp x :axis 0)))",
   {33, 1100}, -1, 1},
  {"sum over the middle axis", "(graph l (in x f32 [a b c]) (out z (sum (exp x) :axis 1)))", {3, 7, 40}, -1, 0},
  {"sum over the two leading axes", "(graph l (in x f64 [a b c]) (out z (sum x :axis [0 1])))", {3, 7, 40}, -1, 0},
  {"sum over the outer and inner axes", "(graph l (in x f32 [a b c]) (out z (sum x :axis [0 2])))", {3, 7, 40}, -1,
   0},
  {"max over axis 0, empty", "(graph l (in x f32 [r c]) (out z (max x :axis 0)))", {0, 5}, -1, 0},
  {"sum over axis 0, no columns", "(graph l (in x f32 [r c]) (out z (sum x :axis 0)))", {5, 0}, -1, 0},
  /* column sums and products take rows eight at a time, then one at a time */
  {"sum over axis 0, no rows", "(graph l (in x f32 [r c]) (out z (sum x :axis 0)))", {0, 17}, -1, 0},
  {"sum over axis 0, 3 rows", "(graph l (in x f32 [r c]) (out z (sum x :axis 0)))", {3, 20}, -1, 0},
  {"sum over axis 0, 8 rows", "(graph l (in x f64 [r c]) (out z (sum x :axis 0)))", {8, 260}, -1, 0},
  {"sum over axis 0, 17 rows, NaN and infinities", "(graph l (in x f64 [r c]) (out z (sum x :axis 0)))",
   {17, 300}, -1, 1},
  {"sum over two leading axes of 19 rows", "(graph l (in x f32 [a b c]) (out z (sum x :axis [0 1])))", {3, 19, 40},
   -1, 0},
  {"sum over axis 0, i32 of a computed value", "(graph l (in x i32 [r c]) (out z (sum (mul x 3) :axis 0)))",
   {13, 40}, -1, 0},
  {"prod over axis 0, 11 rows of i64", "(graph l (in x i64 [r c]) (out z (prod x :axis 0)))", {11, 33}, -1, 0},
  /* the max and min of f32 accumulate in f32 */
  {"min over axis 0, f32, NaN", "(graph l (in x f32 [r c]) (out z (min x :axis 0)))", {9, 300}, -1, 1},
  {"min, rows of 37, f32, NaN", "(graph l (in x f32 [r c]) (out z (min x :axis 1)))", {50, 37}, -1, 1},
  {"max, rows of 40, f32, scaled", "(graph l (in x f32 [r c]) (out z (mul (max x :axis 1) 2.0)))", {9, 40}, -1, 1},
  {"sum over axis 0, split across threads", "(graph l (in x f32 [r c]) (out z (sum (mul x x) :axis 0)))",
   {70, 2100}, -1, 0},
  {"softmax over axis 0", "(graph l (in x f32 [r c]) (out z (softmax x :axis 0)))", {33, 1100}, -1, 0},
  /* softmax keeps its exps in the output for the write pass */
  {"softmax over axis 0, NaN and infinities", "(graph l (in x f64 [r c]) (out z (softmax x :axis 0)))", {33, 1100},
   -1, 1},
  {"log_softmax over axis 0, NaN and infinities", "(graph l (in x f64 [r c]) (out z (log_softmax x :axis 0)))",
   {33, 1100}, -1, 1},
  {"softmax over the middle axis", "(graph l (in x f32 [a b c]) (out z (softmax (mul 2.0 x) :axis 1)))",
   {3, 7, 40}, -1, 0},
  {"log_softmax over axis 0 of i32", "(graph l (in x i32 [r c]) (out z (log_softmax x :axis 0)))", {6, 10}, -1, 0},
  {"softmax over axis 0, split across threads", "(graph l (in x f32 [r c]) (out z (softmax x :axis 0)))",
   {70, 2100}, -1, 0},
  /* the sum passes take eight rows at a time: ties with the max among them */
  {"log_softmax over axis 0, 20 rows of i32", "(graph l (in x i32 [r c]) (out z (log_softmax x :axis 0)))", {20, 40},
   -1, 0},
  {"softmax over axis 0, tied maxima", "(graph l (in x f32 [r c]) (out z (softmax (floor (mul x 2.0)) :axis 0)))",
   {19, 70}, -1, 0},
  {"logsumexp over axis 0, tied maxima, f64", "(graph l (in x f64 [r c]) (out z (logsumexp (floor x) :axis 0)))",
   {17, 70}, -1, 1},
  /* row mode: a symbolic row length picks the short or the long loop */
  {"sum, rows of 3", "(graph l (in x f32 [r c]) (out z (sum x :axis 1)))", {50, 3}, -1, 0},
  {"sum, rows of 37", "(graph l (in x f32 [r c]) (out z (sum x :axis 1)))", {50, 37}, -1, 0},
  {"sum, rows of 100", "(graph l (in x f32 [r c]) (out z (sum x :axis 1)))", {50, 100}, -1, 0},
  {"max, rows of 37, NaN", "(graph l (in x f32 [r c]) (out z (max x :axis 1)))", {50, 37}, -1, 1},
  {"max, rows of 100, NaN", "(graph l (in x f64 [r c]) (out z (max x :axis 1)))", {50, 100}, -1, 1},
  {"logsumexp, rows of 37", "(graph l (in x f32 [r c]) (out z (logsumexp x :axis -1)))", {50, 37}, -1, 1},
  {"softmax, rows of 5", "(graph l (in x f32 [r c]) (out z (softmax x :axis 1)))", {50, 5}, -1, 0},
  {"log_softmax, rows of 37", "(graph l (in x f32 [r c]) (out z (log_softmax x :axis 1)))", {50, 37}, -1, 1},
  {"log_softmax, rows of 130", "(graph l (in x f64 [r c]) (out z (log_softmax x :axis 1)))", {50, 130}, -1, 1},
  {"softmax, rows of 20, concrete", "(graph l (in x f32 [40 20]) (out z (softmax x :axis 1)))", {0}, -1, 0},
  /* a computing producer is evaluated once (stored in the output), so the
   * row's maximum minus itself is exactly 0 even where x is huge */
  {"log_softmax of expm1(30x), rows of 3",
   "(graph l (in x f32 [4 3]) (out z (log_softmax (expm1 (mul x 30.0)) :axis 1)))", {0}, -1, 0},
  {"log_softmax of expm1(30x) over axis 0",
   "(graph l (in x f32 [4 3]) (out z (log_softmax (expm1 (mul x 30.0)) :axis 0)))", {0}, -1, 0},
  {"softmax of expm1(30x), symbolic rows", "(graph l (in x f64 [r c]) (out z (softmax (expm1 (mul x 30.0)) :axis 1)))",
   {9, 5}, -1, 1},
};

static const lcase mm_cases[] = {
  {"x @ w^T", "(graph l (in x f32 [m k]) (in w f32 [n k]) (out z (matmul x (transpose w))))", {5, 7, 9}, -1, 0},
  {"one row @ w^T (gemv)", "(graph l (in x f32 [m k]) (in w f32 [n k]) (out z (matmul x (transpose w))))", {1, 7, 9},
   -1, 0},
  {"one row @ w (gemv)", "(graph l (in x f64 [m k]) (in w f64 [k n]) (out z (matmul x w)))", {1, 7, 9}, -1, 0},
  {"a @ one column (gemv)", "(graph l (in a f32 [m k]) (in b f32 [k n]) (out z (matmul a b)))", {6, 7, 1}, -1, 0},
  {"a^T @ one column (gemv)", "(graph l (in a f64 [k m]) (in b f64 [k n]) (out z (matmul (transpose a) b)))",
   {6, 7, 1}, -1, 0},
  {"one row @ one column", "(graph l (in a f32 [m k]) (in b f32 [k n]) (out z (matmul a b)))", {1, 7, 1}, -1, 0},
  {"vector @ matrix", "(graph l (in v f32 [k]) (in w f32 [k n]) (out z (matmul v w)))", {7, 9}, -1, 0},
  {"matrix @ vector", "(graph l (in w f64 [m k]) (in v f64 [k]) (out z (matmul w v)))", {9, 7}, -1, 0},
  {"a^T @ b", "(graph l (in a f32 [k m]) (in b f32 [k n]) (out z (matmul (transpose a) b)))", {6, 7, 9}, -1, 0},
  {"a^T @ b^T", "(graph l (in a f64 [k m]) (in b f64 [n k]) (out z (matmul (transpose a) (transpose b))))",
   {6, 7, 9}, -1, 0},
  {"batched a @ b^T", "(graph l (in a f32 [2 3 m k]) (in b f32 [2 3 n k])"
                      " (out z (matmul a (transpose b :perm [0 1 3 2]))))", {4, 5, 6}, -1, 0},
  {"batch over a shared w (folded)", "(graph l (in x f32 [b m k]) (in w f32 [k n]) (out z (matmul x w)))",
   {3, 4, 5, 6}, -1, 0},
  {"batch of rows over a shared w (folded)", "(graph l (in x f64 [b m k]) (in w f64 [1 k n]) (out z (matmul x w)))",
   {3, 1, 5, 6}, -1, 0},
  {"batch over a shared w^T", "(graph l (in x f32 [b m k]) (in w f32 [n k]) (out z (matmul x (transpose w))))",
   {3, 4, 5, 6}, -1, 0},
  {"batched w (not folded)", "(graph l (in x f32 [b m k]) (in w f32 [b k n]) (out z (matmul x w)))", {3, 4, 5, 6}, -1,
   0},
  /* batch dims that broadcast a 1 of either operand (stride 0 there) */
  {"a's batch of 1 over b's batch", "(graph l (in x f32 [1 m k]) (in w f32 [b k n]) (out z (matmul x w)))",
   {4, 5, 3, 6}, -1, 0},
  {"batches broadcast both ways", "(graph l (in x f64 [b 1 m k]) (in w f64 [3 k n]) (out z (matmul x w)))",
   {2, 4, 5, 6}, -1, 0},
  {"i32 batches broadcast both ways", "(graph l (in x i32 [1 b m k]) (in w i32 [3 1 k n]) (out z (matmul x w)))",
   {2, 4, 5, 6}, -1, 0},
  {"transpose also read elsewhere", "(graph l (in x f32 [m k]) (in w f32 [n k]) (let t (transpose w))"
                                    " (out z (matmul x t)) (out u (exp t)))", {5, 7, 9}, -1, 0},
  {"i32 a @ b^T (loops)", "(graph l (in a i32 [m k]) (in b i32 [n k]) (out z (matmul a (transpose b))))",
   {5, 7, 9}, -1, 0},
  {"K = 0 with w^T", "(graph l (in x f32 [m k]) (in w f32 [n k]) (out z (matmul x (transpose w))))", {5, 0, 9}, -1,
   0},
};

/* Outputs of 8 MiB and more are written with streaming stores, line by
 * line through a scratch line (lower_stream.c, "streaming stores"); rows of 1003
 * f32 start at every alignment, so some lines stream and some do not. */
static const struct { lcase c; int streams; } stream_cases[] = {
  {{"streaming stores, f32, a tail", "(graph l (in a f32 [n]) (out z (mul (exp a) 0.5)))", {2097152 + 37}, 1, 0}, 1},
  {{"streaming stores, f64, NaN", "(graph l (in a f64 [n]) (in b f64 [n]) (out z (add (tanh a) b)))",
    {1048576 + 3}, 1, 1}, 1},
  {{"streaming stores, in place",
    "(graph l (in a f32 [n]) (let t (mul a 3)) (let u (exp t)) (out z (add (tanh u) (sin t))))", {2097152 + 5}, -1,
    0}, 1},
  {{"no streaming stores for a small concrete output", "(graph l (in a f32 [1000]) (out z (exp a)))", {0}, 1, 0}, -1},
  {{"log_softmax, streaming stores, unaligned rows", "(graph l (in x f32 [r c]) (out z (log_softmax x :axis 1)))",
    {2100, 1003}, -1, 0}, 1},
  {{"log_softmax of 2x (read back from the output), streaming stores",
    "(graph l (in x f32 [r c]) (out z (log_softmax (mul 2.0 x) :axis 1)))", {2048, 1024}, -1, 0}, 1},
  {{"log_softmax f64, streaming stores", "(graph l (in x f64 [r c]) (out z (log_softmax x :axis -1)))",
    {1024, 1025}, -1, 0}, 1},
  /* softmax keeps its exps in the output in the sum pass and never streams */
  {{"softmax of 2x keeps its exps, no streaming stores",
    "(graph l (in x f32 [r c]) (out z (softmax (mul 2.0 x) :axis 1)))", {2048, 1024}, -1, 0}, -1},
  {{"no streaming stores for small concrete rows", "(graph l (in x f32 [40 20]) (out z (softmax x :axis 1)))", {0},
    -1, 0}, -1},
};

/* Row kernels working in place (rules/inplace.rw, :rowwise) at sizes that
 * split across threads: the softmax writes over its operand's buffer, the
 * matmul's result, and must still match the interpreter. */
static const lcase inplace_row_cases[] = {
  {"softmax in place over scaled scores, NaN rows",
   "(graph l (in q f32 [r 16]) (in k f32 [c 16]) (out z (matmul (softmax (div (matmul q (transpose k)) 4.0)"
   " :axis -1) k)))", {300, 1031}, -1, 1},
  {"softmax in place over scores", "(graph l (in q f32 [r 16]) (in k f32 [16 c]) (out z (sum (softmax"
   " (matmul q k) :axis 1) :axis 0)))", {257, 640}, -1, 0},
  {"log_softmax f64 in place", "(graph l (in q f64 [r 8]) (in k f64 [8 c]) (out z (sum (log_softmax"
   " (matmul q k) :axis -1) :axis 0)))", {513, 700}, -1, 1},
  {"softmax in place by columns", "(graph l (in q f32 [r 8]) (in k f32 [8 c]) (out z (sum (softmax"
   " (mul (matmul q k) 3.0) :axis 0) :axis 1)))", {1000, 70}, -1, 0},
};

static int inplace_rows(int verbose) {
  int bad = 0;
  for (size_t i = 0; i < sizeof inplace_row_cases / sizeof *inplace_row_cases; i++) {
    const lcase *c = &inplace_row_cases[i];
    char err[512];
    tl_graph *g = tlt_parse(c->text, NULL);
    be_plan pl;
    int kind = -1;
    if (g && !be_plan_build(&pl, g, err, sizeof err)) {
      for (int k = 0; k < pl.nks; k++)
        for (int m = 0; m < k; m++)
          if (pl.ks[k].kind == BE_K_SOFTMAX && pl.ks[m].kind == BE_K_MATMUL && pl.ks[m].out == pl.ks[k].out)
            kind = pl.ninplace;
      be_plan_free(&pl);
    }
    tl_graph_free(g);
    if (kind != 1) {
      printf("FAIL %s: the softmax kernel does not write over the matmul's buffer, alone in place\n", c->name);
      bad++;
    }
    bad += run_case(c, 0, verbose);
  }
  return bad;
}

/* A transposed operand is read through the trans flag: one kernel, the
 * matmul, reading the input buffers themselves. */
static int trans_plan(void) {
  static const char *const src[] = {
    "(graph l (in x f32 [m k]) (in w f32 [n k]) (out z (matmul x (transpose w))))",
    "(graph l (in a f64 [2 k m]) (in b f64 [2 k n]) (out z (matmul (transpose a :perm [0 2 1]) b)))",
  };
  static const int tr[2][2] = {{0, 1}, {1, 0}};
  int bad = 0;
  for (int i = 0; i < 2; i++) {
    char err[512];
    tl_graph *g = tlt_parse(src[i], NULL);
    be_plan pl;
    if (!g || be_plan_build(&pl, g, err, sizeof err)) {
      printf("FAIL trans plan %d: %s\n", i, g ? err : "parse");
      bad = 1;
    } else if (pl.nks != 1 || pl.ks[0].kind != BE_K_MATMUL || pl.ks[0].trans[0] != tr[i][0] ||
               pl.ks[0].trans[1] != tr[i][1] || pl.bufs[pl.ks[0].opbuf[tr[i][1]]].kind != BE_BUF_INPUT) {
      printf("FAIL trans plan %d: %d kernels, expected the matmul alone reading the input transposed\n", i, pl.nks);
      bad = 1;
    }
    if (g) be_plan_free(&pl);
    tl_graph_free(g);
  }
  return bad;
}

/* A row dominated by its max: log_softmax's max entry and logsumexp are
 * -log1p(r) and log1p(r) for r = exp(-25) ~ 1.4e-11, which log(1 + r)
 * rounds to 0 in f32 and f64 alike. Rows, columns, ties, -inf. */
static int dominated_rows(void) {
  static const char *const src[2][2] = {
    {"(graph d (in x f32 [3 2]) (out a (log_softmax x :axis 1)) (out b (logsumexp x :axis 1)))",
     "(graph d (in x f32 [2 3]) (out a (log_softmax x :axis 0)) (out b (logsumexp x :axis 0)))"},
    {"(graph d (in x f64 [3 2]) (out a (log_softmax x :axis 1)) (out b (logsumexp x :axis 1)))",
     "(graph d (in x f64 [2 3]) (out a (log_softmax x :axis 0)) (out b (logsumexp x :axis 0)))"}};
  static const double rows[3][2] = {{0, -25}, {-25, 0}, {3, 3}};
  const double r = exp(-25.0);
  /* expected: row 0 [-log1p(r), -25 - log1p(r)], row 1 mirrored; row 2 ties: -log 2 each */
  const double want_a[3][2] = {{-log1p(r), -25 - log1p(r)}, {-25 - log1p(r), -log1p(r)}, {-log(2.0), -log(2.0)}};
  const double want_b[3] = {log1p(r), log1p(r), 3 + log(2.0)};
  int bad = 0;
  for (int dt = 0; dt < 2; dt++)
    for (int col = 0; col < 2; col++)
      for (int th = 1; th <= 2; th++) {
        tl_error err = {0};
        tl_graph *g = tlt_parse(src[dt][col], NULL);
        int64_t dims[2] = {col ? 2 : 3, col ? 3 : 2};
        tl_tensor *x = g ? tl_tensor_new(dt ? TL_F64 : TL_F32, 2, dims, TL_EMSG(&err)) : NULL;
        for (int i = 0; x && i < 3; i++)
          for (int j = 0; j < 2; j++) tl_tensor_set_f64(x, col ? j * 3 + i : i * 2 + j, rows[i][j]);
        be_options o = be_options_default();
        o.use_cache = 0;
        o.threads = th;
        be_program *p = x ? be_compile(g, &o, &err) : NULL;
        tl_tensor *out[2] = {0};
        if (!p || be_run(p, &x, NULL, out, &err)) {
          printf("FAIL dominated rows (%s, %s): %s\n", dt ? "f64" : "f32", col ? "columns" : "rows", err.msg);
          bad = 1;
        } else {
          double tol = dt ? 1e-15 : 1e-6; /* relative */
          for (int i = 0; i < 3; i++) {
            double gb = tl_tensor_get_f64(out[1], i);
            if (!(fabs(gb - want_b[i]) <= tol * fabs(want_b[i]))) {
              printf("FAIL dominated rows (%s, %s): logsumexp of row %d is %.9g, expected %.9g\n", dt ? "f64" : "f32",
                     col ? "columns" : "rows", i, gb, want_b[i]);
              bad = 1;
            }
            for (int j = 0; j < 2; j++) {
              double ga = tl_tensor_get_f64(out[0], col ? j * 3 + i : i * 2 + j);
              if (!(fabs(ga - want_a[i][j]) <= tol * fabs(want_a[i][j]))) {
                printf("FAIL dominated rows (%s, %s): log_softmax[%d][%d] is %.9g, expected %.9g\n",
                       dt ? "f64" : "f32", col ? "columns" : "rows", i, j, ga, want_a[i][j]);
                bad = 1;
              }
            }
          }
        }
        for (int k = 0; k < 2; k++) tl_tensor_free(out[k]);
        be_program_free(p);
        tl_tensor_free(x);
        tl_graph_free(g);
      }
  return bad;
}

/* logsumexp over long rows, whose sum pass runs in blocks that prefetch
 * the next row, counting ties in i32 lanes (lower_rows.c "logsumexp's sum
 * pass"), and over rows below the run-time test: a row dominated by its
 * max (log1p of 1e-8, which a tie added into the f64 sum would round
 * away in f64), the max in the last, unblocked elements, a row of ties
 * (x + log(len): every lane's count and the tail's), -inf, +inf and NaN
 * rows. Known and symbolic lengths, one thread and two. */
static int logsumexp_long_rows(void) {
  static const char *const src[4] = {"(graph d (in x f32 [r c]) (out b (logsumexp x :axis 1)))",
                                     "(graph d (in x f64 [r c]) (out b (logsumexp x :axis 1)))",
                                     "(graph d (in x f32 [6 1030]) (out b (logsumexp x :axis 1)))",
                                     "(graph d (in x f64 [k 3 c]) (out b (logsumexp x :axis 2)))"};
  static const int64_t lens[3] = {1030, 200, 531};
  int bad = 0;
  for (int s = 0; s < 4; s++)
    for (int li = 0; li < (s == 2 ? 1 : 3); li++)
      for (int th = 1; th <= 2; th++) {
        int64_t c = lens[li], dims[3] = {6, c, 0}, syms[2] = {6, c};
        int rank = 2, dt64 = s == 1 || s == 3;
        if (s == 3) { /* [2 3 c]: rows restart in the inner kept loop */
          dims[0] = 2, dims[1] = 3, dims[2] = c, rank = 3;
          syms[0] = 2;
        }
        tl_error err = {0};
        tl_graph *g = tlt_parse(src[s], NULL);
        tl_tensor *x = g ? tl_tensor_new(dt64 ? TL_F64 : TL_F32, rank, dims, TL_EMSG(&err)) : NULL;
        double want[6];
        const double r = exp(-25.0);
        for (int i = 0; x && i < 6; i++) {
          for (int64_t j = 0; j < c; j++) {
            double v = i == 0   ? (j == 7 ? 0 : -25)
                       : i == 1 ? (j == c - 1 ? 0 : -25)
                       : i == 2 ? 3
                       : i == 3 ? -INFINITY
                       : i == 4 ? (j == c / 2 ? INFINITY : 1)
                                : (j == c - 2 ? NAN : 1);
            tl_tensor_set_f64(x, i * c + j, v);
          }
          want[i] = i <= 1   ? log1p((double)(c - 1) * r)
                    : i == 2 ? 3 + log((double)c)
                    : i == 3 ? -INFINITY
                    : i == 4 ? INFINITY
                             : NAN;
        }
        be_options o = be_options_default();
        o.use_cache = 0;
        o.threads = th;
        o.split_elems = 1;
        be_program *p = x ? be_compile(g, &o, &err) : NULL;
        tl_tensor *out[1] = {0};
        if (!p || be_run(p, &x, syms, out, &err)) {
          printf("FAIL logsumexp long rows (%s, %lld): %s\n", src[s], (long long)c, err.msg);
          bad = 1;
        } else {
          /* relative; a sum of 10^3 terms in f64 errs by some ulp, a tie
           * added into it by 1e-8 */
          double tol = dt64 ? 1e-13 : 1e-6;
          for (int i = 0; i < 6; i++) {
            double got = tl_tensor_get_f64(out[0], i);
            bool ok = isnan(want[i])   ? isnan(got)
                      : isinf(want[i]) ? got == want[i]
                                       : fabs(got - want[i]) <= tol * fabs(want[i]);
            if (!ok) {
              printf("FAIL logsumexp long rows (%s, rows of %lld, %d thread%s): row %d is %.17g, expected %.17g\n",
                     src[s], (long long)c, th, th > 1 ? "s" : "", i, got, want[i]);
              bad = 1;
            }
          }
        }
        tl_tensor_free(out[0]);
        be_program_free(p);
        tl_tensor_free(x);
        tl_graph_free(g);
      }
  return bad;
}

/* Every op whose float lowering calls vector math (the op table's VMATH)
 * must reach the vectoriser's output as libmvec's vector variant, in f32
 * and f64: LLVM's cost model once left f64 sin scalar (five times slower
 * end to end than the sum of its kernels' time suggested). Checked on the
 * optimised module of a one-op program, so it needs no timing. */
/* The optimised module of the one-graph program text, vector math vm
 * (be_vm_code), as text (the caller frees it); NULL with a message in err. */
static char *optimised_ir(const char *text, int vm, char *err, size_t n) {
  char *diag = NULL;
  tl_graph *g = tlt_parse(text, &diag);
  tl_free(diag);
  be_plan pl;
  if (!g || be_plan_build(&pl, g, err, n)) {
    if (!g) snprintf(err, n, "parse");
    tl_graph_free(g);
    return NULL;
  }
  LLVMContextRef cx = LLVMContextCreate();
  LLVMTargetMachineRef tm = be_host_tm(1);
  tl_error e = {0};
  LLVMModuleRef m = tm ? be_emit_module(&pl, cx, tm, "v", "tlk_main", vm, BE_SPLIT_ELEMS, &e) : NULL;
  if (m && be_optimise(m, tm, 1, &e)) {
    LLVMDisposeModule(m);
    m = NULL;
  }
  char *ir = NULL;
  if (m) {
    char *l = LLVMPrintModuleToString(m);
    ir = tl_xstrdup(l);
    LLVMDisposeMessage(l);
    LLVMDisposeModule(m);
  } else {
    snprintf(err, n, "%.400s", tm ? e.msg : "no target machine");
  }
  if (tm) LLVMDisposeTargetMachine(tm);
  LLVMContextDispose(cx);
  be_plan_free(&pl);
  tl_graph_free(g);
  return ir;
}

static int vector_math_calls(int verbose) {
  int bad = 0, n = 0;
  for (int op = 0; op < TL_OP_COUNT; op++) {
    const tl_op_info *oi = &tl_ops[op];
    char text[256], err[512];
    for (int f = 0; f < 2 && be_vmath_probe(op, f, text, sizeof text); f++) {
      char want[64];
      /* a call, not the declaration every module has: call <N x T> @_ZGV?N?v_NAME( */
      snprintf(want, sizeof want, "x %s> @_ZGV", f ? "double" : "float");
      char *ir = optimised_ir(text, 1, err, sizeof err);
      const char *hit = ir ? strstr(ir, want) : NULL;
      char name[48];
      snprintf(name, sizeof name, "%s_%s%s(", oi->arity == 2 ? "vv" : "v", oi->math, f ? "" : "f");
      bool found = false;
      for (; hit && !found; hit = strstr(hit + 1, want)) {
        const char *eol = strchr(hit, '\n'), *bol = hit;
        while (bol > ir && bol[-1] != '\n') bol--;
        const char *at = strstr(hit, name), *call = strstr(bol, "call <");
        found = at && (!eol || at < eol) && call && call < hit;
      }
      if (!found) {
        printf("FAIL vector math: %s: %s\n", text, ir ? "the vectorised loop calls no libmvec variant" : err);
        bad++;
      } else if (verbose) {
        printf("ok vector math %s %s\n", oi->name, f ? "f64" : "f32");
      }
      n++;
      tl_free(ir);
    }
  }
  if (n < 20) {
    printf("FAIL vector math: only %d op/dtype pairs checked\n", n);
    bad++;
  }
  return bad;
}

/* A root program's kernels declare their buffers distinct (scoped
 * no-alias metadata, lower.c): the loop vectoriser then adds no run-time
 * overlap check (vector.memcheck, diff.check, found.conflict) and no
 * scalar copy of the loop it guards. The kernels below each write one
 * buffer while reading others: an elementwise one, a row softmax and
 * log_softmax over known rows, and f64 log_softmax over symbolic rows. */
static int no_overlap_checks(int verbose) {
  static const char *const texts[] = {
      "(graph g (in x f32 [n]) (in z f32 [n]) (let s (exp (add x z))) (out y (mul s (sum s))))",
      "(graph g (in x f32 [64 1024]) (in b f32 [1024]) (let t (add x b)) "
      "(out y (mul (softmax t :axis 1) (log_softmax t :axis 1))))",
      "(graph g (in x f64 [r c]) (in b f64 [c]) (let t (add x b)) (out y (sub t (log_softmax t :axis 1))))",
  };
  static const char *const checks[] = {"vector.memcheck", "diff.check", "found.conflict", "%bound0"};
  int bad = 0;
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    char err[512];
    char *ir = optimised_ir(texts[i], 1, err, sizeof err);
    const char *hit = NULL;
    for (size_t c = 0; ir && !hit && c < sizeof checks / sizeof *checks; c++) hit = strstr(ir, checks[c]) ? checks[c] : NULL;
    if (!ir || hit) {
      printf("FAIL overlap checks: %s: %s%s\n", texts[i], ir ? "the optimised kernels still test for overlap: " : err,
             ir ? hit : "");
      bad++;
    } else if (verbose) {
      printf("ok no overlap checks: %s\n", texts[i]);
    }
    tl_free(ir);
  }
  return bad;
}

/* be_options.own_math picks per function: with only BE_OWN_EXP32, f32 exp
 * is tlaloc's own kernel (no libmvec call) while tanh still calls libmvec;
 * and the other way round. */
/* The split threshold is an option (tlaloc calibrate measures it): the
 * entry compares each kernel's work with the value it was given. */
static int split_threshold(void) {
  char err[512];
  tl_graph *g = tlt_parse("(graph g (in x f32 [n]) (out y (add x 1)))", NULL);
  be_plan pl;
  int bad = 0;
  if (!g || be_plan_build(&pl, g, err, sizeof err)) {
    printf("FAIL split threshold: %s\n", g ? err : "parse");
    tl_graph_free(g);
    return 1;
  }
  LLVMContextRef cx = LLVMContextCreate();
  LLVMTargetMachineRef tm = be_host_tm(1);
  const long want[2] = {BE_SPLIT_ELEMS, 123457};
  for (int i = 0; i < 2; i++) {
    tl_error e = {0};
    LLVMModuleRef m = tm ? be_emit_module(&pl, cx, tm, "s", "tlk_main", 1, want[i], &e) : NULL;
    char cmp[64];
    snprintf(cmp, sizeof cmp, ", %ld\n", want[i]); /* icmp sge i64 %work, N */
    char *ir = m ? LLVMPrintModuleToString(m) : NULL;
    bool found = false;
    for (const char *q = ir ? strstr(ir, "icmp sge i64") : NULL; q && !found; q = strstr(q + 1, "icmp sge i64")) {
      const char *eol = strchr(q, '\n');
      found = eol && !strncmp(eol - strlen(cmp) + 1, cmp, strlen(cmp));
    }
    if (!found) {
      printf("FAIL split threshold %ld: no comparison of the work with it in the entry\n", want[i]);
      bad = 1;
    }
    if (ir) LLVMDisposeMessage(ir);
    if (m) LLVMDisposeModule(m);
  }
  if (tm) LLVMDisposeTargetMachine(tm);
  LLVMContextDispose(cx);
  be_plan_free(&pl);
  tl_graph_free(g);
  return bad;
}

static int own_math_choice(int verbose) {
  int bad = 0;
  const char *text = "(graph g (in x f32 [n]) (let s (add (exp x) (tanh x))) (out y (add (neg s) (mul s 2))))";
  for (unsigned own = 0; own < 4; own++) {
    char err[512];
    char *ir = optimised_ir(text, be_vm_code(1, own), err, sizeof err);
    /* a call of the vector variant: "call <N x float> @_ZGV..._expf(" */
    bool exp_call = false, tanh_call = false;
    for (const char *q = ir ? strstr(ir, "call <") : NULL; q; q = strstr(q + 1, "call <")) {
      const char *eol = strchr(q, '\n');
      const char *a = strstr(q, "_expf("), *b = strstr(q, "_tanhf(");
      exp_call |= a && (!eol || a < eol);
      tanh_call |= b && (!eol || b < eol);
    }
    bool want_exp = !(own & BE_OWN_EXP32), want_tanh = !(own & BE_OWN_TANH32);
    if (!ir || exp_call != want_exp || tanh_call != want_tanh) {
      printf("FAIL own math %u: exp %s libmvec, tanh %s libmvec (wanted %s, %s)%s%s\n", own, exp_call ? "calls" : "does not call",
             tanh_call ? "calls" : "does not call", want_exp ? "a call" : "none", want_tanh ? "a call" : "none",
             ir ? "" : ": ", ir ? "" : err);
      bad++;
    } else if (verbose) {
      printf("ok own math %u\n", own);
    }
    tl_free(ir);
  }
  return bad;
}

int be_loop_tests(int verbose) {
  int fails = 0, n = 0;
  const struct { const lcase *c; int n; } sets[] = {
    {ew_cases, (int)(sizeof ew_cases / sizeof *ew_cases)},
    {red_cases, (int)(sizeof red_cases / sizeof *red_cases)},
    {mm_cases, (int)(sizeof mm_cases / sizeof *mm_cases)},
  };
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < sets[s].n; i++, n++) fails += run_case(&sets[s].c[i], 0, verbose);
  for (size_t i = 0; i < sizeof stream_cases / sizeof *stream_cases; i++, n++)
    fails += run_case(&stream_cases[i].c, stream_cases[i].streams, verbose);
  fails += trans_plan();
  fails += dominated_rows();
  fails += logsumexp_long_rows();
  fails += inplace_rows(verbose);
  n += (int)(sizeof inplace_row_cases / sizeof *inplace_row_cases);
  fails += vector_math_calls(verbose);
  fails += no_overlap_checks(verbose);
  fails += own_math_choice(verbose);
  fails += split_threshold();
  printf("loop structure: %d cases (merged loops, column mode, short rows, logsumexp's long rows, matmul forms, "
         "streaming stores, row kernels in place, vector math per op and dtype, no overlap checks, own math per "
         "function), %d failed\n",
         n, fails);
  return fails;
}
