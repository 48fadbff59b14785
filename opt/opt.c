/* opt.c - the optimizer driver (opt.h): the pipeline as a straight list of
 * steps — load, saturate phase by phase, extract, rebuild a graph. */
#include "opt/opt.h"

#include "egraph/explain.h"
#include "egraph/extract.h"
#include "ir/tg.h"
#include "opt/tensor.h"
#include "util/util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef TL_RULES_DIR
#define TL_RULES_DIR "rules"
#endif

struct tl_opt {
  tl_opt_params p;
  tn_ctx *ctx;
  eg_rules *rules;
  /* the last run, for statistics and explanations */
  eg_egraph *e;
  eg_report *report;
  eg_choice choice;
  bool have_choice;
  eg_id *orig, *roots; /* per output: the loaded term and its class */
  char **out_names;
  int nout;
};

tl_opt_params tl_opt_defaults(void) {
  tl_opt_params p;
  memset(&p, 0, sizeof p);
  p.limits.iters = 30;
  p.limits.nodes = 100000;
  p.limits.seconds = 10.0;
  p.run = eg_run_defaults();
  return p;
}

const char *tl_opt_default_rules_dir(void) {
  const char *env = getenv("TLALOC_RULES_DIR");
  return env && *env ? env : TL_RULES_DIR;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads a .rw file, or every .rw file of a folder in name order. */
static int load_path(eg_rules *r, const char *path, eg_diag *d, tl_buf *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    tl_buf_printf(err, "%s: no such rule file or folder\n", path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return eg_rules_load_file(r, path, d);
  DIR *dir = opendir(path);
  if (!dir) {
    tl_buf_printf(err, "%s: cannot open folder\n", path);
    return 1;
  }
  char **names = NULL;
  int n = 0, cap = 0, errors = 0;
  struct dirent *ent;
  while ((ent = readdir(dir)) != NULL) {
    size_t len = strlen(ent->d_name);
    if (len < 4 || strcmp(ent->d_name + len - 3, ".rw") != 0) continue;
    TL_GROW(names, n, cap);
    names[n++] = tl_xstrdup(ent->d_name);
  }
  closedir(dir);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  for (int i = 0; i < n; i++) {
    tl_buf full = {0};
    tl_buf_printf(&full, "%s/%s", path, names[i]);
    errors += eg_rules_load_file(r, full.s, d);
    free(full.s);
    free(names[i]);
  }
  free(names);
  return errors;
}

tl_opt *tl_opt_new(const tl_opt_params *p, char *err, size_t err_size) {
  tl_opt *o = tl_xcalloc(1, sizeof *o);
  o->p = *p;
  o->ctx = tn_ctx_new();
  o->rules = eg_rules_new(&o->ctx->lang, o->ctx->conds);
  eg_diag d = {0};
  tl_buf msgs = {0};
  int errors = 0;
  if (p->nrule_paths == 0) errors += load_path(o->rules, tl_opt_default_rules_dir(), &d, &msgs);
  for (int i = 0; i < p->nrule_paths; i++) errors += load_path(o->rules, p->rule_paths[i], &d, &msgs);
  if (errors) {
    snprintf(err, err_size, "%s%s", msgs.s ? msgs.s : "", d.text ? d.text : "");
    free(msgs.s);
    eg_diag_free(&d);
    tl_opt_free(o);
    return NULL;
  }
  free(msgs.s);
  eg_diag_free(&d);
  return o;
}

static void clear_run(tl_opt *o) {
  if (o->have_choice) eg_choice_free(&o->choice);
  o->have_choice = false;
  eg_report_free(o->report);
  o->report = NULL;
  eg_free(o->e);
  o->e = NULL;
  for (int i = 0; i < o->nout; i++) free(o->out_names[i]);
  free(o->out_names);
  free(o->orig);
  free(o->roots);
  o->out_names = NULL;
  o->orig = o->roots = NULL;
  o->nout = 0;
  o->ctx->ninputs = 0; /* input slots belong to one e-graph */
}

void tl_opt_free(tl_opt *o) {
  if (!o) return;
  clear_run(o);
  eg_rules_free(o->rules);
  tn_ctx_free(o->ctx);
  free(o);
}

static eg_egraph *new_egraph(tl_opt *o) {
  eg_params ep = {.lang = &o->ctx->lang, .analysis = &o->ctx->analysis, .seed = 0x746c616c6f63ULL,
                  .explain = o->p.explain, .check = o->p.check};
  return eg_new(ep);
}

static void saturate(tl_opt *o) {
  eg_phase ph[TL_OPT_MAX_PHASES];
  int n = o->p.nphases;
  if (n == 0) {
    ph[0] = (eg_phase){"", o->p.limits};
    n = 1;
  }
  for (int i = 0; i < o->p.nphases; i++) ph[i] = (eg_phase){o->p.phases[i], o->p.limits};
  eg_rebuild(o->e);
  o->report = eg_run(o->e, o->rules, ph, n, o->p.run);
}

tl_graph *tl_opt_graph(tl_opt *o, const tl_graph *g, char *err, size_t err_size) {
  clear_run(o);
  o->e = new_egraph(o);
  if (!o->e) {
    snprintf(err, err_size, "cannot create an e-graph");
    return NULL;
  }
  o->nout = g->noutputs;
  o->orig = tl_xcalloc((size_t)o->nout + 1, sizeof *o->orig);
  o->roots = tl_xcalloc((size_t)o->nout + 1, sizeof *o->roots);
  o->out_names = tl_xcalloc((size_t)o->nout + 1, sizeof *o->out_names);
  int *slots = tl_xcalloc((size_t)g->ninputs + 1, sizeof *slots);
  for (int i = 0; i < o->nout; i++) o->out_names[i] = tl_xstrdup(g->names[g->outputs[i].name]);
  tl_graph *res = NULL;
  if (tn_load_graph(o->ctx, o->e, g, o->orig, slots, err, err_size) == 0) {
    saturate(o);
    if (o->report->error) {
      snprintf(err, err_size, "%s", o->report->msg);
    } else {
      for (int i = 0; i < o->nout; i++) o->roots[i] = eg_find(o->e, o->orig[i]);
      eg_extractor x = eg_greedy_extractor(tn_op_weights());
      memset(&o->choice, 0, sizeof o->choice);
      bool ok = true;
      for (int i = 0; i < o->nout && ok; i++) {
        if (i > 0 && o->choice.node[o->roots[i]] != EG_NONE) continue;
        if (o->have_choice) eg_choice_free(&o->choice);
        ok = x.extract(&x, o->e, o->roots[i], &o->choice) == 0;
        o->have_choice = true;
      }
      if (!ok) snprintf(err, err_size, "no finite-cost program for an output");
      else
        res = tn_build_graph(o->ctx, o->e, o->choice.node, o->roots, (const char *const *)o->out_names,
                             o->nout, slots, g->ninputs, g->name, err, err_size);
    }
  }
  free(slots);
  return res;
}

void tl_opt_print_stats(const tl_opt *o, FILE *f) {
  if (!o->report) return;
  eg_report_print(o->report, o->rules, f);
  fprintf(f, "e-graph: %zu e-classes, %zu e-nodes, %zu bytes at peak\n", eg_nclasses(o->e),
          eg_nenodes(o->e), eg_peak_bytes(o->e));
  if (eg_nrefused(o->e))
    fprintf(f, "refused unions (type mismatch; a rule bug or a missing guard): %zu\n%s",
            eg_nrefused(o->e), eg_refusals(o->e));
}

void tl_opt_print_explain(tl_opt *o, FILE *f) {
  if (!o->report || !o->have_choice) return;
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
  if (!fired) fprintf(f, "  (none)\n");
  for (int k = 0; k < o->nout; k++) {
    eg_id root = eg_find(o->e, o->roots[k]);
    fprintf(f, "output %s: candidates in its e-class (tree cost, chosen first):\n", o->out_names[k]);
    uint32_t nn;
    const uint32_t *nodes = eg_class_nodes(o->e, root, &nn);
    const double *w = tn_op_weights();
    uint32_t chosen = o->choice.node[root];
    for (int pass = 0; pass < 2; pass++)
      for (uint32_t i = 0; i < nn; i++) {
        if ((pass == 0) != (nodes[i] == chosen)) continue;
        const eg_node *nd = eg_get_node(o->e, nodes[i]);
        double cost = w[nd->op];
        bool finite = true;
        const eg_id *kids = eg_node_kids(o->e, nd);
        for (uint32_t j = 0; j < nd->n; j++) {
          double kc = o->choice.cost[eg_find(o->e, kids[j])];
          if (!(kc < 1e300)) finite = false;
          cost += kc;
        }
        char head[256];
        eg_print_head(o->e, nd->op, nd->attr, head, sizeof head);
        if (finite) fprintf(f, "  %s %10.2f  %s ...\n", pass == 0 ? "*" : " ", cost, head);
        else fprintf(f, "  %s %10s  %s ...\n", pass == 0 ? "*" : " ", "inf", head);
        if (pass == 1 && i > 12) {
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
      free(pair);
      goto done;
    }
  }
  saturate(o);
  if (o->report->error) {
    snprintf(err, err_size, "%s", o->report->msg);
    free(pair);
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
  free(pair);
done:
  free(ra);
  free(rb);
  return rc;
}

int tl_opt_dot(tl_opt *o, const tl_graph *g, bool sat, FILE *out, char *err, size_t err_size) {
  clear_run(o);
  o->e = new_egraph(o);
  eg_id *roots = tl_xcalloc((size_t)g->noutputs + 1, sizeof *roots);
  if (tn_load_graph(o->ctx, o->e, g, roots, NULL, err, err_size) != 0) {
    free(roots);
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
  free(roots);
  return 0;
}

int tl_opt_parse_limits(const char *s, eg_limits *l) {
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
    else if (strcmp(kv, "nodes") == 0) l->nodes = (size_t)v;
    else if (strcmp(kv, "time") == 0) l->seconds = v;
    else if (strcmp(kv, "mem") == 0) l->bytes = (size_t)(v * 1048576.0);
    else rc = -1;
  }
  free(copy);
  return rc;
}

const eg_report *tl_opt_report(const tl_opt *o) { return o->report; }

void tl_opt_sizes(const tl_opt *o, size_t *enodes, size_t *eclasses, size_t *peak_bytes) {
  *enodes = o->e ? eg_nenodes(o->e) : 0;
  *eclasses = o->e ? eg_nclasses(o->e) : 0;
  *peak_bytes = o->e ? eg_peak_bytes(o->e) : 0;
}
