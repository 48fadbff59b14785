/* test_ir.c - the tensor IR: op table, inference of every op, broadcasting
 * corners, the .tg parser's diagnostics and the printer's round trip. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"
#include "tests/common/tltest.h"

static tl_graph *parse_str(const char *src, char **diag_text) { return tlt_parse(src, diag_text); }

/* src must be refused, with `want` in its diagnostics (what: the case). */
static void expect_refused(const char *src, const char *want, const char *what) {
  char *diag;
  tl_graph *g = parse_str(src, &diag);
  cr_expect_null(g, "%s type-checked", what);
  cr_expect(diag && strstr(diag, want) != NULL, "%s: want '%s' in:\n%s", what, want, diag);
  tl_free(diag);
  tl_graph_free(g);
}

#ifndef TL_SOURCE_DIR
#error "TL_SOURCE_DIR must name the source tree"
#endif

/* ---- op table ---------------------------------------------------------- */

Test(optable, every_op_has_inference_and_a_kernel) {
  for (int op = 0; op < TL_OP_COUNT; op++) {
    cr_expect(tl_infer_has(op), "op '%s' has no inference function", tl_ops[op].name);
    cr_expect(tl_interp_has(op), "op '%s' has no interpreter kernel", tl_ops[op].name);
  }
}

Test(optable, names_are_unique_and_looked_up) {
  for (int op = 0; op < TL_OP_COUNT; op++) {
    cr_expect_eq(tl_op_lookup(tl_ops[op].name, strlen(tl_ops[op].name)), op, "%s", tl_ops[op].name);
    for (int j = 0; j < op; j++) cr_expect_str_neq(tl_ops[op].name, tl_ops[j].name);
  }
  cr_expect_eq(tl_op_lookup("nope", 4), -1);
}

Test(optable, design_ops_are_present) {
  const char *required[] = {
    "neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "sigmoid",
    "softplus", "erf", "floor", "ceil", "sign", "reciprocal", "not", "add", "sub", "mul", "div",
    "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "where", "cast",
    "sum", "prod", "max", "min", "mean", "logsumexp", "softmax", "log_softmax", "reshape",
    "transpose", "broadcast_to", "expand_dims", "squeeze", "concat", "slice", "take", "matmul",
    "zeros_like", "ones_like"};
  for (size_t i = 0; i < sizeof required / sizeof *required; i++)
    cr_expect_geq(tl_op_lookup(required[i], strlen(required[i])), 0, "missing op %s", required[i]);
}

Test(dtype, numpy_promotion_table) {
  cr_expect_eq(tl_dtype_promote(TL_I32, TL_F32), TL_F64);
  cr_expect_eq(tl_dtype_promote(TL_I64, TL_F32), TL_F64);
  cr_expect_eq(tl_dtype_promote(TL_I32, TL_I64), TL_I64);
  cr_expect_eq(tl_dtype_promote(TL_F32, TL_F64), TL_F64);
  cr_expect_eq(tl_dtype_promote(TL_BOOL, TL_I32), TL_I32);
  cr_expect_eq(tl_dtype_promote(TL_BOOL, TL_F32), TL_F32);
  cr_expect_eq(tl_dtype_promote(TL_F32, TL_F32), TL_F32);
}

/* ---- inference: (graph text body, expected type of output y) ----------- */

typedef struct icase { const char *ins, *expr, *want; } icase;

static const icase infer_cases[] = {
  /* sources and constants */
  {"", "2", "i64[]"}, {"", "2.5", "f64[]"},
  {"", "(const f32 [2 2] 1 2 3 4)", "f32[2 2]"}, {"", "(fill i32 [n 3] 7)", "i32[n 3]"},
  {"(in x f32 [n 3])", "(zeros_like x)", "f32[n 3]"}, {"(in x i32 [2])", "(ones_like x)", "i32[2]"},
  /* unary */
  {"(in x f32 [3])", "(neg x)", "f32[3]"}, {"(in x i32 [3])", "(neg x)", "i32[3]"},
  {"(in x bool [3])", "(abs x)", "bool[3]"}, {"(in x i64 [3])", "(sign x)", "i64[3]"},
  {"(in x f32 [3])", "(exp x)", "f32[3]"}, {"(in x i32 [3])", "(exp x)", "f64[3]"},
  {"(in x bool [3])", "(log x)", "f64[3]"}, {"(in x f64 [3])", "(log1p x)", "f64[3]"},
  {"(in x f32 [3])", "(expm1 x)", "f32[3]"}, {"(in x f32 [3])", "(sqrt x)", "f32[3]"},
  {"(in x f32 [3])", "(sin x)", "f32[3]"}, {"(in x f32 [3])", "(cos x)", "f32[3]"},
  {"(in x f32 [3])", "(tanh x)", "f32[3]"}, {"(in x f32 [3])", "(sigmoid x)", "f32[3]"},
  {"(in x f32 [3])", "(softplus x)", "f32[3]"}, {"(in x f32 [3])", "(log1mexp x)", "f32[3]"},
  {"(in x f32 [3])", "(erf x)", "f32[3]"}, {"(in x f32 [3])", "(erfc x)", "f32[3]"},
  {"(in x i32 [3])", "(floor x)", "f64[3]"}, {"(in x f32 [3])", "(ceil x)", "f32[3]"},
  {"(in x i32 [3])", "(reciprocal x)", "f64[3]"}, {"(in x f32 [3])", "(not x)", "bool[3]"},
  {"(in x f64 [3])", "(cast x :dtype i32)", "i32[3]"},
  /* binary, promotion, NEP 50 weak literals */
  {"(in x f32 [3]) (in z f64 [3])", "(add x z)", "f64[3]"},
  {"(in x i32 [3]) (in z f32 [3])", "(sub x z)", "f64[3]"},
  {"(in x f32 [3])", "(mul x 2)", "f32[3]"}, {"(in x f32 [3])", "(mul 2.5 x)", "f32[3]"},
  {"(in x i32 [3])", "(add x 2)", "i32[3]"}, {"(in x i32 [3])", "(add x 2.5)", "f64[3]"},
  {"(in x bool [3])", "(add x 1)", "i64[3]"}, {"(in x bool [3])", "(add x x)", "bool[3]"},
  {"", "(add 1 2)", "i64[]"}, {"", "(add 1 2.0)", "f64[]"},
  {"(in x i32 [3])", "(div x x)", "f64[3]"}, {"(in x i32 [3])", "(floor_divide x 2)", "i32[3]"},
  {"(in x f32 [3])", "(remainder x 2)", "f32[3]"}, {"(in x i64 [3])", "(pow x 2)", "i64[3]"},
  {"(in x f32 [3])", "(maximum x 0)", "f32[3]"}, {"(in x f32 [3])", "(minimum x 0)", "f32[3]"},
  {"(in x f32 [3])", "(logaddexp x x)", "f32[3]"}, {"(in x f32 [3])", "(xlogy x x)", "f32[3]"},
  {"(in x f32 [3])", "(eq x 1)", "bool[3]"}, {"(in x i32 [3])", "(ne x 1.5)", "bool[3]"},
  {"(in x f32 [3])", "(lt x x)", "bool[3]"}, {"(in x f32 [3])", "(le x x)", "bool[3]"},
  {"(in x f32 [3])", "(gt x x)", "bool[3]"}, {"(in x f32 [3])", "(ge x x)", "bool[3]"},
  {"(in x bool [3])", "(and x x)", "bool[3]"}, {"(in x f32 [3])", "(or x x)", "bool[3]"},
  {"(in c bool [3]) (in x f32 [3])", "(where c x 0)", "f32[3]"},
  {"(in c bool [2 1]) (in x i32 [3])", "(where c x 1.5)", "f64[2 3]"},
  /* broadcasting corners */
  {"(in x f32 []) (in z f32 [2 3])", "(add x z)", "f32[2 3]"},
  {"(in x f32 [3 1]) (in z f32 [4])", "(add x z)", "f32[3 4]"},
  {"(in x f32 [0]) (in z f32 [1])", "(add x z)", "f32[0]"},
  {"(in x f32 [2 0]) (in z f32 [1 1])", "(mul x z)", "f32[2 0]"},
  {"(in x f32 [n 1]) (in z f32 [1 n])", "(add x z)", "f32[n n]"},
  {"(in x f32 [n 10]) (in z f32 [10])", "(add x z)", "f32[n 10]"},
  {"(in x f32 [n]) (in z f32 [1])", "(add x z)", "f32[n]"},
  {"(in x f32 [1 1 5]) (in z f32 [4 1])", "(add x z)", "f32[1 4 5]"},
  /* reductions */
  {"(in x f32 [2 3])", "(sum x)", "f32[]"}, {"(in x f32 [2 3])", "(sum x :axis 1)", "f32[2]"},
  {"(in x f32 [2 3])", "(sum x :axis -1 :keepdims true)", "f32[2 1]"},
  {"(in x f32 [2 3 4])", "(sum x :axis [0 2])", "f32[3]"},
  {"(in x i32 [2 3])", "(sum x :axis 0)", "i64[3]"}, {"(in x bool [4])", "(sum x)", "i64[]"},
  {"(in x i32 [4])", "(prod x)", "i64[]"}, {"(in x i32 [2 3])", "(max x :axis 0)", "i32[3]"},
  {"(in x f32 [2 3])", "(min x :axis 1 :keepdims true)", "f32[2 1]"},
  {"(in x i32 [2 3])", "(mean x)", "f64[]"}, {"(in x f32 [n 3])", "(mean x :axis 0)", "f32[3]"},
  {"(in x f32 [n 3])", "(logsumexp x :axis 1)", "f32[n]"},
  {"(in x f32 [0 3])", "(sum x :axis 0)", "f32[3]"},
  {"(in x f32 [n 3])", "(softmax x :axis 1)", "f32[n 3]"},
  {"(in x i32 [2 3])", "(log_softmax x)", "f64[2 3]"},
  /* shape ops */
  {"(in x f32 [2 3])", "(reshape x :shape [3 2])", "f32[3 2]"},
  {"(in x f32 [2 3])", "(reshape x :shape [-1])", "f32[6]"},
  {"(in x f32 [n 6])", "(reshape x :shape [n 2 3])", "f32[n 2 3]"},
  {"(in x f32 [2 3 4])", "(transpose x)", "f32[4 3 2]"},
  {"(in x f32 [2 3 4])", "(transpose x :perm [1 0 2])", "f32[3 2 4]"},
  {"(in x f32 [3])", "(broadcast_to x :shape [n 3])", "f32[n 3]"},
  /* derived dims (ir/symdim.h): canonical, so equal sizes are one dim */
  {"(in x f32 [n 6])", "(reshape x :shape [-1 3])", "f32[(* 2 n) 3]"},
  {"(in x f32 [n d])", "(reshape x :shape [-1])", "f32[(* d n)]"},
  {"(in x f32 [n d])", "(reshape (reshape x :shape [-1]) :shape [n -1])", "f32[n d]"},
  {"(in x f32 [n])", "(slice x :start 1)", "f32[(+ n -1)]"},
  {"(in x f32 [n])", "(slice x :stop -2)", "f32[(+ n -2)]"},
  {"(in x f32 [n])", "(slice x :start -3)", "f32[3]"},
  {"(in x f32 [n])", "(slice x :start 1 :stop 4)", "f32[3]"},
  {"(in x f32 [n])", "(slice x :step 2)", "f32[(ceildiv n 2)]"},
  {"(in x f32 [n])", "(slice x :start 1 :step 3)", "f32[(ceildiv (+ n -1) 3)]"},
  {"(in x f32 [n])", "(slice x :step -2)", "f32[(ceildiv n 2)]"},
  {"(in x f32 [n])", "(slice x :start -2 :step -1)", "f32[(+ n -1)]"},
  {"(in x f32 [n])", "(concat (slice x :start 1) (slice x :stop 1))", "f32[n]"},
  {"(in x f32 [n]) (in z f32 [m 2])", "(concat x (reshape z :shape [-1]) x)", "f32[(+ (* 2 m) (* 2 n))]"},
  {"(in x f32 [(+ n 1)]) (in z f32 [n])", "(add (slice x :start 1) z)", "f32[n]"},
  {"(in x f32 [(- (+ n 3) 1)])", "(slice x :stop -2)", "f32[n]"},
  {"(in x f32 [(+ -1 (- 0 n) n n)])", "(neg x)", "f32[(+ n -1)]"},
  {"(in x f32 [(floordiv (* 4 n) 2)])", "(neg x)", "f32[(* 2 n)]"},
  {"(in x f32 [n]) (in z f32 [m])", "(add x z)", "f32[n]"},
  {"(in x f32 [2 n]) (in z f32 [m 4])", "(matmul x z)", "f32[2 4]"},
  {"(in x f32 [n 3])", "(dim x :axis 0)", "i64[]"},
  {"(in x f32 [n 3])", "(iota x :axis 0)", "i64[n 3]"},
  {"(in x f32 [2 3])", "(expand_dims x :axis 0)", "f32[1 2 3]"},
  {"(in x f32 [2 3])", "(expand_dims x :axis [-1 0])", "f32[1 2 3 1]"},
  {"(in x f32 [1 3 1])", "(squeeze x)", "f32[3]"},
  {"(in x f32 [1 3 1])", "(squeeze x :axis 0)", "f32[3 1]"},
  {"(in x f32 [2 3]) (in z f32 [4 3])", "(concat x z)", "f32[6 3]"},
  {"(in x f32 [2 3]) (in z f32 [2 1])", "(concat x z x :axis 1)", "f32[2 7]"},
  {"(in x f32 [10])", "(slice x :start 2 :stop 8 :step 3)", "f32[2]"},
  {"(in x f32 [10])", "(slice x :step -1)", "f32[10]"},
  {"(in x f32 [10])", "(slice x :start -3)", "f32[3]"},
  {"(in x f32 [10])", "(slice x :start 8 :stop 2)", "f32[0]"},
  {"(in x f32 [4 5]) (in i i64 [2 3])", "(take x i :axis 1)", "f32[4 2 3]"},
  {"(in x f32 [4 5]) (in i i32 [7])", "(take x i)", "f32[7]"},
  {"(in x f32 [10]) (in v f32 [2])", "(slice_update x v :start 2 :stop 8 :step 3)", "f32[10]"},
  {"(in x f32 [n 4]) (in v f32 [n 4])", "(slice_update x v :axis 0 :step -1)", "f32[n 4]"},
  {"(in x f32 [4 5]) (in i i64 [2 3]) (in v f32 [4 2 3])", "(scatter_add x i v :axis 1)", "f32[4 5]"},
  {"(in x i32 [4 5]) (in i i32 [7]) (in v i32 [7])", "(scatter_add x i v)", "i32[4 5]"},
  /* matmul */
  {"(in a f32 [2 3]) (in b f32 [3 4])", "(matmul a b)", "f32[2 4]"},
  {"(in a f32 [3]) (in b f32 [3 4])", "(matmul a b)", "f32[4]"},
  {"(in a f32 [2 3]) (in b f32 [3])", "(matmul a b)", "f32[2]"},
  {"(in a f32 [3]) (in b f32 [3])", "(matmul a b)", "f32[]"},
  {"(in a f32 [5 1 2 3]) (in b f32 [4 3 6])", "(matmul a b)", "f32[5 4 2 6]"},
  {"(in a f32 [n 3]) (in b i32 [3 k])", "(matmul a b)", "f64[n k]"},
};

Test(infer, every_op_and_broadcasting_corners) {
  bool covered[TL_OP_COUNT] = {false};
  covered[TL_OP_INPUT] = true;
  for (size_t i = 0; i < sizeof infer_cases / sizeof *infer_cases; i++) {
    const icase *c = &infer_cases[i];
    char src[512];
    snprintf(src, sizeof src, "(graph g %s (out y %s))", c->ins, c->expr);
    char *diag;
    tl_graph *g = parse_str(src, &diag);
    cr_assert(g, "case %zu '%s': %s", i, c->expr, diag);
    const tl_node *n = &g->nodes[g->outputs[0].node];
    char buf[128];
    tl_type_str(g, &n->type, buf, sizeof buf);
    cr_expect_str_eq(buf, c->want, "case %zu %s: got %s", i, c->expr, buf);
    for (int32_t k = 0; k < g->nnodes; k++) covered[g->nodes[k].op] = true;
    tl_free(diag);
    tl_graph_free(g);
  }
  /* an elementwise op infers by the one broadcasting rule of its dtype rule
   * (tests/ops runs every one on every dtype); every other op has its own */
  for (int op = 0; op < TL_OP_COUNT; op++)
    cr_expect(covered[op] || tl_ops[op].kind == TL_KIND_ELEMWISE || tl_ops[op].kind == TL_KIND_CONTROL,
              "no inference case covers op '%s'", tl_ops[op].name);
}

/* Control nodes: typed per call signature through the functions they run
 * (infer.control_errors covers what is refused). */
static const char *const control_fns =
  "(func f (in a f32 [n m]) (in b f32 [m]) (out s (add a b)) (out r (sum a :axis 0)))"
  "(func t (in a f32 [k]) (out r (neg a)))"
  "(func e (in a f32 [k]) (out r (exp a)))"
  "(func c (in i i64 []) (in a f32 [k]) (out p (lt i 3)))"
  "(func b (in i i64 []) (in a f32 [k]) (out i2 (add i 1)) (out a2 (mul a 2)))"
  "(func sc (in h f32 [k]) (in x f32 [k]) (out h2 (tanh (add h x))) (out y (sum h2)))"
  "(func sk (in h f32 [k]) (in w f32 [k k]) (in x f32 [k]) (out h2 (tanh (add (matmul w h) x))) (out y (sum h2)))";

Test(infer, control_results_take_the_callers_dims) {
  static const struct { const char *ins, *expr, *want; } cases[] = {
    {"(in x f32 [3 4]) (in z f32 [4])", "(call x z :fn f)", "f32[3 4]"},
    {"(in x f32 [p 4]) (in z f32 [4])", "(call x z :fn f :out 1)", "f32[4]"},
    {"(in p bool []) (in x f32 [q])", "(cond p x :then t :else e)", "f32[q]"},
    {"(in x f32 [5])", "(loop 0 x :cond c :body b :max 10 :out 1)", "f32[5]"},
    {"(in x f32 [5])", "(loop 0 x :cond c :body b :max unbounded)", "i64[]"},
    {"(in h f32 [8]) (in xs f32 [t 8])", "(scan h xs :body sc :carry 1 :out 1)", "f32[t]"},
    {"(in h f32 [8]) (in xs f32 [0 8])", "(scan h xs :body sc :carry 1)", "f32[8]"},
    {"(in h f32 [8]) (in w f32 [8 8]) (in xs f32 [t 8])", "(scan h w xs :body sk :carry 1 :consts 1 :out 1)", "f32[t]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[2048], *diag;
    snprintf(src, sizeof src, "%s (graph g %s (out y %s))", control_fns, cases[i].ins, cases[i].expr);
    tl_graph *g = parse_str(src, &diag);
    cr_assert(g, "case %zu '%s': %s", i, cases[i].expr, diag);
    char buf[128];
    tl_type_str(g, &g->nodes[g->outputs[0].node].type, buf, sizeof buf);
    cr_expect_str_eq(buf, cases[i].want, "case %zu %s: got %s", i, cases[i].expr, buf);
    /* the text reads back as the same graph, functions included */
    char *text = tl_tg_print(g), *d2;
    tl_graph *h = parse_str(text, &d2);
    cr_expect(h && tl_graph_equal(g, h), "case %zu does not read back:\n%s\n%s", i, text, d2);
    tl_free(text);
    tl_free(d2);
    tl_graph_free(h);
    tl_free(diag);
    tl_graph_free(g);
  }
}

Test(inline, small_straight_line_calls_become_their_bodies) {
  char *diag;
  tl_graph *g = parse_str("(func f (in a f32 [n]) (out r (add a (fill f32 [n] 1))) (out s (neg a)))"
                          "(func two (in a f32 [n]) (out r (call (call a :fn f) :fn f :out 1)))"
                          "(graph g (in x f32 [3]) (out y (call x :fn two)) (out z (call x :fn f :out 1)))",
                          &diag);
  cr_assert(g, "%s", diag);
  char err[256];
  tl_graph *h = tl_inline_calls(g, TL_INLINE_MAX_NODES, err, sizeof err);
  cr_assert(h, "%s", err);
  cr_expect(!tl_graph_has_control(h), "a call is left");
  tl_graph *kept = tl_inline_calls(g, 2, err, sizeof err); /* f has 4 nodes: stays a call */
  cr_expect(kept && tl_graph_has_control(kept));
  /* the same values, by the interpreter */
  float xv[3] = {1, -2, 0.5f};
  int64_t dims[1] = {3};
  tl_tensor *in = tl_tensor_wrap(TL_F32, 1, dims, xv);
  const tl_graph *gs[3] = {g, h, kept};
  tl_tensor *out[3][2];
  for (int k = 0; k < 3; k++) {
    int64_t syms[1] = {-1};
    cr_assert(tl_interp_run(gs[k], &in, syms, out[k], err, sizeof err) == 0, "%s", err);
  }
  for (int k = 1; k < 3; k++)
    for (int o = 0; o < 2; o++)
      for (int i = 0; i < 3; i++)
        cr_expect(tl_tensor_get_f64(out[k][o], i) == tl_tensor_get_f64(out[0][o], i));
  for (int k = 0; k < 3; k++)
    for (int o = 0; o < 2; o++) tl_tensor_free(out[k][o]);
  tl_tensor_free(in);
  tl_graph_free(h);
  tl_graph_free(kept);
  tl_graph_free(g);
  tl_free(diag);
}

Test(infer, control_errors) {
  static const struct { const char *ins, *expr, *want; } cases[] = {
    {"(in x f32 [3 4]) (in z f32 [5])", "(call x z :fn f)", "call: operand 1 is f32[5] but parameter 'b' of function 'f' is f32[m]"},
    {"(in x f32 [3 4])", "(call x :fn f)", "call: function 'f' takes 2 operands, given 1"},
    {"(in x f32 [3 4]) (in z f32 [4])", "(call x z :fn f :out 2)", "call: :out 2, but 'f' has 2 outputs"},
    {"(in x f32 [3 4]) (in z f32 [4])", "(call x z :fn nosuch)", "attribute :fn expects the name of a function defined above"},
    {"(in p f32 [2]) (in x f32 [3])", "(cond p x :then t :else e)", "cond: the condition must be a scalar, not f32[2]"},
    {"(in p bool []) (in x f32 [3])", "(cond p x x :then t :else f)", "cond: the branches disagree: 't' has 1 outputs, 'f' has 2"},
    {"(in x f32 [5])", "(loop 0 x :cond c :body b)", "loop: is missing a required attribute"},
    {"(in x f32 [5])", "(loop 0 x :cond b :body b :max 3)", "loop: condition 'b' must have one output (a scalar), it has 2"},
    {"(in x f32 [5])", "(loop 0 x :cond c :body b :max -2)", "attribute :max must be >= 0"},
    {"(in x f64 [5])", "(loop 0 x :cond c :body b :max 3)", "loop: operand 1 is f64[5] but parameter 'a' of condition 'c' is f32[k]"},
    {"(in h f32 [8])", "(scan h h :body sc :carry 2)", "scan: has no sequence operand, so it needs :length"},
    {"(in h f32 [8]) (in xs f32 [4 7])", "(scan h xs :body sc :carry 1)", "scan: operand 1 is f32[7] but parameter 'x' of body 'sc' is f32[k]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[2048], what[256];
    snprintf(src, sizeof src, "%s (graph g %s (out y %s))", control_fns, cases[i].ins, cases[i].expr);
    snprintf(what, sizeof what, "case %zu '%s'", i, cases[i].expr);
    expect_refused(src, cases[i].want, what);
  }
  /* a function whose result dim no parameter fixes; let [..] of the wrong count */
  static const char *const srcs[][2] = {
    {"(func z (in a f32 [k]) (out r (fill f32 [j] 0))) (graph g (in x f32 [3]) (out y (call x :fn z)))",
     "output 'r' of function 'z' has dim 'j', which none of its parameters determines"},
    {"(func f (in a f32 [k]) (out r a) (out s a)) (graph g (in x f32 [3]) (let [u v w] (call x :fn f)) (out y u))",
     "let [..] names 3 values but the call has 2 results"},
    {"(func f (in a f32 [k]) (out r a)) (func f (in a f32 [k]) (out r a)) (graph g (in x f32 [3]) (out y x))",
     "function 'f' is defined twice"},
    {"(func f (in a f32 [k]) (out r (call a :fn f))) (graph g (in x f32 [3]) (out y x))",
     "attribute :fn expects the name of a function defined above"},
  };
  for (size_t i = 0; i < sizeof srcs / sizeof *srcs; i++) expect_refused(srcs[i][0], srcs[i][1], srcs[i][0]);
}

Test(infer, derived_dims_that_cannot_be_are_refused) {
  static const char *const cases[][2] = {
    {"(in x f32 [n 5]) (out y (reshape x :shape [-1 3]))", "its size (* 5 n) is not a multiple of 3"},
    {"(in x f32 [n d]) (out y (reshape x :shape [n n]))", "sizes (* d n) and (* n n) differ"},
    {"(in x f32 [n]) (out y (add x (slice x :start 1)))", "cannot broadcast f32[n] with f32[(+ n -1)]"},
    {"(in x f32 [n]) (out y (slice x :start 5 :stop 2))", "symbolic size is the negative constant -3"},
    {"(in x f32 [(- 2 3)]) (out y x)", "negative constant -1"},
    {"(in x f32 [(floordiv n 0)]) (out y x)", "divided by 0"},
    {"(in x f32 [(pow n 2)]) (out y x)", "unknown operator 'pow'"},
    {"(in x f32 [(+ n 1]) (out y x)", "bad dim"},
    {"(in x f32 [(* a b c d e)]) (out y x)", "too complex"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[512];
    snprintf(src, sizeof src, "(graph g %s)", cases[i][0]);
    expect_refused(src, cases[i][1], cases[i][0]);
  }
}

/* Values: derived dims are computed when the inputs are bound, and each is
 * a check that it is not negative (slice bounds, sizes that must match). */
Test(infer, derived_dims_bind_and_check) {
  char *diag;
  tl_graph *g = parse_str("(graph g (in x f32 [n d]) (in y f32 [(+ n 1)]) (out a (slice x :axis 1 :stop 3)) "
                          "(out b (slice x :step 2)) (out c (add (slice y :start 1) (sum x :axis 1))))", &diag);
  cr_assert(g, "%s", diag);
  tl_free(diag);
  char err[256];
  int64_t x3[2] = {5, 4}, y6[1] = {6}, y5[1] = {5}, x2[2] = {5, 2};
  tl_tensor *xs = tl_tensor_new(TL_F32, 2, x3, err, sizeof err), *ys = tl_tensor_new(TL_F32, 1, y6, err, sizeof err);
  tl_tensor *in[2] = {xs, ys};
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int s = 0; s < g->nsyms; s++) syms[s] = -1;
  cr_expect_eq(tl_bind_inputs(g, in, syms, err, sizeof err), 0, "%s", err);
  int64_t dims[TL_MAX_RANK];
  cr_expect_eq(tl_concrete_dims(g, &g->nodes[g->outputs[1].node].type, syms, dims, err, sizeof err), 0);
  cr_expect_eq(dims[0], 3, "ceildiv(5, 2) is %lld", (long long)dims[0]);
  /* y must be n + 1 */
  tl_tensor_free(ys);
  in[1] = ys = tl_tensor_new(TL_F32, 1, y5, err, sizeof err);
  for (int s = 0; s < g->nsyms; s++) syms[s] = -1;
  cr_expect_neq(tl_bind_inputs(g, in, syms, err, sizeof err), 0);
  cr_expect(strstr(err, "input 'y': dim 0 ('(+ n 1)') is 5, but '(+ n 1)' is 6") != NULL, "%s", err);
  /* :stop 3 needs d >= 3 */
  tl_tensor_free(xs);
  tl_tensor_free(ys);
  in[0] = xs = tl_tensor_new(TL_F32, 2, x2, err, sizeof err);
  in[1] = ys = tl_tensor_new(TL_F32, 1, y6, err, sizeof err);
  for (int s = 0; s < g->nsyms; s++) syms[s] = -1;
  cr_expect_neq(tl_bind_inputs(g, in, syms, err, sizeof err), 0);
  cr_expect(strstr(err, "symbolic dim '(+ d -3)' is negative") != NULL && strstr(err, "d = 2") != NULL, "%s", err);
  tl_tensor_free(xs);
  tl_tensor_free(ys);
  tl_free(syms);
  tl_graph_free(g);
}

/* A function's derived dims become the caller's (by substitution), and a
 * derived parameter is checked against its operand. */
Test(infer, derived_dims_through_calls) {
  char *diag;
  tl_graph *g = parse_str("(func f (in a f32 [k]) (in b f32 [(+ k 1)]) (out r (concat a b))) "
                          "(graph g (in x f32 [(* 2 n)]) (in z f32 [(+ (* 2 n) 1)]) (out y (call x z :fn f)))", &diag);
  cr_assert(g, "%s", diag);
  char buf[128];
  tl_type_str(g, &g->nodes[g->outputs[0].node].type, buf, sizeof buf);
  cr_expect_str_eq(buf, "f32[(+ (* 4 n) 1)]");
  tl_free(diag);
  tl_graph_free(g);
  expect_refused("(func f (in a f32 [k]) (in b f32 [(+ k 1)]) (out r (concat a b))) "
                 "(graph g (in x f32 [n]) (in z f32 [n]) (out y (call x z :fn f)))",
                 "operand 1 is f32[n] but parameter 'b' of function 'f' is f32[(+ k 1)]", "a derived parameter");
}

Test(infer, symbol_against_concrete_is_refused) {
  char *diag;
  tl_graph *g = parse_str("(graph g (in x f32 [n]) (in z f32 [3]) (out y (add x z)))", &diag);
  cr_expect_null(g);
  cr_expect(strstr(diag, "1:47: error: add: cannot broadcast f32[n] with f32[3] (dim n vs 3)") != NULL, "%s", diag);
  tl_free(diag);
}

Test(infer, updates_must_have_the_slice_or_take_type) {
  static const char *const cases[][2] = {
    {"(graph g (in x f32 [10]) (in v f32 [3]) (out y (slice_update x v :start 2 :stop 8 :step 3)))",
     "slice_update: the update must have the slice's type f32[2], not f32[3]"},
    {"(graph g (in x f32 [10]) (in v f64 [10]) (out y (slice_update x v)))",
     "slice_update: the update must have the slice's type f32[10], not f64[10]"},
    {"(graph g (in x f32 [4 5]) (in i i64 [3]) (in v f32 [3 5]) (out y (scatter_add x i v :axis 1)))",
     "scatter_add: the addend must have the type f32[4 3] of (take x i), not f32[3 5]"},
    {"(graph g (in x bool [4]) (in i i64 [3]) (in v bool [3]) (out y (scatter_add x i v)))",
     "scatter_add: not defined for bool operands"},
    {"(graph g (in x f32 [4]) (in i f32 [3]) (in v f32 [3]) (out y (scatter_add x i v)))",
     "scatter_add: indices must be i32 or i64"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *diag;
    tl_graph *g = parse_str(cases[i][0], &diag);
    cr_expect_null(g, "%s", cases[i][0]);
    cr_expect(diag && strstr(diag, cases[i][1]) != NULL, "%s", diag);
    tl_free(diag);
    tl_graph_free(g);
  }
}

Test(infer, hash_consing_shares_identical_nodes) {
  tl_graph *g = parse_str("(graph g (in x f32 [3]) (let a (exp x)) (let b (exp x)) (out y (add a b)))", NULL);
  cr_assert(g);
  const tl_node *add = &g->nodes[g->outputs[0].node];
  cr_expect_eq(tl_node_inputs(g, add)[0], tl_node_inputs(g, add)[1]);
  tl_graph_free(g);
}

/* A :perm that reverses the dims is transpose's default and is stored as
 * the default: rules written without :perm (matmul-transpose,
 * transpose-transpose) then match the transposes the gradient rules make
 * with an explicit :perm. Any other :perm is kept. */
Test(infer, a_reversing_perm_is_the_default_transpose) {
  tl_graph *g = parse_str("(graph g (in x f32 [3 4]) (in z f32 [2 3 4])"
                          " (out a (transpose x)) (out b (transpose x :perm [1 0])) (out c (transpose x :perm [-1 -2]))"
                          " (out d (transpose x :perm [0 1])) (out e (transpose z :perm [2 1 0]))"
                          " (out f (transpose z :perm [0 2 1])))",
                          NULL);
  cr_assert(g);
  int32_t a = g->outputs[0].node;
  cr_expect_eq(g->outputs[1].node, a, "the explicit reversal is another node");
  cr_expect_eq(g->outputs[2].node, a, "the negative reversal is another node");
  cr_expect_neq(g->outputs[3].node, a, "the identity :perm [0 1] became a transpose");
  cr_expect(!(g->nodes[g->outputs[4].node].attrs.present & TL_A_PERM));
  cr_expect(g->nodes[g->outputs[5].node].attrs.present & TL_A_PERM);
  char *t = tl_tg_print(g);
  cr_expect(strstr(t, ":perm [0 1]") && strstr(t, ":perm [0 2 1]") && !strstr(t, ":perm [1 0]") &&
                !strstr(t, ":perm [2 1 0]"),
            "%s", t);
  tl_free(t);
  tl_graph_free(g);
}

/* ---- malformed graphs: each file carries its expected diagnostics ----- */

static char *expected_lines(const char *src) {
  tl_buf b = {0};
  const char *p = src;
  while ((p = strstr(p, "; expect: ")) != NULL) {
    p += strlen("; expect: ");
    const char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    tl_buf_putn(&b, p, (size_t)(e - p));
    tl_buf_putn(&b, "\n", 1);
    p = e;
  }
  return b.s ? b.s : tl_xstrdup("");
}

/* The "file:line:col: error|note: message" lines of a diagnostic text. */
static char *message_lines(const char *text, const char *file) {
  tl_buf b = {0};
  size_t fl = strlen(file);
  for (const char *p = text; *p;) {
    const char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    if ((size_t)(e - p) > fl && strncmp(p, file, fl) == 0 && p[fl] == ':') {
      tl_buf_putn(&b, p + fl + 1, (size_t)(e - p) - fl - 1);
      tl_buf_putn(&b, "\n", 1);
    }
    p = *e ? e + 1 : e;
  }
  return b.s ? b.s : tl_xstrdup("");
}

static void check_malformed(const char *name, const char *src, size_t len, void *ctx) {
  (void)ctx;
  tl_diag dg;
  tl_diag_init(&dg, name, src, len);
  tl_graph *g = tl_tg_parse(src, len, &dg);
  cr_expect_null(g, "%s parsed but is malformed", name);
  char *want = expected_lines(src), *got = message_lines(tl_diag_text(&dg), name);
  cr_expect_str_eq(got, want, "%s:\n got:\n%s want:\n%s", name, got, want);
  cr_expect(strstr(tl_diag_text(&dg), "^\n") != NULL, "%s: no caret line", name);
  tl_free(want);
  tl_free(got);
  tl_graph_free(g);
  tl_diag_free(&dg);
}

Test(parser, malformed_graphs_report_exact_positions) {
  int count = tlt_each_tg(TL_SOURCE_DIR "/tests/ir/malformed", check_malformed, NULL);
  cr_expect_geq(count, 25, "only %d malformed graphs", count);
}

Test(parser, truly_empty_input) {
  char *diag;
  tl_graph *g = parse_str("", &diag);
  cr_expect_null(g);
  cr_expect(strstr(diag, "t.tg:1:1: error: empty file") != NULL, "%s", diag);
  tl_free(diag);
}

Test(parser, deep_nesting_is_refused_not_overflowed) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph g (in x f32 [3]) (out y ");
  for (int i = 0; i < 5000; i++) tl_buf_printf(&b, "(exp ");
  tl_buf_printf(&b, "x");
  for (int i = 0; i < 5000; i++) tl_buf_printf(&b, ")");
  tl_buf_printf(&b, "))");
  char *diag;
  tl_graph *g = parse_str(b.s, &diag);
  cr_expect_null(g);
  cr_expect(strstr(diag, "nested more than") != NULL, "%s", diag);
  tl_free(diag);
  tl_free(b.s);
}

/* A graph whose first node has no operands: args is still NULL, and the
 * node's operand array must be an empty array, not NULL + 0 (undefined
 * behaviour that clang's UBSan reports). */
Test(parser, operandless_first_node) {
  const char *src[] = {"(graph g (in x f32 [2]) (out y (add x 1)))", "(graph g (in x f32 [2]) (out y x))"};
  for (int k = 0; k < 2; k++) {
    tl_graph *g = parse_str(src[k], NULL);
    cr_assert(g);
    for (int32_t i = 0; i < g->nnodes; i++)
      cr_expect_not_null(tl_node_inputs(g, &g->nodes[i]), "%s: node %d", src[k], (int)i);
    tl_graph_free(g);
  }
}

/* A long line is quoted as a window around the column, with "..." where it
 * is cut and the caret under the same character. */
Test(parser, long_lines_are_quoted_around_the_column) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph g (in x f32 [3]) (out y ");
  for (int i = 0; i < 3000; i++) tl_buf_printf(&b, "(exp ");
  tl_buf_printf(&b, "x");
  for (int i = 0; i < 3000; i++) tl_buf_printf(&b, ")");
  tl_buf_printf(&b, "))");
  char *diag;
  cr_assert_null(parse_str(b.s, &diag));
  /* message, quoted window, caret line */
  char *l1 = strchr(diag, '\n');
  cr_assert(l1);
  char *l2 = strchr(l1 + 1, '\n');
  cr_assert(l2);
  char *l3 = strchr(l2 + 1, '\n');
  cr_assert(l3);
  size_t w = (size_t)(l2 - l1 - 1);
  cr_expect_leq(w, TL_QUOTE_WIDTH + 8, "quoted line of %zu bytes", w);
  cr_expect(strncmp(l1 + 1, "  ...", 5) == 0, "no left mark: %.*s", (int)w, l1 + 1);
  cr_expect(strncmp(l2 - 3, "...", 3) == 0, "no right mark: %.*s", (int)w, l1 + 1);
  size_t caret = (size_t)(l3 - l2 - 2);
  cr_expect_eq(l2[caret + 1], '^', "%.*s", (int)(l3 - l2 - 1), l2 + 1);
  /* the caret is under the '(' of the expression too deep: (graph, (out
   * and 998 (exp are allowed, the 999th (exp at column 32 + 5 * 998 not */
  cr_expect(strstr(diag, "t.tg:1:5022: error: expression nested more than 1000 deep"), "%.200s", diag);
  cr_expect_eq(l1[1 + caret], '(');
  cr_expect(strncmp(l1 + 1 + caret, "(exp ", 5) == 0);
  cr_expect_lt(strlen(diag), 2000, "%zu bytes of diagnostics", strlen(diag));
  tl_free(diag);
  tl_free(b.s);

  /* short lines, and columns near either end of a long one */
  struct { const char *line; int col; const char *want; } cases[] = {
    {"abc", 2, "  abc\n   ^\n"},
    {"a\tb", 3, "  a\tb\n   \t^\n"},
    {"abc", 9, "  abc\n     ^\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tl_buf q = {0};
    tl_quote_line(&q, "  ", cases[i].line, strlen(cases[i].line), cases[i].col);
    cr_expect_str_eq(q.s, cases[i].want, "case %zu", i);
    tl_free(q.s);
  }
  char line[300];
  memset(line, 'a', sizeof line);
  line[0] = 'S';
  line[299] = 'E';
  tl_buf q = {0};
  tl_quote_line(&q, "", line, sizeof line, 1);
  cr_expect(q.s[0] == 'S' && strstr(q.s, "a...\n^\n"), "%s", q.s);
  tl_free(q.s);
  q = (tl_buf){0};
  tl_quote_line(&q, "", line, sizeof line, 300);
  char *nl = strchr(q.s, '\n');
  cr_expect(strncmp(q.s, "...a", 4) == 0 && nl[-1] == 'E', "%s", q.s);
  cr_expect_eq(strlen(nl + 1), (size_t)(nl - q.s) + 1, "caret not under the last byte: %s", q.s);
  tl_free(q.s);
}

/* ---- printing: canonical form and round trip --------------------------- */

static void check_round_trip(const char *what, tl_graph *g) {
  char *t1 = tl_tg_print(g);
  char *diag;
  tl_graph *g2 = parse_str(t1, &diag);
  cr_assert(g2, "%s: printed form does not parse:\n%s\n%s", what, t1, diag);
  cr_expect(tl_graph_equal(g, g2), "%s: parse(print(g)) != g\n%s", what, t1);
  char *t2 = tl_tg_print(g2);
  cr_expect_str_eq(t1, t2, "%s: printing is not idempotent", what);
  tl_free(t1);
  tl_free(t2);
  tl_free(diag);
  tl_graph_free(g2);
}

static void round_trips(const char *name, const char *src, size_t len, void *ctx) {
  (void)ctx;
  tl_diag dg;
  tl_diag_init(&dg, name, src, len);
  tl_graph *g = tl_tg_parse(src, len, &dg);
  cr_assert(g, "%s", tl_diag_text(&dg));
  check_round_trip(name, g);
  tl_graph_free(g);
  tl_diag_free(&dg);
}

Test(printer, every_example_round_trips) {
  cr_expect_geq(tlt_each_tg(TL_SOURCE_DIR "/examples", round_trips, NULL), 12);
}

Test(printer, literals_keep_their_kind_and_value) {
  tl_graph *g = parse_str("(graph g (in x f64 [2]) (out y (add (mul x 2.0) (add 3 (mul x 0.1)))) "
                          "(out z (add x (const f64 [2] 1e300 -0.0))) (out w (fill f32 [2] 0.1)))",
                          NULL);
  cr_assert(g);
  char *t = tl_tg_print(g);
  cr_expect(strstr(t, "2.0") && strstr(t, " 3 ") && strstr(t, "0.1") && strstr(t, "1e+300") &&
                strstr(t, "-0.0"),
            "%s", t);
  check_round_trip("literals", g);
  tl_free(t);
  tl_graph_free(g);
}

Test(printer, shared_nodes_get_lets_and_deep_chains_are_cut) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph g (in x f32 [3]) (let e (exp x)) (out y ");
  for (int i = 0; i < 200; i++) tl_buf_printf(&b, "(add e ");
  tl_buf_printf(&b, "e");
  for (int i = 0; i < 200; i++) tl_buf_printf(&b, ")");
  tl_buf_printf(&b, "))");
  tl_graph *g = parse_str(b.s, NULL);
  cr_assert(g);
  check_round_trip("deep chain", g);
  tl_free(b.s);
  tl_graph_free(g);
}

/* Random well-typed graphs built through the API, printed and read back. */
static uint64_t rng_state = 0x1234;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(rng_state >> 33) % n;
}

Test(printer, random_graphs_round_trip) {
  const int unary[] = {TL_OP_NEG, TL_OP_EXP, TL_OP_LOG, TL_OP_TANH, TL_OP_SIGMOID, TL_OP_ABS,
                       TL_OP_SQRT, TL_OP_SOFTPLUS};
  const int binary[] = {TL_OP_ADD, TL_OP_SUB, TL_OP_MUL, TL_OP_DIV, TL_OP_MAXIMUM, TL_OP_POW};
  for (int trial = 0; trial < 200; trial++) {
    tl_graph *g = tl_graph_new("r");
    tl_type t;
    memset(&t, 0, sizeof t);
    t.dtype = rnd(2) ? TL_F32 : TL_F64;
    t.rank = 2;
    t.dims[0] = tl_dim_sym(tl_graph_sym(g, "n", 1));
    t.dims[1] = 4;
    int32_t vals[64];
    int nv = 0;
    vals[nv++] = tl_graph_add_input(g, "a", &t, (tl_loc){0, 0});
    t.rank = 1;
    t.dims[0] = 4;
    vals[nv++] = tl_graph_add_input(g, "b", &t, (tl_loc){0, 0});
    char err[256];
    for (int k = 0; k < 30; k++) {
      int32_t id;
      int kind = rnd(5);
      tl_attrs a;
      tl_attrs_init(&a);
      if (kind == 0) {
        a.is_int = rnd(2);
        if (a.is_int) a.i = (int64_t)rnd(100) - 50;
        else a.f = ((double)rnd(1000) - 500) / 7.0;
        id = tl_graph_add(g, TL_OP_LIT, &a, NULL, 0, (tl_loc){0, 0}, err, sizeof err);
      } else if (kind == 1) {
        int32_t x = vals[rnd((uint32_t)nv)];
        id = tl_graph_add(g, unary[rnd(8)], &a, &x, 1, (tl_loc){0, 0}, err, sizeof err);
      } else if (kind == 2 && g->nodes[vals[nv - 1]].type.rank == 2) {
        int32_t x = vals[nv - 1];
        a.present = TL_A_AXIS | (rnd(2) ? TL_A_KEEPDIMS : 0);
        a.naxes = 1;
        a.axes[0] = (int8_t)(rnd(2) ? 1 : -1);
        a.keepdims = (a.present & TL_A_KEEPDIMS) ? 1 : 0;
        id = tl_graph_add(g, rnd(2) ? TL_OP_SUM : TL_OP_LOGSUMEXP, &a, &x, 1, (tl_loc){0, 0}, err, sizeof err);
      } else {
        int32_t xs[2] = {vals[rnd((uint32_t)nv)], vals[rnd((uint32_t)nv)]};
        id = tl_graph_add(g, binary[rnd(6)], &a, xs, 2, (tl_loc){0, 0}, err, sizeof err);
      }
      if (id >= 0 && nv < 64) vals[nv++] = id;
    }
    tl_graph_add_output(g, "o1", vals[nv - 1]);
    tl_graph_add_output(g, "o2", vals[nv / 2]);
    char name[32];
    snprintf(name, sizeof name, "random graph %d", trial);
    check_round_trip(name, g);
    tl_graph_free(g);
  }
}
