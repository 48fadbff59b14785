/* test_grad.c - the grad transform (grad/): the shipped rules cover every
 * differentiable op; the gradients, VJPs and JVPs of every example graph
 * agree with central finite differences in f64 and run the same on every
 * engine; grad of grad gives Hessian-vector products; graphs 10^6 nodes
 * deep differentiate without recursion; the optimizer turns six naive
 * gradients into stable ones; rule overrides, errors and output names.
 * (PyTorch's autograd is the other oracle: tests/python/test_grad.py.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/be_internal.h"
#include "engine/engine.h"
#include "grad/grad.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "tests/common/tltest.h"
#include "util/util.h"

static gr_rules *shipped(void) {
  gr_rules *r = gr_rules_new();
  tl_buf d = {0};
  int e = gr_rules_load_path(r, TL_SOURCE_DIR "/rules", &d);
  cr_assert_eq(e, 0, "%s", d.s ? d.s : "");
  tl_free(d.s);
  return r;
}

static tl_graph *parse(const char *src) { return tlt_parse(src, NULL); }

static tl_graph *transform(const tl_graph *g, const gr_rules *r, gr_mode mode, bool with_outputs) {
  gr_params p = {.mode = mode, .with_outputs = with_outputs};
  char err[2048];
  tl_graph *d = gr_transform(g, r, &p, err, sizeof err);
  cr_assert(d, "%s: %s", g->name, err);
  return d;
}

/* The text with every f32 made f64 (the finite differences' precision). */
static char *as_f64(const char *src) {
  char *s = tl_xstrdup(src);
  for (char *p = strstr(s, "f32"); p; p = strstr(p + 3, "f32")) p[2] = '4', p[1] = '6';
  return s;
}

typedef struct rng { uint64_t s; } rng;
static double uni(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

/* A tensor of type t (symbols bound to 3), values uniform in [lo, hi). */
static tl_tensor *random_tensor(const tl_type *t, rng *r, double lo, double hi) {
  int64_t dims[TL_MAX_RANK];
  for (int i = 0; i < t->rank; i++) dims[i] = tl_dim_is_sym(t->dims[i]) ? 3 : t->dims[i];
  tl_tensor *x = tl_tensor_new((tl_dtype)t->dtype, t->rank, dims, NULL, 0);
  for (int64_t i = 0; i < x->numel; i++) tl_tensor_set_f64(x, i, lo + (hi - lo) * uni(r));
  return x;
}

static double dot(const tl_tensor *a, const tl_tensor *b) {
  double s = 0;
  for (int64_t i = 0; i < a->numel; i++) s += tl_tensor_get_f64(a, i) * tl_tensor_get_f64(b, i);
  return s;
}

static int input_index(const tl_graph *g, const char *name) {
  for (int i = 0; i < g->ninputs; i++)
    if (!strcmp(g->names[g->nodes[g->inputs[i]].name], name)) return i;
  return -1;
}

static int output_index(const tl_graph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->names[g->outputs[i].name], name)) return i;
  return -1;
}

/* Runs g on inputs named as g0's inputs (values[i] for g0's input i), plus
 * extra named inputs; outputs into outs (freed by the caller). */
static void run_named(const tl_graph *g, const tl_graph *g0, tl_tensor **values, const char *const *xname,
                      tl_tensor **xval, int nx, tl_tensor **outs) {
  tl_tensor **ins = tl_xcalloc((size_t)g->ninputs + 1, sizeof *ins);
  for (int i = 0; i < g->ninputs; i++) {
    const char *nm = g->names[g->nodes[g->inputs[i]].name];
    int j = input_index(g0, nm);
    if (j >= 0) ins[i] = values[j];
    for (int k = 0; k < nx; k++)
      if (!strcmp(nm, xname[k])) ins[i] = xval[k];
    cr_assert(ins[i], "%s: no value for input %s", g->name, nm);
  }
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int i = 0; i < g->nsyms; i++) syms[i] = -1;
  char err[512];
  cr_assert_eq(tl_bind_inputs(g, ins, syms, err, sizeof err), 0, "%s: %s", g->name, err);
  cr_assert_eq(tl_interp_run(g, ins, syms, outs, err, sizeof err), 0, "%s: %s", g->name, err);
  tl_free(ins);
  tl_free(syms);
}

/* phi(x) = sum over the float outputs o of <ct_o, y_o(x)>. */
static double phi(const tl_graph *g, tl_tensor **x, tl_tensor *const *ct) {
  tl_tensor **outs = tl_xcalloc((size_t)g->noutputs + 1, sizeof *outs);
  run_named(g, g, x, NULL, NULL, 0, outs);
  double s = 0;
  for (int o = 0; o < g->noutputs; o++) {
    if (ct[o]) s += dot(ct[o], outs[o]);
    tl_tensor_free(outs[o]);
  }
  tl_free(outs);
  return s;
}

/* The directional derivative of phi along v, central differences. */
static double fd_along(const tl_graph *g, tl_tensor **x, tl_tensor *const *v, tl_tensor *const *ct) {
  double h = 1e-5, f[2];
  for (int s = 0; s < 2; s++) {
    tl_tensor **xs = tl_xcalloc((size_t)g->ninputs + 1, sizeof *xs);
    for (int i = 0; i < g->ninputs; i++) {
      xs[i] = tl_tensor_copy(x[i]);
      for (int64_t k = 0; v[i] && k < xs[i]->numel; k++)
        tl_tensor_set_f64(xs[i], k, tl_tensor_get_f64(x[i], k) + (s ? -h : h) * tl_tensor_get_f64(v[i], k));
    }
    f[s] = phi(g, xs, ct);
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(xs[i]);
    tl_free(xs);
  }
  return (f[0] - f[1]) / (2 * h);
}

static bool is_float_type(const tl_type *t) { return tl_dtype_is_float((tl_dtype)t->dtype); }

/* ---- rules ------------------------------------------------------------------------- */

Test(rules, every_differentiable_op_has_a_rule) {
  gr_rules *r = shipped();
  tl_buf m = {0};
  int missing = gr_rules_missing(r, &m);
  cr_expect_eq(missing, 0, "operands of differentiable ops without a derivative rule:\n%s", m.s ? m.s : "");
  tl_free(m.s);
  /* and the check itself notices a missing one */
  gr_rules *few = gr_rules_new();
  const char *one = "(ruleset g (grad exp (exp ?x) :wrt ?x => (mul ?g ?out)))";
  cr_assert_eq(gr_rules_load(few, "few.rw", one, strlen(one), NULL), 0);
  tl_buf m2 = {0};
  cr_expect_gt(gr_rules_missing(few, &m2), 50);
  cr_expect(strstr(m2.s, "\nlog operand 0") && strstr(m2.s, "matmul operand 1") && !strstr(m2.s, "\nexp operand"),
            "%s", m2.s);
  tl_free(m2.s);
  gr_rules_free(few);
  gr_rules_free(r);
}

Test(rules, malformed_rules_are_reported_with_positions) {
  static const char *const cases[][2] = {
    {"(ruleset g (grad a (exp ?x) :wrt ?y => ?g))", "bad.rw:1:34: error: expected ':wrt ?x' naming an operand"},
    {"(ruleset g (grad a (frob ?x) :wrt ?x => ?g))", "bad.rw:1:21: error: expected an op of the op table, got 'frob'"},
    {"(ruleset g (grad a (exp ?x) :wrt ?x => (mul ?g ?z)))", "bad.rw:1:48: error: '?z' is not an operand"},
    {"(ruleset g (grad a (add ?x) :wrt ?x => ?g))", "bad.rw:1:21: error: add takes 2 operands"},
    {"(ruleset g (grad a (exp ?x) :wrt ?x => (mul ?g)))", "bad.rw:1:41: error: mul takes 2 operands, got 1"},
    {"(ruleset g (grad a (exp ?x) :wrt ?x => (sum ?g :perm [0])))", "bad.rw:1:48: error: sum does not take the attribute ':perm'"},
    {"(ruleset g (grad a (exp ?x) :wrt ?x => ?g :if (positive ?x)))", "bad.rw:1:48: error: expected a condition on types"},
    {"(ruleset g (grad a (take ?x ?i) :wrt ?i => ?g))", "bad.rw:1:38: error: operand 1 of take carries no gradient"},
    {"(ruleset g (grad a (exp ?x) :wrt ?x => ?g) (grad a (log ?x) :wrt ?x => ?g))",
     "bad.rw:1:50: error: duplicate derivative rule name 'a'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    gr_rules *r = gr_rules_new();
    tl_buf d = {0};
    int e = gr_rules_load(r, "bad.rw", cases[i][0], strlen(cases[i][0]), &d);
    cr_expect_gt(e, 0, "%s", cases[i][0]);
    cr_expect(d.s && strstr(d.s, cases[i][1]), "%s\ngave:\n%s", cases[i][0], d.s ? d.s : "(nothing)");
    cr_expect_eq(gr_rules_count(r), 0, "a text with errors adds nothing");
    tl_free(d.s);
    gr_rules_free(r);
  }
  /* the rest of a .rw file is the rewrite reader's: skipped here */
  gr_rules *r = gr_rules_new();
  const char *mixed = "(ruleset s (rule r (log (exp ?x)) => ?x) (fuse f exp :into any)) "
                      "(ruleset g (grad e (exp ?x) :wrt ?x => (mul ?g ?out)))";
  cr_expect_eq(gr_rules_load(r, "mixed.rw", mixed, strlen(mixed), NULL), 0);
  cr_expect_eq(gr_rules_count(r), 1);
  gr_rules_free(r);
}

/* A later text's rules for an (op, operand) replace the earlier ones. */
Test(rules, a_later_file_overrides) {
  gr_rules *r = shipped();
  const char *mine = "(ruleset mine (grad exp-twice (exp ?x) :wrt ?x => (mul (mul ?g ?out) 2)))";
  cr_assert_eq(gr_rules_load(r, "mine.rw", mine, strlen(mine), NULL), 0);
  tl_graph *g = parse("(graph e (in x f64 []) (out y (exp x)))");
  tl_graph *d = transform(g, r, GR_GRAD, false);
  char *text = tl_tg_print(d);
  cr_expect(strstr(text, "2)") != NULL, "the override was not used:\n%s", text);
  tl_tensor *x = tl_tensor_new(TL_F64, 0, NULL, NULL, 0), *out = NULL;
  tl_tensor_set_f64(x, 0, 0.5);
  char err[256];
  cr_assert_eq(tl_interp_run(d, &x, NULL, &out, err, sizeof err), 0, "%s", err);
  cr_expect_float_eq(tl_tensor_get_f64(out, 0), 2 * exp(0.5), 1e-12);
  tl_free(text);
  tl_tensor_free(x);
  tl_tensor_free(out);
  tl_graph_free(d);
  tl_graph_free(g);
  gr_rules_free(r);
}

/* ---- the examples against finite differences -------------------------------------------- */

typedef struct ex_ctx {
  gr_rules *r;
  int checked;
} ex_ctx;

/* VJP and JVP of one example (in f64) against the directional finite
 * difference of phi = sum_o <ct_o, y_o> along a random direction, and the
 * f32 gradient graph on every engine against the interpreter. */
static void check_example(const char *name, const char *src, size_t len, void *vctx) {
  ex_ctx *c = vctx;
  char *s64 = as_f64(src);
  tl_graph *g = parse(s64), *g32 = parse(src);
  cr_assert(g && g32, "%s", name);
  rng r = {0xabcdef + (uint64_t)len};
  bool any_float_in = false;
  for (int i = 0; i < g->ninputs; i++) any_float_in |= is_float_type(&g->nodes[g->inputs[i]].type);
  if (!any_float_in) goto done;
  tl_tensor **x = tl_xcalloc((size_t)g->ninputs + 1, sizeof *x), **v = tl_xcalloc((size_t)g->ninputs + 1, sizeof *v);
  tl_tensor **ct = tl_xcalloc((size_t)g->noutputs + 1, sizeof *ct);
  for (int i = 0; i < g->ninputs; i++) {
    const tl_type *t = &g->nodes[g->inputs[i]].type;
    x[i] = random_tensor(t, &r, 0.1, 0.9);
    if (is_float_type(t)) v[i] = random_tensor(t, &r, -1, 1);
  }
  for (int o = 0; o < g->noutputs; o++) {
    const tl_type *t = &g->nodes[g->outputs[o].node].type;
    if (is_float_type(t)) ct[o] = random_tensor(t, &r, -1, 1);
  }
  double fd = fd_along(g, x, v, ct);
  /* the VJP */
  tl_graph *vg = transform(g, c->r, GR_VJP, false);
  const char **xn = tl_xcalloc((size_t)g->noutputs + 1, sizeof *xn);
  tl_tensor **xv = tl_xcalloc((size_t)g->noutputs + 1, sizeof *xv);
  int nx = 0;
  char names[64][64];
  for (int o = 0; o < g->noutputs; o++)
    if (ct[o]) {
      snprintf(names[nx], sizeof names[nx], "ct_%s", g->names[g->outputs[o].name]);
      xn[nx] = names[nx];
      xv[nx++] = ct[o];
    }
  tl_tensor **vo = tl_xcalloc((size_t)vg->noutputs + 1, sizeof *vo);
  run_named(vg, g, x, xn, xv, nx, vo);
  double vjp_dot = 0;
  for (int i = 0; i < g->ninputs; i++) {
    if (!v[i]) continue;
    char on[80];
    snprintf(on, sizeof on, "vjp_%s", g->names[g->nodes[g->inputs[i]].name]);
    int o = output_index(vg, on);
    cr_assert_geq(o, 0, "%s: no output %s", name, on);
    vjp_dot += dot(vo[o], v[i]);
  }
  cr_expect(fabs(vjp_dot - fd) <= 1e-6 * (fabs(fd) + 1), "%s: <vjp, v> = %.12g, finite differences %.12g", name,
            vjp_dot, fd);
  for (int o = 0; o < vg->noutputs; o++) tl_tensor_free(vo[o]);
  tl_free(vo);
  /* the JVP: tangents t_<in> = v */
  tl_graph *jg = transform(g, c->r, GR_JVP, false);
  char tn[64][64];
  const char **tname = tl_xcalloc((size_t)g->ninputs + 1, sizeof *tname);
  tl_tensor **tval = tl_xcalloc((size_t)g->ninputs + 1, sizeof *tval);
  int nt = 0;
  for (int i = 0; i < g->ninputs; i++)
    if (v[i]) {
      snprintf(tn[nt], sizeof tn[nt], "t_%s", g->names[g->nodes[g->inputs[i]].name]);
      tname[nt] = tn[nt];
      tval[nt++] = v[i];
    }
  tl_tensor **jo = tl_xcalloc((size_t)jg->noutputs + 1, sizeof *jo);
  run_named(jg, g, x, tname, tval, nt, jo);
  double jvp_dot = 0;
  for (int o = 0; o < g->noutputs; o++) {
    if (!ct[o]) continue;
    char on[80];
    snprintf(on, sizeof on, "jvp_%s", g->names[g->outputs[o].name]);
    int k = output_index(jg, on);
    cr_assert_geq(k, 0, "%s: no output %s", name, on);
    jvp_dot += dot(ct[o], jo[k]);
  }
  cr_expect(fabs(jvp_dot - fd) <= 1e-6 * (fabs(fd) + 1), "%s: <ct, jvp> = %.12g, finite differences %.12g", name,
            jvp_dot, fd);
  for (int o = 0; o < jg->noutputs; o++) tl_tensor_free(jo[o]);
  tl_free(jo);
  for (int i = 0; i < jg->ninputs; i++)
    cr_expect(strncmp(jg->names[jg->nodes[jg->inputs[i]].name], "ct_", 3), "%s: the JVP kept a cotangent input", name);
  /* the f32 VJP graph compiles and runs the same on every engine */
  tl_graph *vg32 = transform(g32, c->r, GR_VJP, true);
  tl_tensor **ins = tl_xcalloc((size_t)vg32->ninputs + 1, sizeof *ins);
  int64_t *syms = tl_xmalloc(((size_t)vg32->nsyms + 1) * sizeof *syms);
  for (int i = 0; i < vg32->nsyms; i++) syms[i] = 3;
  tl_error err = {0};
  cr_assert_eq(tl_random_inputs(vg32, ins, syms, 7, TL_EMSG(&err)), 0, "%s", err.msg);
  for (int i = 0; i < vg32->ninputs; i++) /* positive inputs: logs stay finite */
    for (int64_t k = 0; is_float_type(&vg32->nodes[vg32->inputs[i]].type) && k < ins[i]->numel; k++)
      tl_tensor_set_f64(ins[i], k, 0.1 + 0.8 * uni(&r));
  tl_tensor **ref = tl_xcalloc((size_t)vg32->noutputs + 1, sizeof *ref);
  cr_assert_eq(tl_interp_run(vg32, ins, syms, ref, TL_EMSG(&err)), 0, "%s: %s", name, err.msg);
  for (int e = 0; tl_engine_at(e); e++) {
    const tl_engine *eng = tl_engine_at(e);
    char why[512];
    if (eng->available && !eng->available(why, sizeof why)) { /* the gpu engine without a GPU */
      static int said;
      if (!said++) printf("engine %s skipped: %s\n", eng->name, why);
      continue;
    }
    tl_engine_opts eo = tl_engine_opts_default();
    eo.use_cache = -1;
    void *prog = eng->compile(vg32, &eo, &err);
    cr_assert(prog, "%s on %s: %s", name, eng->name, err.msg);
    tl_tensor **got = tl_xcalloc((size_t)vg32->noutputs + 1, sizeof *got);
    cr_assert_eq(eng->run(prog, ins, syms, got, &err), 0, "%s on %s: %s", name, eng->name, err.msg);
    for (int o = 0; o < vg32->noutputs; o++) {
      char why[256];
      cr_expect(tlt_close_enough(ref[o], got[o], why, sizeof why), "%s on %s, output %s: %s", name, eng->name,
                vg32->names[vg32->outputs[o].name], why);
      tl_tensor_free(got[o]);
    }
    tl_free(got);
    eng->free(prog);
  }
  for (int o = 0; o < vg32->noutputs; o++) tl_tensor_free(ref[o]);
  for (int i = 0; i < vg32->ninputs; i++) tl_tensor_free(ins[i]);
  tl_free(ref);
  tl_free(ins);
  tl_free(syms);
  tl_graph_free(vg32);
  c->checked++;
  tl_free(tname);
  tl_free(tval);
  tl_free(xn);
  tl_free(xv);
  tl_graph_free(vg);
  tl_graph_free(jg);
  for (int i = 0; i < g->ninputs; i++) {
    tl_tensor_free(x[i]);
    tl_tensor_free(v[i]);
  }
  for (int o = 0; o < g->noutputs; o++) tl_tensor_free(ct[o]);
  tl_free(x);
  tl_free(v);
  tl_free(ct);
done:
  tl_graph_free(g);
  tl_graph_free(g32);
  tl_free(s64);
}

Test(transform, examples_against_finite_differences_on_every_engine) {
  ex_ctx c = {shipped(), 0};
  int n = tlt_each_tg(TL_SOURCE_DIR "/examples", check_example, &c);
  cr_expect_gt(n, 10);
  cr_expect_geq(c.checked, 12, "%d example graphs differentiated", c.checked);
  gr_rules_free(c.r);
}

/* ---- grad of grad: Hessian-vector products ------------------------------------------------- */

/* H v from the VJP of the gradient graph (cotangents v on its outputs)
 * against the central difference of the gradient along v. */
static void check_hvp(const char *src) {
  gr_rules *r = shipped();
  tl_graph *g = parse(src);
  cr_assert(g);
  tl_graph *g1 = transform(g, r, GR_GRAD, false); /* outputs d<f>_d<x>, one per float input */
  tl_graph *g2 = transform(g1, r, GR_VJP, false); /* inputs ct_d<f>_d<x>: outputs H v */
  rng rr = {99};
  tl_tensor **x = tl_xcalloc((size_t)g->ninputs + 1, sizeof *x), **v = tl_xcalloc((size_t)g->ninputs + 1, sizeof *v);
  for (int i = 0; i < g->ninputs; i++) {
    x[i] = random_tensor(&g->nodes[g->inputs[i]].type, &rr, 0.2, 0.9);
    v[i] = random_tensor(&g->nodes[g->inputs[i]].type, &rr, -1, 1);
  }
  const char *names[16];
  char buf[16][80];
  tl_tensor *vals[16];
  for (int o = 0; o < g1->noutputs; o++) {
    snprintf(buf[o], sizeof buf[o], "ct_%s", g1->names[g1->outputs[o].name]);
    names[o] = buf[o];
    /* output o of g1 is d f / d (input o): its cotangent is v of that input */
    int i = input_index(g, g1->names[g1->outputs[o].name] + strlen(g1->names[g1->outputs[o].name]) -
                               strlen(g->names[g->nodes[g->inputs[o]].name]));
    vals[o] = v[i >= 0 ? i : o];
  }
  tl_tensor **hv = tl_xcalloc((size_t)g2->noutputs + 1, sizeof *hv);
  run_named(g2, g, x, names, vals, g1->noutputs, hv);
  /* (grad(x + h v) - grad(x - h v)) / 2h */
  double h = 1e-5;
  tl_tensor **gp = tl_xcalloc((size_t)g1->noutputs + 1, sizeof *gp), **gm = tl_xcalloc((size_t)g1->noutputs + 1, sizeof *gm);
  for (int s = 0; s < 2; s++) {
    tl_tensor **xs = tl_xcalloc((size_t)g->ninputs + 1, sizeof *xs);
    for (int i = 0; i < g->ninputs; i++) {
      xs[i] = tl_tensor_copy(x[i]);
      for (int64_t k = 0; k < xs[i]->numel; k++)
        tl_tensor_set_f64(xs[i], k, tl_tensor_get_f64(x[i], k) + (s ? -h : h) * tl_tensor_get_f64(v[i], k));
    }
    run_named(g1, g, xs, NULL, NULL, 0, s ? gm : gp);
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(xs[i]);
    tl_free(xs);
  }
  for (int o = 0; o < g2->noutputs; o++) {
    const char *in = g2->names[g2->outputs[o].name] + 4; /* vjp_<input> */
    int k = -1;
    for (int q = 0; q < g1->noutputs; q++) {
      const char *gn = g1->names[g1->outputs[q].name];
      size_t l = strlen(gn), li = strlen(in);
      if (l > li && !strcmp(gn + l - li, in) && gn[l - li - 2] == '_' && gn[l - li - 1] == 'd') k = q;
    }
    cr_assert_geq(k, 0, "%s", in);
    for (int64_t e = 0; e < hv[o]->numel; e++) {
      double fd = (tl_tensor_get_f64(gp[k], e) - tl_tensor_get_f64(gm[k], e)) / (2 * h);
      double a = tl_tensor_get_f64(hv[o], e);
      cr_expect(fabs(a - fd) <= 1e-5 * (fabs(fd) + 1), "%s: (H v)[%s][%lld] = %.12g, finite differences %.12g",
                g->name, in, (long long)e, a, fd);
    }
  }
  for (int o = 0; o < g1->noutputs; o++) {
    tl_tensor_free(gp[o]);
    tl_tensor_free(gm[o]);
  }
  for (int o = 0; o < g2->noutputs; o++) tl_tensor_free(hv[o]);
  for (int i = 0; i < g->ninputs; i++) {
    tl_tensor_free(x[i]);
    tl_tensor_free(v[i]);
  }
  tl_free(gp);
  tl_free(gm);
  tl_free(hv);
  tl_free(x);
  tl_free(v);
  tl_graph_free(g2);
  tl_graph_free(g1);
  tl_graph_free(g);
  gr_rules_free(r);
}

Test(transform, grad_of_grad_is_a_hessian_vector_product) {
  check_hvp("(graph mlp (in x f64 [4 3]) (in w f64 [3 5]) (in u f64 [5])"
            " (out loss (sum (mul (tanh (matmul x w)) u))))");
  check_hvp("(graph xent (in x f64 [3 4]) (in y f64 [3 4])"
            " (out loss (neg (mean (sum (mul y (log_softmax x :axis 1)) :axis 1)))))");
  check_hvp("(graph misc (in a f64 [3]) (in b f64 [2 3])"
            " (out s (sum (add (logsumexp (mul a b) :axis 1) (prod (div (exp a) (add b 1)) :axis 1)))))"
            );
}

/* ---- a loop's forward pass runs once --------------------------------------------------------------
 * A while loop's gradient counts its trips with the same loop carrying a
 * counter as its last state; the forward loop's nodes become results of
 * that run (grad/transform.c share_counted_loops), so a gradient with its
 * outputs runs two loops
 * (forward with the count, backward), not three. Unoptimized and optimized;
 * with and without a post-condition; two outputs (a backward loop each). */
static int loop_kernels(const tl_graph *g) {
  be_plan pl;
  char err[512];
  cr_assert_eq(be_plan_build(&pl, g, err, sizeof err), 0, "%s: %s", g->name, err);
  int n = 0;
  for (int i = 0; i < pl.nks; i++)
    if (pl.ks[i].kind == BE_K_CONTROL && g->nodes[pl.ks[i].node].op == TL_OP_LOOP) n++;
  be_plan_free(&pl);
  return n;
}

Test(transform, a_loops_forward_pass_runs_once) {
  static const char *const src[] = {
      "(func go (in x f64 [n]) (out c (lt (sum x) 4.0)))"
      "(func dbl (in x f64 [n]) (out y (mul x 2.0)))"
      "(graph l (in x f64 [n]) (out y (sum (loop x :cond go :body dbl :max 50))))",
      "(func go (in x f64 [n]) (in k i64 []) (out c (lt (sum x) 4.0)))"
      "(func stop (in x f64 [n]) (in k i64 []) (out c (gt k 3)))"
      "(func step (in x f64 [n]) (in k i64 []) (out y (sin (mul x 1.5))) (out k2 (add k 1)))"
      "(graph u (in x f64 [n]) (let [y k] (loop x (fill i64 [] 0) :cond go :body step :until stop"
      " :max unbounded)) (out s (sum (mul y y))))",
      /* two outputs: two sweeps, each counting the loop; one run */
      "(func go (in x f64 [n]) (out c (lt (sum x) 4.0)))"
      "(func dbl (in x f64 [n]) (out y (mul x 2.0)))"
      "(graph two (in x f64 [n]) (let y (loop x :cond go :body dbl :max 50)) (out a (sum y))"
      " (out b (sum (sin y))))",
  };
  gr_rules *r = shipped();
  tl_opt_params op = tl_opt_defaults();
  tl_error err = {0};
  tl_opt *o = tl_opt_new(&op, TL_EMSG(&err));
  cr_assert(o, "%s", err.msg);
  for (size_t i = 0; i < sizeof src / sizeof *src; i++) {
    tl_graph *g = parse(src[i]);
    cr_assert(g, "case %zu", i);
    tl_graph *d = transform(g, r, GR_GRAD, true);
    int want = 1 + g->noutputs; /* the forward loop with its count, a backward loop per output */
    cr_expect_eq(loop_kernels(d), want, "%s: %d loops run, expected %d: the forward one (counting) once",
                 g->name, loop_kernels(d), want);
    tl_graph *best = tl_opt_graph(o, d, &err);
    cr_assert(best, "%s: %s", g->name, err.msg);
    cr_expect_eq(loop_kernels(best), want, "%s optimized: %d loops run, expected %d", g->name, loop_kernels(best),
                 want);
    tl_graph_free(best);
    tl_graph_free(d);
    tl_graph_free(g);
  }
  tl_opt_free(o);
  gr_rules_free(r);
}

/* ---- deep graphs ------------------------------------------------------------------------------ */

/* y = sin(sin(...sin(x))) 2x10^5 deep (a recursion over the depth would
 * overflow the stack well before; bench/grad times 10^6): the transform
 * and its compaction loop over ids. The derivative is the product of the
 * cosines, checked on a shorter chain through the interpreter. */
Test(transform, a_deep_chain) {
  gr_rules *r = shipped();
  tl_graph *g = tl_graph_new("deep");
  tl_type t = {.dtype = TL_F64};
  int32_t y = tl_graph_add_input(g, "x", &t, (tl_loc){0, 0});
  char err[256];
  const int depth = 200000;
  for (int i = 0; i < depth; i++) y = tl_graph_add(g, TL_OP_SIN, NULL, &y, 1, (tl_loc){0, 0}, err, sizeof err);
  tl_graph_add_output(g, "y", y);
  double t0 = tl_now_ms();
  tl_graph *d = transform(g, r, GR_GRAD, false);
  double ms = tl_now_ms() - t0;
  cr_expect_geq(d->nnodes, 2 * depth);
  /* the value, on a shorter chain (the interpreter keeps one tensor per node) */
  tl_graph *g2 = tl_graph_new("chain");
  y = tl_graph_add_input(g2, "x", &t, (tl_loc){0, 0});
  for (int i = 0; i < 1000; i++) y = tl_graph_add(g2, TL_OP_SIN, NULL, &y, 1, (tl_loc){0, 0}, err, sizeof err);
  tl_graph_add_output(g2, "y", y);
  tl_graph *d2 = transform(g2, r, GR_GRAD, false);
  tl_tensor *x = tl_tensor_new(TL_F64, 0, NULL, NULL, 0), *out = NULL;
  tl_tensor_set_f64(x, 0, 0.7);
  cr_assert_eq(tl_interp_run(d2, &x, NULL, &out, err, sizeof err), 0, "%s", err);
  double v = 0.7, p = 1;
  for (int i = 0; i < 1000; i++) {
    p *= cos(v);
    v = sin(v);
  }
  cr_expect(fabs(tl_tensor_get_f64(out, 0) - p) <= 1e-12 * fabs(p), "%.17g vs %.17g", tl_tensor_get_f64(out, 0), p);
  printf("grad of a %d-deep chain: %.0f ms\n", depth, ms);
  tl_tensor_free(x);
  tl_tensor_free(out);
  tl_graph_free(d2);
  tl_graph_free(g2);
  tl_graph_free(d);
  tl_graph_free(g);
  gr_rules_free(r);
}

/* ---- the optimizer on gradients ------------------------------------------------------------ */

/* The nodes the outputs read, directly or not (the caller frees). */
static bool *live_nodes(const tl_graph *g) {
  bool *live = tl_xcalloc((size_t)g->nnodes + 1, 1);
  for (int i = 0; i < g->noutputs; i++) live[g->outputs[i].node] = true;
  for (int32_t id = g->nnodes - 1; id >= 0; id--)
    if (live[id])
      for (int k = 0; k < g->nodes[id].ninputs; k++) live[tl_node_inputs(g, &g->nodes[id])[k]] = true;
  return live;
}

static int count_nodes(const tl_graph *g) {
  bool *live = live_nodes(g);
  int n = 0;
  for (int32_t id = 0; id < g->nnodes; id++) n += live[id] && g->nodes[id].op != TL_OP_INPUT && g->nodes[id].op != TL_OP_LIT;
  tl_free(live);
  return n;
}

typedef struct win {
  const char *name, *src;
  const char *want;              /* in the optimized VJP's text */
  double x_extreme;              /* an input value where the naive gradient is not finite */
  const char *wrt[2];            /* the parameters (NULL: every float input) */
  bool more_ops;                 /* the accuracy cost may keep a larger form (below) */
} win;

/* Every float input set to v (others 1): the VJP's outputs (ct = 1). */
static tl_tensor **run_vjp(const tl_graph *vg, double v, int64_t n) {
  tl_tensor **ins = tl_xcalloc((size_t)vg->ninputs + 1, sizeof *ins);
  for (int i = 0; i < vg->ninputs; i++) {
    const tl_type *t = &vg->nodes[vg->inputs[i]].type;
    int64_t dims[TL_MAX_RANK];
    for (int k = 0; k < t->rank; k++) dims[k] = tl_dim_is_sym(t->dims[k]) ? n : t->dims[k];
    ins[i] = tl_tensor_new((tl_dtype)t->dtype, t->rank, dims, NULL, 0);
    const char *nm = vg->names[vg->nodes[vg->inputs[i]].name];
    bool onehot = !strcmp(nm, "y") && t->rank == 2;
    for (int64_t k = 0; k < ins[i]->numel; k++) {
      double val = !strncmp(nm, "ct_", 3) ? 1 : onehot ? (k % dims[1] == dims[1] - 1) : !strcmp(nm, "y") ? 1 : v;
      if (!strcmp(nm, "x") && t->rank == 2) val = k % dims[1] == 0 ? v : -v; /* rows (v, -v, ...) */
      tl_tensor_set_f64(ins[i], k, val);
    }
  }
  tl_tensor **outs = tl_xcalloc((size_t)vg->noutputs + 1, sizeof *outs);
  char err[512];
  cr_assert_eq(tl_interp_run(vg, ins, NULL, outs, err, sizeof err), 0, "%s", err);
  for (int i = 0; i < vg->ninputs; i++) tl_tensor_free(ins[i]);
  tl_free(ins);
  return outs;
}

static bool all_finite(tl_tensor *const *t, int n) {
  for (int o = 0; o < n; o++)
    for (int64_t k = 0; k < t[o]->numel; k++)
      if (!isfinite(tl_tensor_get_f64(t[o], k))) return false;
  return true;
}

/* Six naive losses whose gradients the stability and algebraic rules
 * (rules/stability.rw "gradient shapes", algebraic.rw mul-neg) make
 * finite and smaller: on an input where the naive VJP is inf or NaN, the
 * optimized one is finite, has fewer ops, and agrees with the naive one
 * on moderate inputs. With respect to the parameters (logits, weights):
 * a gradient with respect to the labels is a log of the probabilities,
 * which extraction keeps as xlogy (-inf where a probability underflows). */
Test(optimize, gradients_become_stable) {
  static const win wins[] = {
    {"softplus", "(graph g (in x f32 [4]) (out y (log (add 1 (exp x)))))", "(sigmoid x)", 100, {NULL, NULL}, false},
    {"sigmoid", "(graph g (in x f32 [4]) (out y (div (exp x) (add 1 (exp x)))))", "(sigmoid x)", 100, {NULL, NULL}, false},
    {"xent", "(graph g (in x f32 [2 4]) (in y f32 [2 4])"
             " (out loss (neg (mean (sum (mul y (log (softmax x :axis 1))) :axis 1)))))", "(softmax x", 60, {"x", NULL}, false},
    {"log-softmax", "(graph g (in x f32 [2 4]) (out y (log (softmax x :axis -1))))", "(softmax x", 60, {NULL, NULL}, false},
    {"logsumexp", "(graph g (in x f64 [2 4]) (out y (log (sum (exp x) :axis 1))))", "(softmax x", 800, {NULL, NULL}, false},
    {"logreg", "(graph g (in x f64 [3]) (in w f64 []) (in y f64 [3])"
               " (let p (sigmoid (mul x w))) (out nll (neg (mean (add (mul y (log p)) (mul (sub 1 y) (log (sub 1 p))))))))",
     /* the accuracy cost, which charges only the adds and subs whose
      * operands' sign facts allow a cancellation (docs/accuracy.md), prices
      * a form with one op more than the naive VJP lower; it is finite
      * where the naive one is not */
     "sigmoid", 40, {"x", "w"}, true},
  };
  gr_rules *r = shipped();
  tl_opt_params op = tl_opt_defaults();
  tl_error err = {0};
  tl_opt *o = tl_opt_new(&op, TL_EMSG(&err));
  cr_assert(o, "%s", err.msg);
  for (size_t i = 0; i < sizeof wins / sizeof *wins; i++) {
    const win *w = &wins[i];
    tl_graph *g = parse(w->src);
    cr_assert(g, "%s", w->name);
    gr_params p = {.mode = GR_VJP, .wrt = w->wrt, .nwrt = w->wrt[1] ? 2 : w->wrt[0] ? 1 : 0};
    tl_graph *vg = gr_transform(g, r, &p, TL_EMSG(&err));
    cr_assert(vg, "%s: %s", w->name, err.msg);
    tl_graph *best = tl_opt_graph(o, vg, &err);
    cr_assert(best, "%s: %s", w->name, err.msg);
    char *text = tl_tg_print(best);
    cr_expect(strstr(text, w->want) != NULL, "%s: the optimized gradient has no %s:\n%s", w->name, w->want, text);
    if (!w->more_ops)
      cr_expect_lt(count_nodes(best), count_nodes(vg), "%s: %d ops optimized, %d naive", w->name,
                   count_nodes(best), count_nodes(vg));
    tl_tensor **naive = run_vjp(vg, w->x_extreme, 2), **opt = run_vjp(best, w->x_extreme, 2);
    cr_expect(!all_finite(naive, vg->noutputs), "%s: the naive gradient is finite at %g", w->name, w->x_extreme);
    cr_expect(all_finite(opt, best->noutputs), "%s: the optimized gradient is not finite at %g:\n%s", w->name,
              w->x_extreme, text);
    for (int k = 0; k < vg->noutputs; k++) {
      tl_tensor_free(naive[k]);
      tl_tensor_free(opt[k]);
    }
    tl_free(naive);
    tl_free(opt);
    naive = run_vjp(vg, 0.3, 2);
    opt = run_vjp(best, 0.3, 2);
    for (int k = 0; k < vg->noutputs; k++) {
      char why[256];
      cr_expect(tlt_close_enough(naive[k], opt[k], why, sizeof why), "%s: %s", w->name, why);
      tl_tensor_free(naive[k]);
      tl_tensor_free(opt[k]);
    }
    tl_free(naive);
    tl_free(opt);
    tl_free(text);
    tl_graph_free(best);
    tl_graph_free(vg);
    tl_graph_free(g);
  }
  tl_opt_free(o);
  gr_rules_free(r);
}

/* Live rank-2 matmuls of at least `work` multiply-adds. */
static int big_products(const tl_graph *g, int64_t work) {
  bool *live = live_nodes(g);
  int n = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const tl_node *x = &g->nodes[id];
    if (live[id] && x->op == TL_OP_MATMUL && x->type.rank == 2)
      n += x->type.dims[0] * x->type.dims[1] * g->nodes[tl_node_inputs(g, x)[0]].type.dims[1] >= work;
  }
  tl_free(live);
  return n;
}

/* One attention head's weight gradients: reverse mode gives six products
 * with a t x t operand or result (the scores, a v, dA = dO v^T, dv = a^T dO,
 * dq = dS k, dk = dS^T q). Written out, four suffice: dWq = (x^T dS x) Wk
 * and dWk = (x^T dS x)^T Wq share x^T dS, and with v = x Wv the output
 * a v = (a x) Wv and dWv = x^T a^T dO = (a x)^T dO share a x. The e-graph
 * finds both through matmul-assoc, matmul-transpose (both ways) and
 * transpose-transpose, which match the gradient rules' transposes only
 * because a reversing :perm is stored as the default transpose. The
 * optimized gradient agrees with the naive one. */
Test(optimize, attention_gradient_shares_large_products) {
  const int t = 256, d = 16;
  char src[1024];
  snprintf(src, sizeof src,
           "(graph g (in x f32 [%d %d]) (in y f32 [%d %d]) (in Wq f32 [%d %d]) (in Wk f32 [%d %d]) (in Wv f32 [%d %d])"
           " (let a (softmax (mul (matmul (matmul x Wq) (transpose (matmul x Wk))) 0.25) :axis -1))"
           " (let o (matmul a (matmul x Wv)))"
           " (out loss (mean (mul (sub o y) (sub o y)))))",
           t, d, t, d, d, d, d, d, d, d);
  gr_rules *r = shipped();
  tl_graph *g = parse(src);
  cr_assert(g);
  const char *wrt[] = {"Wq", "Wk", "Wv"};
  gr_params p = {.mode = GR_GRAD, .wrt = wrt, .nwrt = 3};
  tl_error err = {0};
  tl_graph *vg = gr_transform(g, r, &p, TL_EMSG(&err));
  cr_assert(vg, "%s", err.msg);
  tl_opt_params op = tl_opt_defaults();
  tl_opt *o = tl_opt_new(&op, TL_EMSG(&err));
  cr_assert(o, "%s", err.msg);
  tl_graph *best = tl_opt_graph(o, vg, &err);
  cr_assert(best, "%s", err.msg);
  char *text = tl_tg_print(best);
  int64_t work = (int64_t)t * t * d;
  cr_expect_eq(big_products(vg, work), 6, "the naive gradient");
  cr_expect_eq(big_products(best, work), 4, "the optimized gradient:\n%s", text);
  /* the same values, on inputs of both signs */
  tl_tensor *ins[5];
  cr_assert_eq(vg->ninputs, 5);
  cr_assert_eq(vg->noutputs, 3);
  for (int i = 0; i < vg->ninputs; i++) {
    const tl_type *ty = &vg->nodes[vg->inputs[i]].type;
    ins[i] = tl_tensor_new((tl_dtype)ty->dtype, ty->rank, ty->dims, NULL, 0);
    for (int64_t k = 0; k < ins[i]->numel; k++) tl_tensor_set_f64(ins[i], k, sin(0.7 * (double)k + i) * (i >= 2 ? 0.3 : 1));
  }
  tl_tensor *want[3] = {0}, *got[3] = {0};
  char e[512];
  cr_assert_eq(tl_interp_run(vg, ins, NULL, want, e, sizeof e), 0, "%s", e);
  cr_assert_eq(tl_interp_run(best, ins, NULL, got, e, sizeof e), 0, "%s", e);
  for (int k = 0; k < 3; k++) {
    char why[256];
    cr_expect(tlt_close_enough(want[k], got[k], why, sizeof why), "%s: %s", wrt[k], why);
    tl_tensor_free(want[k]);
    tl_tensor_free(got[k]);
  }
  for (int i = 0; i < vg->ninputs; i++) tl_tensor_free(ins[i]);
  tl_free(text);
  tl_graph_free(best);
  tl_opt_free(o);
  tl_graph_free(vg);
  tl_graph_free(g);
  gr_rules_free(r);
}

/* ---- names and errors ---------------------------------------------------------------------- */

Test(transform, names_and_modes) {
  gr_rules *r = shipped();
  tl_graph *g = parse("(graph f (in x f32 [n 2]) (in w f32 [2]) (in k i64 [])"
                      " (out loss (sum (mul x w))) (out z (mul x 2.0)))");
  gr_params p = {.mode = GR_GRAD, .of = (const char *[]){"loss"}, .nof = 1, .with_outputs = true};
  char err[1024];
  tl_graph *d = gr_transform(g, r, &p, err, sizeof err);
  cr_assert(d, "%s", err);
  cr_expect_eq(d->noutputs, 4);
  cr_expect_str_eq(d->names[d->outputs[0].name], "loss");
  cr_expect_str_eq(d->names[d->outputs[1].name], "z");
  cr_expect_str_eq(d->names[d->outputs[2].name], "dloss_dx");
  cr_expect_str_eq(d->names[d->outputs[3].name], "dloss_dw");
  cr_expect_eq(d->ninputs, 3, "every input stays, in order");
  tl_graph_free(d);
  p = (gr_params){.mode = GR_VJP, .wrt = (const char *[]){"w"}, .nwrt = 1};
  d = gr_transform(g, r, &p, err, sizeof err);
  cr_assert(d, "%s", err);
  cr_expect_eq(d->ninputs, 5);
  cr_expect_str_eq(d->names[d->nodes[d->inputs[3]].name], "ct_loss");
  cr_expect_str_eq(d->names[d->nodes[d->inputs[4]].name], "ct_z");
  cr_expect_str_eq(d->names[d->outputs[0].name], "vjp_w");
  tl_graph_free(d);
  p = (gr_params){.mode = GR_JVP, .wrt = (const char *[]){"x"}, .nwrt = 1};
  d = gr_transform(g, r, &p, err, sizeof err);
  cr_assert(d, "%s", err);
  cr_expect_str_eq(d->names[d->nodes[d->inputs[3]].name], "t_x");
  cr_expect_str_eq(d->names[d->outputs[0].name], "jvp_loss");
  cr_expect_str_eq(d->names[d->outputs[1].name], "jvp_z");
  tl_graph_free(d);
  /* an input the output does not depend on has a zero gradient */
  tl_graph *u = parse("(graph u (in x f32 [3]) (in y f32 [3]) (out s (sum x)))");
  d = transform(u, r, GR_GRAD, false);
  char *text = tl_tg_print(d);
  cr_expect(strstr(text, "(out ds_dy (fill f32 [3] 0.0))"), "%s", text);
  tl_free(text);
  tl_graph_free(d);
  tl_graph_free(u);
  /* errors */
  const struct { gr_params p; const char *want; } bad[] = {
    {{.mode = GR_GRAD, .of = (const char *[]){"z"}, .nof = 1}, "output 'z' is f32[n 2], not a scalar"},
    {{.mode = GR_GRAD, .of = (const char *[]){"nope"}, .nof = 1}, "the graph has no output 'nope'"},
    {{.mode = GR_GRAD, .of = (const char *[]){"loss"}, .nof = 1, .wrt = (const char *[]){"k"}, .nwrt = 1},
     "input 'k' is i64[]: only float inputs have gradients"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cr_expect_null(gr_transform(g, r, &bad[i].p, err, sizeof err));
    cr_expect(strstr(err, bad[i].want), "%s", err);
  }
  gr_rules *none = gr_rules_new();
  p = (gr_params){.mode = GR_GRAD, .of = (const char *[]){"loss"}, .nof = 1};
  cr_expect_null(gr_transform(g, none, &p, err, sizeof err));
  cr_expect(strstr(err, "no derivative rule for sum with respect to operand 0"), "%s", err);
  gr_rules_free(none);
  tl_graph_free(g);
  gr_rules_free(r);
}
