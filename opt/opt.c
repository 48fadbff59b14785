/* opt.c - the optimizer driver (opt.h): the pipeline as a straight list of
 * steps — load, saturate phase by phase, extract, rebuild a graph. */
#include "opt/opt.h"

#include "egraph/explain.h"
#include "ir/tg.h"
#include "opt/control.h"
#include "opt/tensor.h"
#include "util/util.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


struct tl_opt {
  tl_opt_params p;
  tn_ctx *ctx;
  tn_mark rules_mark; /* the context as the rules left it */
  eg_rules *rules;
  tl_cost_registry *costs;
  tl_cost_expr *objective;
  bool check_costs; /* the monotonicity contract (debug builds, or p.check) */
  /* the last run, for statistics and explanations */
  eg_egraph *e;
  eg_report *report;
  uint32_t *choice;    /* per e-graph id: the chosen node of that class, or EG_NONE */
  uint32_t *ex_class;  /* per e-graph id: its class in the ex_graph, or EX_NONE */
  double *values;      /* per ex_graph class: its value properties [nprops] */
  double *totals;      /* the program's cost properties */
  tl_opt_cost_report cost;
  bool have_cost;
  eg_id *orig, *roots; /* per output: the loaded term and its class */
  char **out_names;
  int nout;
  /* control-flow rules: the table the current graph is optimized against
   * (NULL: no functions), which rulesets are active, applications per rule */
  tl_fns *fns;
  double *fn_tot; /* per function of fns: its tl_cost_graph totals [nprops], for extraction */
  bool *ctl_active;
  size_t *ctl_applied;
};

tl_opt_params tl_opt_defaults(void) {
  tl_opt_params p;
  memset(&p, 0, sizeof p);
  p.limits.iters = 30;
  p.limits.nodes = 100000;
  p.nodes_per_node = 10;
  p.limits.bytes = (size_t)2 << 30;
  p.limits.seconds = 10.0;
  p.run = eg_run_defaults();
  p.extract = EX_DAG;
  p.dag_max_classes = 16384; /* 32 MiB of bitsets */
  p.extract_seconds = 10.0;
  p.sym_size = 1024;
  return p;
}


/* Loads a .rw file, or every .rw file of a folder in name order. */
static int load_path(eg_rules *r, const char *path, tl_diag *d, tl_buf *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    tl_buf_printf(err, "%s: no such rule file or folder\n", path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return eg_rules_load_file(r, path, d);
  int n = 0, errors = 0;
  char **names = tl_dir_list(path, ".rw", &n);
  if (!names) {
    tl_buf_printf(err, "%s: cannot open folder\n", path);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    tl_buf full = {0};
    tl_buf_printf(&full, "%s/%s", path, names[i]);
    errors += eg_rules_load_file(r, full.s, d);
    tl_free(full.s);
  }
  tl_dir_list_free(names, n);
  return errors;
}

/* `ops`: the per-op weights of the greedy extractor that came before the
 * registry (tn_op_weights), kept as a property so its choices can be
 * compared with the model's: `--cost ops`. */
typedef struct ops_prop {
  const double *weights;
  int id;
} ops_prop;

static double ops_cost(const tl_cost_node *n, void *user) {
  const ops_prop *op = user;
  double c = op->weights[n->op];
  for (int k = 0; k < n->nin; k++) c += n->in[k][op->id];
  return c;
}

/* The registry: built-ins, `ops`, then the plugins. -1 with a message. */
static int setup_costs(tl_opt *o, const tl_profile *given, char *err, size_t err_size) {
  tl_profile prof;
  if (given) {
    prof = *given;
  } else {
    char perr[512];
    if (tl_profile_get(&prof, perr, sizeof perr) != 0) {
      snprintf(err, err_size, "machine profile: %s", perr);
      return -1;
    }
  }
  o->costs = tl_cost_registry_new(&prof, o->p.sym_size > 0 ? o->p.sym_size : 1024);
  ops_prop *op = tl_xmalloc(sizeof *op);
  op->weights = tn_op_weights();
  tl_cost_keep(o->costs, op, tl_free);
  op->id = tl_cost_add_property(o->costs, "ops", TL_PROP_COST, ops_cost, op, err, err_size);
  if (op->id < 0) return -1;
  for (int i = 0; i < o->p.nplugins; i++)
    if (tl_cost_load_plugin(o->costs, o->p.plugins[i], err, err_size)) return -1;
#ifndef NDEBUG
  o->check_costs = true;
#else
  o->check_costs = o->p.check;
#endif
  return tl_opt_set_cost(o, o->p.cost ? o->p.cost : TL_COST_DEFAULT, err, err_size);
}

tl_opt *tl_opt_new(const tl_opt_params *p, char *err, size_t err_size) {
  tl_opt *o = tl_xcalloc(1, sizeof *o);
  o->p = *p;
  o->p.profile = NULL; /* copied into the registry; the caller's may go */
  o->ctx = tn_ctx_new();
  o->rules = eg_rules_new(&o->ctx->lang, o->ctx->conds);
  tl_diag d = {0};
  tl_buf msgs = {0};
  int errors = 0;
  if (p->nrule_paths == 0) errors += load_path(o->rules, tl_rules_dir(), &d, &msgs);
  for (int i = 0; i < p->nrule_paths; i++) errors += load_path(o->rules, p->rule_paths[i], &d, &msgs);
  if (errors) {
    snprintf(err, err_size, "%s%s", msgs.s ? msgs.s : "", d.nerrors ? tl_diag_text(&d) : "");
    tl_free(msgs.s);
    tl_diag_free(&d);
    tl_opt_free(o);
    return NULL;
  }
  tl_free(msgs.s);
  tl_diag_free(&d);
  o->rules_mark = tn_ctx_mark(o->ctx);
  if (setup_costs(o, p->profile, err, err_size)) {
    tl_opt_free(o);
    return NULL;
  }
  /* used up: the objective and the plugins now live in the registry */
  o->p.cost = NULL;
  o->p.plugins = NULL;
  o->p.nplugins = 0;
  return o;
}

tl_cost_registry *tl_opt_costs(tl_opt *o) { return o->costs; }

int tl_opt_set_cost(tl_opt *o, const char *expr, char *err, size_t err_size) {
  tl_cost_expr *x = tl_cost_expr_parse(o->costs, expr, err, err_size);
  if (!x) return -1;
  tl_cost_expr_free(o->objective);
  o->objective = x;
  return 0;
}

const tl_opt_cost_report *tl_opt_cost(const tl_opt *o) { return o->have_cost ? &o->cost : NULL; }

static void clear_run_keep(tl_opt *o, bool reset_ctx);
static void clear_run(tl_opt *o) { clear_run_keep(o, true); }

static void clear_run_keep(tl_opt *o, bool reset_ctx) {
  tl_free(o->choice);
  tl_free(o->ex_class);
  tl_free(o->values);
  tl_free(o->totals);
  tl_free(o->fn_tot);
  o->fn_tot = NULL;
  o->choice = o->ex_class = NULL;
  o->values = o->totals = NULL;
  o->have_cost = false;
  eg_report_free(o->report);
  o->report = NULL;
  eg_free(o->e);
  o->e = NULL;
  for (int i = 0; i < o->nout; i++) tl_free(o->out_names[i]);
  tl_free(o->out_names);
  tl_free(o->orig);
  tl_free(o->roots);
  o->out_names = NULL;
  o->orig = o->roots = NULL;
  o->nout = 0;
  /* input slots, and the graphs' symbols, names and tensors, belong to
   * one e-graph: a tl_opt used for many graphs does not keep them all */
  if (reset_ctx) tn_ctx_reset(o->ctx, o->rules_mark);
}

void tl_opt_free(tl_opt *o) {
  if (!o) return;
  clear_run(o);
  eg_rules_free(o->rules);
  tl_free(o->ctl_active);
  tl_free(o->ctl_applied);
  tn_ctx_free(o->ctx);
  tl_cost_expr_free(o->objective);
  tl_cost_registry_free(o->costs);
  tl_free(o);
}

static eg_egraph *new_egraph(tl_opt *o) {
  eg_params ep = {.lang = &o->ctx->lang, .analysis = &o->ctx->analysis, .seed = 0x746c616c6f63ULL,
                  .explain = o->p.explain, .check = o->p.check};
  return eg_new(ep);
}

/* The limits of every phase, the node limit scaled by the loaded program's
 * size (tl_opt_params.nodes_per_node): a fixed limit below the program's
 * own size stopped a 200,000-node graph at NodeLimit after its first
 * iteration, before any rewrite. Ten e-nodes per program e-node leave room
 * for the shipped rules' saturation (2.75 on an elementwise chain, 1.7 on
 * an MLP; docs/egraph.md) and for growth toward a better program, and the
 * default byte limit (2 GiB, about 20 million e-nodes with their analysis
 * data and match buffers) keeps a large program's e-graph within memory. */
static eg_limits phase_limits(const tl_opt *o) {
  eg_limits l = o->p.limits;
  if (l.nodes && o->p.nodes_per_node > 0) {
    double n = (double)l.nodes + o->p.nodes_per_node * (double)eg_total_size(o->e);
    l.nodes = n >= 0x1p63 ? (size_t)1 << 63 : (size_t)n;
  }
  return l;
}

static void saturate(tl_opt *o) {
  eg_phase ph[TL_OPT_MAX_PHASES];
  int n = o->p.nphases;
  eg_limits lim = phase_limits(o);
  if (n == 0) {
    ph[0] = (eg_phase){"", lim};
    n = 1;
  }
  for (int i = 0; i < o->p.nphases; i++) ph[i] = (eg_phase){o->p.phases[i], lim};
  eg_rebuild(o->e);
  /* control-flow rules between runs of the rewrite rules (a cond's
   * condition may become a constant by rewriting; an inlined body is
   * rewritten with its callers), until they add nothing new; each node is
   * transformed once per rule, so this ends */
  tn_control_done *done = NULL;
  bool more = o->fns && o->rules->ncontrols > 0;
  if (more) more = tn_control_pass(o->ctx, o->e, o->rules, o->ctl_active, o->fns, o->ctl_applied, &done) > 0;
  o->report = eg_run(o->e, o->rules, ph, n, o->p.run);
  for (int round = 0; more && round < TL_OPT_CONTROL_ROUNDS && !o->report->error; round++) {
    more = tn_control_pass(o->ctx, o->e, o->rules, o->ctl_active, o->fns, o->ctl_applied, &done) > 0;
    if (!more) break;
    eg_report_free(o->report);
    o->report = eg_run(o->e, o->rules, ph, n, o->p.run);
  }
  tn_control_done_free(done);
}

/* ---- extraction ------------------------------------------------------------
 * The reachable part of the e-graph becomes an ex_graph whose node costs are
 * the objective on each e-node's own properties, and the chosen extractor
 * runs on it (extract/extract.h). */

/* What the analysis knows of a class: its type, and its value when every
 * element is one known constant. */
static const tl_type *class_type(eg_egraph *e, eg_id c) { return &tn_data_of(e, c)->type; }

static uint8_t class_facts(eg_egraph *e, eg_id c) { return tn_data_of(e, c)->facts; }

static bool class_value(eg_egraph *e, eg_id c, double *v) {
  const tn_data *d = tn_data_of(e, c);
  *v = d->value;
  return d->has_value;
}

static tl_attrs node_attrs(eg_egraph *e, const eg_node *nd) {
  size_t n;
  const uint8_t *b = eg_attr_bytes(e, nd->attr, &n);
  tl_attrs a;
  tl_attrs_init(&a);
  if (n == sizeof a) memcpy(&a, b, sizeof a);
  return a;
}

/* Scratch for evaluating one e-node (sized for the widest node). */
typedef struct node_eval {
  int np;
  double *zeros_plus;    /* [nin * np] operand vectors */
  const double **in;
  const tl_type **in_type;
  bool *in_known;
  double *in_value;
  uint8_t *in_facts;
  int cap;
} node_eval;

static void node_eval_free(node_eval *x) {
  tl_free(x->zeros_plus);
  tl_free(x->in);
  tl_free(x->in_type);
  tl_free(x->in_known);
  tl_free(x->in_value);
  tl_free(x->in_facts);
}

/* Evaluates node nid's properties into out: operands carry their class's
 * value properties (values[ex class]) and cost properties at 0, so `out`
 * holds the node's own contribution. With check, the monotonicity contract
 * is checked too. 0, or -1 with a message. */
static int eval_node(tl_opt *o, node_eval *x, uint32_t nid, double *out, bool check, char *err,
                     size_t err_size) {
  eg_egraph *e = o->e;
  const eg_node *nd = eg_get_node(e, nid);
  int np = x->np, nin = nd->n;
  if (nin > x->cap) {
    x->cap = nin;
    x->zeros_plus = tl_xrealloc(x->zeros_plus, (size_t)nin * (size_t)np * sizeof *x->zeros_plus);
    x->in = tl_xrealloc(x->in, (size_t)nin * sizeof *x->in);
    x->in_type = tl_xrealloc(x->in_type, (size_t)nin * sizeof *x->in_type);
    x->in_known = tl_xrealloc(x->in_known, (size_t)nin * sizeof *x->in_known);
    x->in_value = tl_xrealloc(x->in_value, (size_t)nin * sizeof *x->in_value);
    x->in_facts = tl_xrealloc(x->in_facts, (size_t)nin * sizeof *x->in_facts);
  }
  const eg_id *kids = eg_node_kids(e, nd);
  for (int k = 0; k < nin; k++) {
    eg_id kc = eg_find(e, kids[k]);
    double *v = x->zeros_plus + (size_t)k * (size_t)np;
    const double *cv = o->values + (size_t)o->ex_class[kc] * (size_t)np;
    for (int p = 0; p < np; p++) v[p] = tl_cost_prop_kind(o->costs, p) == TL_PROP_VALUE ? cv[p] : 0;
    x->in[k] = v;
    x->in_type[k] = class_type(e, kc);
    x->in_known[k] = class_value(e, kc, &x->in_value[k]);
    x->in_facts[k] = class_facts(e, kc);
  }
  tl_attrs a = node_attrs(e, nd);
  tl_cost_node cn = {.op = nd->op, .attrs = &a, .type = class_type(e, eg_find(e, nd->cls)), .nin = nin,
                     .in_type = x->in_type, .in_known = x->in_known, .in_value = x->in_value,
                     .in_facts = x->in_facts, .in = x->in, .profile = tl_cost_profile(o->costs),
                     .sym_size = tl_cost_sym_size(o->costs)};
  if (tl_cost_eval(o->costs, &cn, out, err, err_size)) return -1;
  if (check && tl_cost_check_monotone(o->costs, &cn, out, err, err_size)) return -1;
  if (tl_ops[nd->op].kind == TL_KIND_CONTROL && o->fns) { /* a run costs its functions */
    double *add = tl_xcalloc((size_t)np + 1, sizeof *add);
    int rc = tl_cost_control(o->costs, o->fns, o->fn_tot, nd->op, &a, x->in_type, nin, add, err, err_size);
    for (int p = 0; p < np && !rc; p++) out[p] += add[p];
    tl_free(add);
    if (rc) return -1;
  }
  return 0;
}

/* The objective on a function's code alone: what extraction charges once
 * for a function that chosen control nodes run (tl_cost_control leaves
 * code out of a run's cost; a chosen inlined body pays its own). */
static double fn_code_cost(tl_opt *o, int32_t f) {
  int np = tl_cost_nprops(o->costs), code = tl_cost_find(o->costs, "code");
  double *v = tl_xcalloc((size_t)np + 1, sizeof *v);
  if (code >= 0) v[code] = o->fn_tot[(size_t)f * (size_t)np + (size_t)code];
  double c = tl_cost_expr_eval(o->objective, v);
  tl_free(v);
  return c;
}

/* Every function's totals, once per extraction: each run of a function
 * is priced from them (tl_cost_control), and its code (fn_code_cost). */
static int fn_totals(tl_opt *o, char *err, size_t err_size) {
  int np = tl_cost_nprops(o->costs), nf = o->fns ? o->fns->n : 0;
  tl_free(o->fn_tot);
  o->fn_tot = nf ? tl_xcalloc((size_t)nf * (size_t)np + 1, sizeof *o->fn_tot) : NULL;
  for (int f = 0; f < nf; f++)
    if (tl_cost_graph(o->costs, NULL, o->fns->fn[f], NULL, o->fn_tot + (size_t)f * (size_t)np, NULL, NULL, err,
                      err_size))
      return -1;
  return 0;
}

static bool well_typed(eg_egraph *e, const eg_node *nd) {
  return class_type(e, eg_find(e, nd->cls))->dtype != TL_DTYPE_ERROR;
}

/* One (class, node) pair of the reachable e-graph. */
typedef struct xslot {
  uint32_t node;    /* e-graph node id */
  uint32_t cls;     /* ex class */
  uint32_t pending; /* operand occurrences whose class is not settled yet */
} xslot;

/* Builds the ex_graph of the classes reachable from the roots and runs the
 * extractor; fills o->choice. 0, or -1 with a message. */
static int extract(tl_opt *o, tl_error *err) {
  double t0 = tl_now_ms();
  eg_egraph *e = o->e;
  size_t nids = eg_nids(e);
  int np = tl_cost_nprops(o->costs);
  if (fn_totals(o, TL_EMSG(err))) return tl_fail_kind(err, TL_BAD_INPUT); /* a cost function's complaint */
  o->choice = tl_xmalloc((nids + 1) * sizeof *o->choice);
  o->ex_class = tl_xmalloc((nids + 1) * sizeof *o->ex_class);
  for (size_t i = 0; i < nids; i++) o->choice[i] = EG_NONE, o->ex_class[i] = EX_NONE;

  /* 1. the classes reachable from the roots, numbered in discovery order */
  uint32_t ncls = 0, capcls = 64;
  eg_id *cls = tl_xmalloc(capcls * sizeof *cls);
  for (int i = 0; i < o->nout; i++) {
    if (o->ex_class[o->roots[i]] != EX_NONE) continue;
    o->ex_class[o->roots[i]] = ncls;
    cls[ncls++] = o->roots[i];
  }
  uint32_t nslots = 0;
  for (uint32_t i = 0; i < ncls; i++) {
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(e, cls[i], &nn);
    nslots += nn;
    for (uint32_t j = 0; j < nn; j++) {
      const eg_node *nd = eg_get_node(e, nodes[j]);
      const eg_id *kids = eg_node_kids(e, nd);
      for (uint32_t k = 0; k < nd->n; k++) {
        eg_id kc = eg_find(e, kids[k]);
        if (o->ex_class[kc] != EX_NONE) continue;
        if (ncls == capcls) cls = tl_xrealloc(cls, (capcls *= 2) * sizeof *cls);
        o->ex_class[kc] = ncls;
        cls[ncls++] = kc;
      }
    }
  }

  /* 2. settle classes bottom-up (a node is ready once every operand class
   * is settled; the first ready node settles its class and gives it its
   * value properties). Parents are kept per operand occurrence. */
  xslot *slot = tl_xmalloc(((size_t)nslots + 1) * sizeof *slot);
  uint32_t *pstart = tl_xcalloc((size_t)ncls + 2, sizeof *pstart);
  uint32_t s = 0;
  for (uint32_t i = 0; i < ncls; i++) {
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(e, cls[i], &nn);
    for (uint32_t j = 0; j < nn; j++, s++) {
      const eg_node *nd = eg_get_node(e, nodes[j]);
      slot[s] = (xslot){nodes[j], i, nd->n};
      const eg_id *kids = eg_node_kids(e, nd);
      for (uint32_t k = 0; k < nd->n; k++) pstart[o->ex_class[eg_find(e, kids[k])] + 1]++;
    }
  }
  for (uint32_t i = 0; i < ncls; i++) pstart[i + 1] += pstart[i];
  uint32_t *parent = tl_xmalloc(((size_t)pstart[ncls] + 1) * sizeof *parent);
  uint32_t *fill = tl_xmalloc(((size_t)ncls + 1) * sizeof *fill);
  memcpy(fill, pstart, (size_t)ncls * sizeof *fill);
  for (s = 0; s < nslots; s++) {
    const eg_node *nd = eg_get_node(e, slot[s].node);
    const eg_id *kids = eg_node_kids(e, nd);
    for (uint32_t k = 0; k < nd->n; k++) parent[fill[o->ex_class[eg_find(e, kids[k])]]++] = s;
  }
  tl_free(fill);
  o->values = tl_xcalloc((size_t)ncls * (size_t)np + 1, sizeof *o->values);
  bool *settled = tl_xcalloc((size_t)ncls + 1, sizeof *settled);
  uint32_t *queue = tl_xmalloc(((size_t)nslots + 1) * sizeof *queue);
  uint32_t qh = 0, qt = 0;
  for (s = 0; s < nslots; s++)
    if (slot[s].pending == 0) queue[qt++] = s;
  double *props = tl_xmalloc(((size_t)np + 1) * sizeof *props);
  node_eval x = {.np = np};
  int rc = 0;
  while (qh < qt && rc == 0) {
    xslot *sl = &slot[queue[qh++]];
    if (settled[sl->cls] || !well_typed(e, eg_get_node(e, sl->node))) continue;
    if (eval_node(o, &x, sl->node, props, false, TL_EMSG(err))) {
      rc = tl_fail_kind(err, TL_BAD_INPUT); /* a cost function's complaint */
      break;
    }
    settled[sl->cls] = true;
    double *v = o->values + (size_t)sl->cls * (size_t)np;
    for (int p = 0; p < np; p++) v[p] = tl_cost_prop_kind(o->costs, p) == TL_PROP_VALUE ? props[p] : 0;
    for (uint32_t i = pstart[sl->cls]; i < pstart[sl->cls + 1]; i++)
      if (--slot[parent[i]].pending == 0) queue[qt++] = parent[i];
  }
  for (int i = 0; i < o->nout && rc == 0; i++)
    if (!settled[o->ex_class[o->roots[i]]]) {
      /* the input was one, and rewriting keeps it in its e-class */
      rc = tl_fail(err, TL_INTERNAL, "output '%s' has no well-typed, finite program in the e-graph",
                   o->out_names[i]);
    }

  /* 3. the ex_graph: every well-typed node whose operands are settled,
   * costing the objective on its own properties */
  ex_graph *xg = rc == 0 ? ex_graph_new() : NULL;
  uint32_t *ins_node = tl_xmalloc(((size_t)nslots + 1) * sizeof *ins_node);
  uint32_t nins = 0;
  uint32_t *kid = NULL;
  uint32_t capkid = 0;
  for (uint32_t i = 0; i < ncls && rc == 0; i++) ex_graph_add_class(xg, NULL);
  /* a function's code is paid once however many calls run it; each of
   * the k classes that hold a run of it is charged code/k, so that keeping
   * every call (k runs, one body) and inlining every one (k bodies) compare
   * as wholes even for an extractor that decides class by class */
  int nfns = o->fns ? o->fns->n : 0;
  double *fn_code = tl_xcalloc((size_t)nfns + 1, sizeof *fn_code);
  uint32_t *fn_runs = tl_xcalloc((size_t)nfns + 1, sizeof *fn_runs), *fn_seen = tl_xcalloc((size_t)nfns + 1, sizeof *fn_seen);
  for (uint32_t i = 0; i < ncls && nfns; i++) {
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(e, cls[i], &nn);
    for (uint32_t j = 0; j < nn; j++) {
      const eg_node *nd = eg_get_node(e, nodes[j]);
      if (tl_ops[nd->op].kind != TL_KIND_CONTROL) continue;
      tl_node tn = {.op = nd->op, .attrs = node_attrs(e, nd)};
      int32_t fs[3];
      int k = tl_control_fns(&tn, fs);
      for (int q = 0; q < k; q++)
        if (fs[q] >= 0 && fs[q] < nfns && fn_seen[fs[q]] != i + 1) fn_seen[fs[q]] = i + 1, fn_runs[fs[q]]++;
    }
  }
  for (int f = 0; f < nfns; f++)
    if (fn_runs[f]) fn_code[f] = fn_code_cost(o, f);
  for (s = 0; s < nslots && rc == 0; s++) {
    const eg_node *nd = eg_get_node(e, slot[s].node);
    if (slot[s].pending != 0 || !well_typed(e, nd)) continue;
    if (eval_node(o, &x, slot[s].node, props, o->check_costs, TL_EMSG(err))) {
      rc = tl_fail_kind(err, TL_BAD_INPUT);
      break;
    }
    double c = tl_cost_expr_eval(o->objective, props);
    if (!isfinite(c)) {
      rc = tl_fail(err, TL_BAD_INPUT, "cost expression '%s' is %s on op '%s' (costs must be finite numbers)",
                   tl_cost_expr_text(o->objective), isnan(c) ? "NaN" : "infinite", tl_ops[nd->op].name);
      break;
    }
    if (nfns && tl_ops[nd->op].kind == TL_KIND_CONTROL) {
      tl_node tn = {.op = nd->op, .attrs = node_attrs(e, nd)};
      int32_t fs[3];
      int k = tl_control_fns(&tn, fs);
      for (int j = 0; j < k; j++)
        if (fs[j] >= 0 && fs[j] < nfns && fn_runs[fs[j]]) c += fn_code[fs[j]] / fn_runs[fs[j]];
    }
    if (nd->n > capkid) kid = tl_xrealloc(kid, (capkid = nd->n) * sizeof *kid);
    const eg_id *kids = eg_node_kids(e, nd);
    for (uint32_t k = 0; k < nd->n; k++) kid[k] = o->ex_class[eg_find(e, kids[k])];
    ex_graph_add_node(xg, slot[s].cls, c, kid, nd->n, NULL);
    ins_node[nins++] = slot[s].node;
  }
  tl_free(kid);
  tl_free(fn_code);
  tl_free(fn_runs);
  tl_free(fn_seen);
  tl_error d;
  for (int i = 0; i < o->nout && rc == 0; i++) ex_graph_add_root(xg, o->ex_class[o->roots[i]]);
  if (rc == 0 && ex_graph_finish(xg, &d) != EX_OK)
    rc = tl_fail(err, TL_INTERNAL, "extraction: %.3000s", d.msg); /* a graph this code built */

  /* 4. extract, and map the choice back to e-graph nodes */
  ex_result r;
  memset(&r, 0, sizeof r);
  ex_kind kind = o->p.extract;
  bool too_large = kind == EX_DAG && o->p.dag_max_classes && ncls > o->p.dag_max_classes;
  if (too_large) kind = EX_TREE;
  if (rc == 0) {
    ex_params xp = ex_params_default();
    xp.time_limit_s = o->p.extract_seconds;
    ex_status xs = ex_extract(xg, kind, xp, &r, &d);
    /* the solver's failure is its own; any other is this code's: every
     * output has a finite program, settled above */
    if (xs != EX_OK)
      rc = tl_fail(err, xs == EX_ERR_SOLVER ? TL_BACKEND_FAILED : d.status == TL_OUT_OF_MEMORY ? TL_OUT_OF_MEMORY : TL_INTERNAL,
                   "extraction (%s): %.3000s", ex_kind_name(kind), d.msg);
  }
  if (rc == 0) {
    for (uint32_t i = 0; i < ncls; i++)
      if (r.choice[i] != EX_NONE) o->choice[cls[i]] = ins_node[xg->node_input[r.choice[i]]];
    o->cost = (tl_opt_cost_report){.objective = tl_cost_expr_text(o->objective),
                                   .extractor = kind,
                                   .dag_too_large = too_large,
                                   .classes = xg->n_classes,
                                   .nodes = xg->n_nodes,
                                   .dag_cost = r.dag_cost,
                                   .optimal = r.optimal,
                                   .lower_bound = r.lower_bound};
    ex_result_free(&r);
  }
  o->cost.extract_ms = tl_now_ms() - t0;
  ex_graph_free(xg);
  node_eval_free(&x);
  tl_free(props);
  tl_free(ins_node);
  tl_free(queue);
  tl_free(settled);
  tl_free(parent);
  tl_free(pstart);
  tl_free(slot);
  tl_free(cls);
  return rc;
}

/* The rebuilt program's cost properties, objective and peak memory. */
static int program_cost(tl_opt *o, const tl_graph *g, const uint8_t *facts, char *err, size_t err_size) {
  o->totals = tl_xcalloc((size_t)tl_cost_nprops(o->costs) + 1, sizeof *o->totals);
  if (tl_cost_graph(o->costs, o->objective, g, facts, o->totals, &o->cost.objective_total, &o->cost.peak_bytes,
                    err, err_size))
    return -1;
  o->cost.totals = o->totals;
  o->have_cost = true;
  return 0;
}

static tl_graph *opt_one(tl_opt *o, const tl_graph *g, tl_fns *t, tl_error *err);
static tl_graph *opt_one_keep(tl_opt *o, const tl_graph *g, tl_fns *t, tl_error *err);
static tl_graph *opt_table(tl_opt *o, const tl_graph *g, tl_error *err);

/* A graph with functions: the graph, then each function it still calls
 * (opt_table). The control-flow rules (rules/control.rw) add alternatives
 * to calls, conds, loops and scans, among them inlining, and extraction
 * chooses by cost; a function keeps its parameters and results, so every
 * call stays valid. The report is the graph's. */
tl_graph *tl_opt_graph(tl_opt *o, const tl_graph *g, tl_error *err) {
  if (o->ctl_applied) memset(o->ctl_applied, 0, (size_t)o->rules->ncontrols * sizeof *o->ctl_applied);
  if (!g->fns || g->fns->n == 0) return opt_one(o, g, NULL, err);
  return opt_table(o, g, err);
}

/* Which control rules apply: those of the phases' rulesets (all without
 * phases); does one of them inline? */
static bool control_setup(tl_opt *o) {
  int nsets = o->rules->nrulesets, nc = o->rules->ncontrols;
  tl_free(o->ctl_active);
  tl_free(o->ctl_applied);
  o->ctl_active = tl_xcalloc((size_t)nsets + 1, sizeof *o->ctl_active);
  o->ctl_applied = tl_xcalloc((size_t)nc + 1, sizeof *o->ctl_applied);
  for (int s = 0; s < nsets; s++) {
    bool on = o->p.nphases == 0;
    for (int i = 0; i < o->p.nphases && !on; i++) on = eg_ruleset_in(o->rules, s, o->p.phases[i]);
    o->ctl_active[s] = on;
  }
  bool inlines = false;
  for (int i = 0; i < nc; i++) {
    const eg_control *c = &o->rules->controls[i];
    inlines = inlines || (o->ctl_active[c->ruleset] && c->rhs.op < 0 && !strcmp(tn_control_lang.heads[c->rhs.head], "inline"));
  }
  return inlines;
}

/* The state of one optimizer run (opt_one), set aside while another runs. */
typedef struct run_state {
  eg_egraph *e;
  eg_report *report;
  uint32_t *choice, *ex_class;
  double *values, *totals;
  tl_opt_cost_report cost;
  bool have_cost;
  eg_id *orig, *roots;
  char **out_names;
  int nout;
  tl_fns *fns;
  double *fn_tot;
} run_state;

static void run_swap(tl_opt *o, run_state *r) {
  run_state cur = {o->e, o->report, o->choice, o->ex_class, o->values, o->totals, o->cost, o->have_cost,
                   o->orig, o->roots, o->out_names, o->nout, o->fns, o->fn_tot};
  o->e = r->e, o->report = r->report, o->choice = r->choice, o->ex_class = r->ex_class;
  o->values = r->values, o->totals = r->totals, o->cost = r->cost, o->have_cost = r->have_cost;
  o->orig = r->orig, o->roots = r->roots, o->out_names = r->out_names, o->nout = r->nout, o->fns = r->fns;
  o->fn_tot = r->fn_tot;
  *r = cur;
}

/* The first function res reaches (callers before callees) that is not
 * optimized yet, or -1. */
static int32_t next_unoptimized(const tl_graph *res, const tl_fns *t, const uint8_t *optimized) {
  uint8_t *seen = tl_xcalloc((size_t)t->n + 1, 1);
  int32_t *stack = tl_xmalloc(((size_t)t->n + 1) * sizeof *stack), found = -1;
  int sp = 0;
  for (int32_t x = 0; x < res->nnodes; x++) {
    int32_t fs[3];
    int k = tl_control_fns(&res->nodes[x], fs);
    for (int j = 0; j < k; j++)
      if (!seen[fs[j]]) seen[fs[j]] = 1, stack[sp++] = fs[j];
  }
  while (sp > 0 && found < 0) {
    int32_t f = stack[--sp];
    if (!optimized[f]) {
      found = f;
      break;
    }
    const tl_graph *h = t->fn[f];
    for (int32_t x = 0; x < h->nnodes; x++) {
      int32_t fs[3];
      int k = tl_control_fns(&h->nodes[x], fs);
      for (int j = 0; j < k; j++)
        if (!seen[fs[j]]) seen[fs[j]] = 1, stack[sp++] = fs[j];
    }
  }
  tl_free(seen);
  tl_free(stack);
  return found;
}

/* The graph is optimized first, against its functions as they are (a
 * call is priced by its function's unoptimized body; an inlined body is
 * rewritten with its caller), then every function the result still calls
 * is optimized in turn (the control rules apply inside it too), with the
 * graph's run set aside so that statistics and explanations are the
 * graph's. The table keeps the functions' indices (copies, replaced by
 * their optimized forms); what the rules make is appended; the result
 * keeps the functions it calls, callees first. */
static tl_graph *opt_table(tl_opt *o, const tl_graph *g, tl_error *err) {
  bool inlines = control_setup(o);
  tl_fns *t = tl_fns_new();
  for (int i = 0; i < g->fns->n; i++) tl_fns_add(t, tl_graph_copy(g->fns->fn[i], g->fns->fn[i]->name));
  tl_graph *res = opt_one(o, g, t, err);
  int cap = t->n + 16;
  uint8_t *optimized = tl_xcalloc((size_t)cap, 1);
  for (int32_t f; res && (f = next_unoptimized(res, t, optimized)) >= 0;) {
    run_state graph_run = {0};
    run_swap(o, &graph_run);
    tn_slots slots = tn_ctx_take_slots(o->ctx);
    tl_graph *h = t->fn[f];
    tl_graph *fo = opt_one_keep(o, h, t, err);
    clear_run_keep(o, false);
    tn_ctx_put_slots(o->ctx, slots);
    run_swap(o, &graph_run);
    if (t->n > cap) { /* the rules made functions */
      optimized = tl_xrealloc(optimized, (size_t)t->n * 2);
      memset(optimized + cap, 0, (size_t)t->n * 2 - (size_t)cap);
      cap = t->n * 2;
    }
    if (!fo) {
      char m[sizeof err->msg];
      snprintf(m, sizeof m, "%s", err->msg);
      tl_fail(err, err->status, "in function '%s': %s", h->name, m);
      tl_graph_free(res);
      res = NULL;
      break;
    }
    tl_graph_set_fns(fo, NULL);
    fo->fns = t; /* weakly, as tl_fns_add sets it */
    h->fns = NULL;
    tl_graph_free(h);
    t->fn[f] = fo;
    optimized[f] = 1;
  }
  tl_free(optimized);
  tl_graph *kept = NULL;
  if (res) {
    tl_graph_set_fns(res, t);
    kept = tl_graph_keep_fns(res, TL_EMSG(err));
    if (!kept) tl_fail_kind(err, TL_INTERNAL);
    else if (kept->fns) kept->fns->calls_decided = inlines;
    tl_graph_free(res);
  }
  tl_fns_release(t);
  return kept;
}

static tl_graph *opt_run(tl_opt *o, const tl_graph *g, tl_fns *t, bool reset_ctx, tl_error *err);
static tl_graph *opt_one(tl_opt *o, const tl_graph *g, tl_fns *t, tl_error *err) { return opt_run(o, g, t, true, err); }
/* A run beside another set aside (the context keeps the other's symbols
 * and input slots). */
static tl_graph *opt_one_keep(tl_opt *o, const tl_graph *g, tl_fns *t, tl_error *err) {
  return opt_run(o, g, t, false, err);
}

static tl_graph *opt_run(tl_opt *o, const tl_graph *g, tl_fns *t, bool reset_ctx, tl_error *err) {
  clear_run_keep(o, reset_ctx);
  o->fns = t;
  o->e = new_egraph(o);
  if (!o->e) {
    tl_fail(err, TL_INTERNAL, "cannot create an e-graph");
    return NULL;
  }
  o->nout = g->noutputs;
  o->orig = tl_xcalloc((size_t)o->nout + 1, sizeof *o->orig);
  o->roots = tl_xcalloc((size_t)o->nout + 1, sizeof *o->roots);
  o->out_names = tl_xcalloc((size_t)o->nout + 1, sizeof *o->out_names);
  int *slots = tl_xcalloc((size_t)g->ninputs + 1, sizeof *slots);
  for (int i = 0; i < o->nout; i++) o->out_names[i] = tl_xstrdup(g->names[g->outputs[i].name]);
  tl_graph *res = NULL;
  uint8_t *facts = NULL;
  if (tn_load_graph(o->ctx, o->e, g, o->orig, slots, TL_EMSG(err))) {
    tl_fail_kind(err, TL_BAD_INPUT);
  } else {
    if (t) tl_graph_set_fns(o->ctx->store, t); /* control nodes are typed, and rules read bodies, here */
    saturate(o);
    if (o->report->error) {
      tl_fail(err, TL_BAD_INPUT, "%s", o->report->msg); /* a phase names a ruleset the rules lack */
    } else {
      for (int i = 0; i < o->nout; i++) o->roots[i] = eg_find(o->e, o->orig[i]);
      if (extract(o, err) == 0) {
        res = tn_build_graph(o->ctx, o->e, o->choice, o->roots, (const char *const *)o->out_names,
                             o->nout, slots, g->ninputs, g->name, &facts, TL_EMSG(err));
        /* a cyclic or ill-typed choice: the extractor's or the rules' bug */
        if (!res) tl_fail_kind(err, TL_INTERNAL);
      }
      if (res && program_cost(o, res, facts, TL_EMSG(err))) {
        tl_fail_kind(err, TL_BAD_INPUT);
        tl_graph_free(res);
        res = NULL;
      }
    }
  }
  tl_free(slots);
  tl_free(facts);
  return res;
}

/* The program's cost properties, one line. */
static void print_totals(const tl_opt *o, FILE *f) {
  for (int p = 0; p < tl_cost_nprops(o->costs); p++) {
    if (tl_cost_prop_kind(o->costs, p) != TL_PROP_COST) continue;
    fprintf(f, " %s=%.4g", tl_cost_prop_name(o->costs, p), o->cost.totals[p]);
  }
}

void tl_opt_print_stats(const tl_opt *o, FILE *f) {
  if (!o->report) return;
  eg_report_print(o->report, o->rules, f);
  bool any = false;
  for (int i = 0; o->ctl_applied && i < o->rules->ncontrols; i++)
    if (o->ctl_applied[i]) {
      fprintf(f, "%s %s %zu", any ? "," : "control rules applied (all functions and the graph):", o->rules->controls[i].name,
              o->ctl_applied[i]);
      any = true;
    }
  if (any) fprintf(f, "\n");
  fprintf(f, "e-graph: %zu e-classes, %zu e-nodes, %zu bytes at peak\n", eg_nclasses(o->e),
          eg_nenodes(o->e), eg_peak_bytes(o->e));
  if (eg_nrefused(o->e))
    fprintf(f, "refused unions (type mismatch; a rule bug or a missing guard): %zu\n%s",
            eg_nrefused(o->e), eg_refusals(o->e));
  if (!o->have_cost) return;
  const tl_opt_cost_report *c = &o->cost;
  fprintf(f, "extraction: %s%s over %u e-classes, %u e-nodes in %.2f ms; cost '%s' = %.6g%s",
          ex_kind_name(c->extractor), c->dag_too_large ? " (dag's limit is exceeded)" : "", c->classes,
          c->nodes, c->extract_ms, c->objective, c->dag_cost, c->optimal ? " (proved optimal)" : "");
  if (c->extractor == EX_EXACT && !c->optimal) fprintf(f, " (lower bound %.6g)", c->lower_bound);
  fprintf(f, "\nprogram:");
  print_totals(o, f);
  fprintf(f, "; peak memory %.0f bytes\n", c->peak_bytes);
}

/* For --explain: every reachable class's cheapest tree cost under the
 * objective (egg's bottom-up fixpoint over the own costs), so a candidate
 * can be shown with the cost of its best term. best[] is per ex_graph
 * class; own[]/onode[] the evaluated nodes. */
typedef struct tree_costs {
  double *best;
  uint32_t n;
} tree_costs;

static tree_costs explain_tree_costs(tl_opt *o, node_eval *x, double *props) {
  eg_egraph *e = o->e;
  size_t nids = eg_nids(e);
  uint32_t ncls = 0;
  for (size_t c = 0; c < nids; c++)
    if (o->ex_class[c] != EX_NONE && o->ex_class[c] + 1 > ncls) ncls = o->ex_class[c] + 1;
  tree_costs t = {tl_xmalloc(((size_t)ncls + 1) * sizeof *t.best), ncls};
  for (uint32_t i = 0; i < ncls; i++) t.best[i] = INFINITY;
  uint32_t nn_all = 0, cap = 0;
  uint32_t *onode = NULL;
  double *own = NULL;
  char why[256];
  for (size_t c = 0; c < nids; c++) {
    if (o->ex_class[c] == EX_NONE || eg_find(e, (eg_id)c) != c) continue;
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(e, (eg_id)c, &nn);
    for (uint32_t j = 0; j < nn; j++) {
      const eg_node *nd = eg_get_node(e, nodes[j]);
      bool ready = well_typed(e, nd);
      const eg_id *kids = eg_node_kids(e, nd);
      for (uint32_t k = 0; k < nd->n && ready; k++) ready = o->ex_class[eg_find(e, kids[k])] != EX_NONE;
      if (!ready || eval_node(o, x, nodes[j], props, false, why, sizeof why)) continue;
      if (nn_all == cap) {
        cap = cap ? 2 * cap : 64;
        onode = tl_xrealloc(onode, cap * sizeof *onode);
        own = tl_xrealloc(own, cap * sizeof *own);
      }
      onode[nn_all] = nodes[j];
      own[nn_all++] = tl_cost_expr_eval(o->objective, props);
    }
  }
  /* Bellman-Ford style: at most one pass per class when costs are >= 0 */
  bool changed = true;
  for (uint32_t pass = 0; changed && pass <= ncls; pass++) {
    changed = false;
    for (uint32_t i = 0; i < nn_all; i++) {
      const eg_node *nd = eg_get_node(e, onode[i]);
      const eg_id *kids = eg_node_kids(e, nd);
      double c = own[i];
      for (uint32_t k = 0; k < nd->n; k++) c += t.best[o->ex_class[eg_find(e, kids[k])]];
      uint32_t cl = o->ex_class[eg_find(e, nd->cls)];
      if (c < t.best[cl]) {
        t.best[cl] = c;
        changed = true;
      }
    }
  }
  tl_free(onode);
  tl_free(own);
  return t;
}

void tl_opt_print_explain(tl_opt *o, FILE *f) {
  if (!o->report || !o->have_cost) return;
  fprintf(f, "rules that fired:\n");
  int fired = 0;
  for (int i = 0; i < o->report->nrules; i++) {
    const eg_rule_stats *s = &o->report->rules[i];
    if (!s->applied) continue;
    const eg_rule *r = &o->rules->rules[i];
    fprintf(f, "  %-28s %s:%d  applied %zu time%s\n", r->name, r->file, r->line, s->applied,
            s->applied == 1 ? "" : "s");
    fired++;
  }
  for (int i = 0; o->ctl_applied && i < o->rules->ncontrols; i++) {
    const eg_control *c = &o->rules->controls[i];
    if (!o->ctl_applied[i]) continue;
    fprintf(f, "  %-28s %s:%d  applied %zu time%s (control)\n", c->name, c->file, c->line, o->ctl_applied[i],
            o->ctl_applied[i] == 1 ? "" : "s");
    fired++;
  }
  if (!fired) fprintf(f, "  (none)\n");
  int np = tl_cost_nprops(o->costs);
  double *props = tl_xmalloc(((size_t)np + 1) * sizeof *props);
  node_eval x = {.np = np};
  tree_costs tc = explain_tree_costs(o, &x, props);
  for (int k = 0; k < o->nout; k++) {
    eg_id root = eg_find(o->e, o->roots[k]);
    fprintf(f, "output %s: candidates in its e-class under '%s' (own cost, best tree cost; chosen "
               "first):\n", o->out_names[k], o->cost.objective);
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(o->e, root, &nn);
    uint32_t chosen = o->choice[root];
    int shown = 0;
    for (int pass = 0; pass < 2; pass++)
      for (uint32_t i = 0; i < nn; i++) {
        if ((pass == 0) != (nodes[i] == chosen)) continue;
        const eg_node *nd = eg_get_node(o->e, nodes[i]);
        char head[256], own[32] = "-", tree[32] = "-", why[256];
        eg_print_head(o->e, nd->op, nd->attr, head, sizeof head);
        /* a candidate with an operand that has no finite term has no cost */
        bool ready = well_typed(o->e, nd);
        const eg_id *kids = eg_node_kids(o->e, nd);
        double t = 0;
        for (uint32_t j = 0; j < nd->n && ready; j++) {
          uint32_t xc = o->ex_class[eg_find(o->e, kids[j])];
          ready = xc != EX_NONE && isfinite(tc.best[xc]);
          if (ready) t += tc.best[xc];
        }
        if (ready && eval_node(o, &x, nodes[i], props, false, why, sizeof why) == 0) {
          double c = tl_cost_expr_eval(o->objective, props);
          snprintf(own, sizeof own, "%.4g", c);
          snprintf(tree, sizeof tree, "%.4g", c + t);
        }
        fprintf(f, "  %s %11s %11s  %s ...\n", pass == 0 ? "*" : " ", own, tree, head);
        if (pass == 1 && ++shown >= 12 && nn > 13) {
          fprintf(f, "    (%u candidates in all)\n", nn);
          break;
        }
      }
    if (o->p.explain) {
      const eg_node *nd = eg_get_node(o->e, chosen);
      eg_expl *ex = eg_explain(o->e, o->orig[k], nd->cls);
      if (ex && eg_expl_nsteps(ex) > 0) fprintf(f, "why (the rewrites, one per line):\n%s\n", eg_expl_text(ex));
      eg_expl_free(ex);
    }
  }
  fprintf(f, "program (%s extraction): cost %.6g;", ex_kind_name(o->cost.extractor), o->cost.objective_total);
  print_totals(o, f);
  fprintf(f, "; peak memory %.0f bytes\n", o->cost.peak_bytes);
  tl_free(tc.best);
  node_eval_free(&x);
  tl_free(props);
}

int tl_opt_prove(tl_opt *o, const tl_graph *a, const tl_graph *b, FILE *out, char *err,
                 size_t err_size) {
  clear_run(o);
  o->e = new_egraph(o);
  eg_id *ra = tl_xcalloc((size_t)a->noutputs + 1, sizeof *ra);
  eg_id *rb = tl_xcalloc((size_t)b->noutputs + 1, sizeof *rb);
  int rc = -1;
  if (tn_load_graph(o->ctx, o->e, a, ra, NULL, err, err_size) != 0 ||
      tn_load_graph(o->ctx, o->e, b, rb, NULL, err, err_size) != 0)
    goto done;
  /* outputs pair up by name; a graph with one output pairs with one */
  int *pair = tl_xcalloc((size_t)a->noutputs + 1, sizeof *pair);
  for (int i = 0; i < a->noutputs; i++) {
    pair[i] = -1;
    for (int j = 0; j < b->noutputs; j++)
      if (strcmp(a->names[a->outputs[i].name], b->names[b->outputs[j].name]) == 0) pair[i] = j;
    if (pair[i] < 0 && a->noutputs == 1 && b->noutputs == 1) pair[i] = 0;
    if (pair[i] < 0) {
      snprintf(err, err_size, "output '%s' of the first graph has no output of that name in the second",
               a->names[a->outputs[i].name]);
      tl_free(pair);
      goto done;
    }
  }
  saturate(o);
  if (o->report->error) {
    snprintf(err, err_size, "%s", o->report->msg);
    tl_free(pair);
    goto done;
  }
  rc = 1;
  for (int i = 0; i < a->noutputs; i++) {
    eg_id x = ra[i], y = rb[pair[i]];
    const char *name = a->names[a->outputs[i].name];
    if (eg_find(o->e, x) == eg_find(o->e, y)) {
      fprintf(out, "proved: %s\n", name);
      if (o->p.explain) {
        eg_expl *ex = eg_explain(o->e, x, y);
        if (ex) fprintf(out, "%s\n", eg_expl_text(ex));
        eg_expl_free(ex);
      }
    } else {
      const eg_phase_report *last = &o->report->phases[o->report->nphases - 1];
      fprintf(out, "not proved: %s (saturation stopped: %s after %u iterations)\n", name,
              eg_stop_name(last->stop), last->niters);
      rc = 0;
    }
  }
  tl_free(pair);
done:
  tl_free(ra);
  tl_free(rb);
  return rc;
}

int tl_opt_dot(tl_opt *o, const tl_graph *g, bool sat, FILE *out, char *err, size_t err_size) {
  clear_run(o);
  o->e = new_egraph(o);
  eg_id *roots = tl_xcalloc((size_t)g->noutputs + 1, sizeof *roots);
  if (tn_load_graph(o->ctx, o->e, g, roots, NULL, err, err_size) != 0) {
    tl_free(roots);
    return -1;
  }
  if (sat) saturate(o);
  else eg_rebuild(o->e);
  fprintf(out, "digraph egraph {\n  compound=true;\n  clusterrank=local;\n  node [shape=box, fontname=\"monospace\"];\n");
  size_t nids = eg_nids(o->e);
  for (eg_id c = 0; c < nids; c++) {
    if (eg_find(o->e, c) != c) continue;
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(o->e, c, &nn);
    char ty[160];
    tl_type_str(o->ctx->store, &tn_data_of(o->e, c)->type, ty, sizeof ty);
    fprintf(out, "  subgraph cluster_%u {\n    style=dotted; label=\"e%u: %s\";\n", c, c, ty);
    for (uint32_t i = 0; i < nn; i++) {
      const eg_node *nd = eg_get_node(o->e, nodes[i]);
      char head[256];
      eg_print_head(o->e, nd->op, nd->attr, head, sizeof head);
      fprintf(out, "    n%u [label=\"", nodes[i]);
      for (const char *p = head; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', out);
        fputc(*p, out);
      }
      fprintf(out, "\"];\n");
    }
    fprintf(out, "  }\n");
  }
  for (eg_id c = 0; c < nids; c++) {
    if (eg_find(o->e, c) != c) continue;
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(o->e, c, &nn);
    for (uint32_t i = 0; i < nn; i++) {
      const eg_node *nd = eg_get_node(o->e, nodes[i]);
      const eg_id *kids = eg_node_kids(o->e, nd);
      for (uint32_t k = 0; k < nd->n; k++) {
        eg_id kc = eg_find(o->e, kids[k]);
        uint32_t kn;
        const uint32_t *knodes = eg_class_nodes(o->e, kc, &kn);
        if (kn == 0) continue;
        fprintf(out, "  n%u -> n%u [lhead=cluster_%u];\n", nodes[i], knodes[0], kc);
      }
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    eg_id c = eg_find(o->e, roots[i]);
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(o->e, c, &nn);
    fprintf(out, "  out%d [shape=plaintext, label=\"%s\"];\n", i, g->names[g->outputs[i].name]);
    if (nn) fprintf(out, "  out%d -> n%u [lhead=cluster_%u];\n", i, nodes[0], c);
  }
  fprintf(out, "}\n");
  tl_free(roots);
  return 0;
}

int tl_opt_parse_limits(const char *s, tl_opt_params *p) {
  eg_limits *l = &p->limits;
  char *copy = tl_xstrdup(s), *save = NULL;
  int rc = 0;
  for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(kv, '=');
    if (!eq) {
      rc = -1;
      break;
    }
    *eq = 0;
    char *end;
    double v = strtod(eq + 1, &end);
    if (*end || end == eq + 1 || !(v >= 0)) rc = -1;
    else if (strcmp(kv, "iters") == 0) l->iters = (uint32_t)v;
    else if (strcmp(kv, "nodes") == 0) l->nodes = (size_t)v, p->nodes_per_node = 0;
    else if (strcmp(kv, "time") == 0) l->seconds = v;
    else if (strcmp(kv, "mem") == 0) l->bytes = (size_t)(v * 1048576.0);
    else rc = -1;
  }
  tl_free(copy);
  return rc;
}

const eg_report *tl_opt_report(const tl_opt *o) { return o->report; }

void tl_opt_sizes(const tl_opt *o, size_t *enodes, size_t *eclasses, size_t *peak_bytes) {
  *enodes = o->e ? eg_nenodes(o->e) : 0;
  *eclasses = o->e ? eg_nclasses(o->e) : 0;
  *peak_bytes = o->e ? eg_peak_bytes(o->e) : 0;
}
