/* bench_scaling.c - scaling benchmark: tensor graphs of 10^3 to
 * 10^6 nodes through tl_opt with rules/algebraic.rw.
 *
 *   bench-scaling [--smoke] [--runs N] [--min N] [--max N] [--family chain|mlp]
 *                 [--stats] [--rules PATH] [--mem] [--match-per-node K]
 * --stats writes tl_opt_print_stats of every run to stderr.
 * --mem adds a second table per family: the same saturation run directly on
 *   the e-graph (tensor language + runner, as tl_opt does it, no
 *   extraction), with the memory breakdown per stored e-node (eg_mem_usage),
 *   the match buffers' peak, and the rule applications and banned rules per
 *   iteration (to see the backoff scheduler's limit at work).
 * --match-per-node K sets the backoff scheduler's scale (eg_run_params;
 *   0 = egg's fixed limit of 1000 matches); default eg_run_defaults().
 *
 * Two families, built with the IR API (f32, x : [n 64] with n symbolic):
 *   chain: a long elementwise chain cycling through
 *            mul t 1, add t 0, exp t, log t, neg t, neg t, mul t 2, add t 1
 *          (mul-one, add-zero, log-exp and neg-neg fire; the commutativity
 *          and associativity rules grow the e-graph);
 *   mlp:   unrolled layers h = maximum(add(matmul(h, W), b), 0) with one
 *          W [64 64] and one b [64] shared by every layer.
 * Limits per size: 10 iterations, 50x the graph's size in e-nodes, 120 s.
 * For each size: nodes in, e-nodes and e-classes after, iterations, stop
 * reason, wall time of tl_opt_graph (load + saturate + extract + rebuild),
 * the saturation time alone (the runner's phase time), time per node,
 * eg_peak_bytes of the optimizer's e-graph (read from tl_opt_print_stats,
 * the only place tl_opt exposes it), bytes per e-node (peak bytes / e-nodes
 * after) and the growth of the wall time per 10x size. Sizes up to 10^5:
 * the fastest of N runs (default 3) in this process; 10^6: one run.
 * Also the process's peak RSS (VmHWM, reset before each size through
 * /proc/self/clear_refs where the kernel allows it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egraph/runner.h"
#include "util/alloc.h"
#include "ir/ir.h"
#include "opt/opt.h"
#include "opt/tensor.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int32_t lit_int(tl_graph *g, int64_t v) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.is_int = 1;
  a.i = v;
  char err[256];
  int32_t id = tl_graph_add(g, TL_OP_LIT, &a, NULL, 0, (tl_loc){0, 0}, err, sizeof err);
  if (id < 0) {
    fprintf(stderr, "lit: %s\n", err);
    exit(2);
  }
  return id;
}

static int32_t add_op(tl_graph *g, int op, int32_t a, int32_t b, int n) {
  tl_attrs at;
  tl_attrs_init(&at);
  int32_t in[2] = {a, b};
  char err[256];
  int32_t id = tl_graph_add(g, op, &at, in, n, (tl_loc){0, 0}, err, sizeof err);
  if (id < 0) {
    fprintf(stderr, "%s: %s\n", tl_ops[op].name, err);
    exit(2);
  }
  return id;
}

static tl_type f32_type(int rank, const int64_t *dims) {
  tl_type t;
  memset(&t, 0, sizeof t);
  t.dtype = TL_F32;
  t.rank = (uint8_t)rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

/* A chain of about `target` nodes. */
static tl_graph *build_chain(int32_t target) {
  tl_graph *g = tl_graph_new("chain");
  int64_t d[2] = {tl_dim_sym(tl_graph_sym(g, "n", 1)), 64};
  tl_type t = f32_type(2, d);
  int32_t x = tl_graph_add_input(g, "x", &t, (tl_loc){0, 0});
  int32_t zero = lit_int(g, 0), one = lit_int(g, 1), two = lit_int(g, 2);
  int32_t cur = x;
  for (int k = 0; g->nnodes < target; k++) {
    switch (k % 8) {
    case 0: cur = add_op(g, TL_OP_MUL, cur, one, 2); break;
    case 1: cur = add_op(g, TL_OP_ADD, cur, zero, 2); break;
    case 2: cur = add_op(g, TL_OP_EXP, cur, -1, 1); break;
    case 3: cur = add_op(g, TL_OP_LOG, cur, -1, 1); break;
    case 4: cur = add_op(g, TL_OP_NEG, cur, -1, 1); break;
    case 5: cur = add_op(g, TL_OP_NEG, cur, -1, 1); break;
    case 6: cur = add_op(g, TL_OP_MUL, cur, two, 2); break;
    default: cur = add_op(g, TL_OP_ADD, cur, one, 2); break;
    }
  }
  tl_graph_add_output(g, "y", cur);
  return g;
}

/* Unrolled MLP layers, about `target` nodes. */
static tl_graph *build_mlp(int32_t target) {
  tl_graph *g = tl_graph_new("mlp");
  int64_t d[2] = {tl_dim_sym(tl_graph_sym(g, "n", 1)), 64};
  tl_type tx = f32_type(2, d);
  int64_t dw[2] = {64, 64}, db[1] = {64};
  tl_type tw = f32_type(2, dw), tb = f32_type(1, db);
  int32_t h = tl_graph_add_input(g, "x", &tx, (tl_loc){0, 0});
  int32_t w = tl_graph_add_input(g, "W", &tw, (tl_loc){0, 0});
  int32_t b = tl_graph_add_input(g, "b", &tb, (tl_loc){0, 0});
  int32_t zero = lit_int(g, 0);
  while (g->nnodes < target) {
    h = add_op(g, TL_OP_MATMUL, h, w, 2);
    h = add_op(g, TL_OP_ADD, h, b, 2);
    h = add_op(g, TL_OP_MAXIMUM, h, zero, 2);
  }
  tl_graph_add_output(g, "y", h);
  return g;
}

typedef struct row {
  int32_t nodes_in;
  size_t enodes, eclasses, peak_bytes;
  unsigned iters;
  char stop[48];
  double wall_ms, cpu_ms, sat_ms, hwm_mib;
  int runs;
  int ok;
} row;

static long vm_hwm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) v = strtol(line + 6, NULL, 10);
  fclose(f);
  return v;
}

static void reset_hwm(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return;
  fputs("5", f);
  fclose(f);
}

/* Reads the stop reason, iterations, saturation time and the e-graph's
 * sizes from the --stats text (tl_opt exposes nothing else). */
static void parse_stats(const tl_opt *o, row *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return;
  tl_opt_print_stats(o, f);
  fclose(f);
  r->iters = 0;
  r->sat_ms = 0;
  r->stop[0] = 0;
  for (char *line = buf; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    int ph;
    char stop[48];
    unsigned it;
    double ms;
    size_t c, n, pb;
    if (sscanf(line, "phase %d: stop %47s after %u iterations, %lf ms", &ph, stop, &it, &ms) == 4) {
      r->iters += it;
      r->sat_ms += ms;
      snprintf(r->stop, sizeof r->stop, "%s", stop);
    } else if (sscanf(line, "e-graph: %zu e-classes, %zu e-nodes, %zu bytes at peak", &c, &n, &pb) == 3) {
      r->eclasses = c;
      r->enodes = n;
      r->peak_bytes = pb;
    }
    line = nl ? nl + 1 : NULL;
  }
  tl_free_foreign(buf); /* open_memstream's, libc's */
}

static bool print_stats;
static double match_per_node = -1; /* < 0: eg_run_defaults() */

static eg_run_params run_params(void) {
  eg_run_params rp = eg_run_defaults();
  if (match_per_node >= 0) rp.match_per_node = match_per_node;
  return rp;
}

static row run_size(const char *rules, int family, int32_t target, int runs) {
  row best;
  memset(&best, 0, sizeof best);
  tl_graph *g = family == 0 ? build_chain(target) : build_mlp(target);
  for (int k = 0; k < runs; k++) {
    tl_opt_params p = tl_opt_defaults();
    const char *paths[1] = {rules};
    p.rule_paths = paths;
    p.nrule_paths = 1;
    p.limits.iters = 10;
    p.limits.nodes = (size_t)g->nnodes * 50;
    p.nodes_per_node = 0; /* exactly 50x */
    p.limits.seconds = 120;
    p.limits.bytes = 0;
    p.run = run_params();
    tl_error err = {0};
    tl_opt *o = tl_opt_new(&p, TL_EMSG(&err));
    if (!o) {
      fprintf(stderr, "rules: %s\n", err.msg);
      exit(2);
    }
    reset_hwm();
    double t0 = now_ms(), c0 = cpu_ms();
    tl_graph *res = tl_opt_graph(o, g, &err);
    double t1 = now_ms(), c1 = cpu_ms();
    row r;
    memset(&r, 0, sizeof r);
    r.nodes_in = g->nnodes;
    r.wall_ms = t1 - t0;
    r.cpu_ms = c1 - c0;
    r.ok = res != NULL;
    if (!res) fprintf(stderr, "%s %d: %s\n", family ? "mlp" : "chain", target, err.msg);
    parse_stats(o, &r);
    if (print_stats) tl_opt_print_stats(o, stderr);
    long hwm = vm_hwm_kib();
    r.hwm_mib = hwm > 0 ? (double)hwm / 1024.0 : -1;
    tl_graph_free(res);
    tl_opt_free(o);
    if (!r.ok || r.cpu_ms < best.cpu_ms || k == 0) best = r;
    if (!r.ok) break;
  }
  best.runs = runs;
  tl_graph_free(g);
  return best;
}

/* The saturation of tl_opt (same e-graph parameters, rules, limits and
 * scheduler), run directly so the e-graph itself can be measured. */
static int mem_row(const char *rules, int family, int32_t target) {
  tl_graph *g = family == 0 ? build_chain(target) : build_mlp(target);
  tn_ctx *c = tn_ctx_new();
  eg_egraph *e = eg_new((eg_params){.lang = &c->lang, .analysis = &c->analysis,
                                    .seed = 0x746c616c6f63ULL});
  eg_rules *r = eg_rules_new(&c->lang, c->conds);
  tl_diag d = {0};
  if (eg_rules_load_file(r, rules, &d)) {
    fprintf(stderr, "%s", d.nerrors ? tl_diag_text(&d) : "rules: cannot load\n");
    exit(2);
  }
  tl_diag_free(&d);
  eg_id root;
  char err[512];
  if (tn_load_graph(c, e, g, &root, NULL, err, sizeof err)) {
    fprintf(stderr, "load: %s\n", err);
    exit(2);
  }
  eg_rebuild(e);
  eg_phase ph = {"", {10, (size_t)g->nnodes * 50, 120, 0}};
  double t0 = now_ms();
  eg_report *rep = eg_run(e, r, &ph, 1, run_params());
  double ms = now_ms() - t0;
  const eg_phase_report *P = &rep->phases[0];
  eg_mem m;
  eg_mem_usage(e, &m);
  size_t peak = eg_peak_bytes(e), an = eg_analysis_bytes(e), stored = eg_nodes_stored(e);
  double n = (double)stored, core = (double)(peak - an), mib = 1024.0 * 1024.0;
  char stop[48];
  if (P->stop == EG_STOP_SATURATED) snprintf(stop, sizeof stop, "Saturated");
  else snprintf(stop, sizeof stop, "%s(%.0f)", eg_stop_name(P->stop), P->stop_value);
  printf("| %s | %d | %zu | %zu | %zu | %u | %s | %.0f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f (%.1f) "
         "| %.1f | %.1f | %.1f |",
         family ? "mlp" : "chain", g->nnodes, stored, eg_nenodes(e), eg_nclasses(e), P->niters, stop, ms,
         (double)peak / mib, (double)an / mib, core / n, core / (double)eg_nenodes(e),
         (double)m.nodes / n, (double)m.kids / n, (double)m.memo / n, (double)m.ids / n,
         (double)m.lists / n, (double)m.lists_free / n, (double)m.index / n, (double)m.work / n,
         (double)rep->match_bytes / mib);
  for (uint32_t i = 0; i < P->niters; i++)
    printf("%s%zu/%zu", i ? " " : " ", P->iters[i].applied, P->iters[i].banned);
  printf(" |\n");
  fflush(stdout);
  int bad = P->stop == EG_STOP_NONE || eg_nenodes(e) < (size_t)g->nnodes / 4;
  eg_report_free(rep);
  eg_rules_free(r);
  eg_free(e);
  tn_ctx_free(c);
  tl_graph_free(g);
  return bad;
}

int main(int argc, char **argv) {
  bool smoke = false;
  int runs = 3;
  int32_t max = 1000000, min = 1000;
  int only = -1;
  bool mem = false;
  const char *rules = TL_SOURCE_ROOT "/rules/algebraic.rw";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--smoke") == 0) smoke = true;
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) max = (int32_t)atol(argv[++i]);
    else if (strcmp(argv[i], "--stats") == 0) print_stats = true;
    else if (strcmp(argv[i], "--min") == 0 && i + 1 < argc) min = (int32_t)atol(argv[++i]);
    else if (strcmp(argv[i], "--family") == 0 && i + 1 < argc) only = strcmp(argv[++i], "mlp") == 0;
    else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) rules = argv[++i];
    else if (strcmp(argv[i], "--mem") == 0) mem = true;
    else if (strcmp(argv[i], "--match-per-node") == 0 && i + 1 < argc) match_per_node = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: bench-scaling [--smoke] [--runs N] [--min N] [--max N] "
                      "[--family chain|mlp] [--stats] [--rules PATH] [--mem] [--match-per-node K]\n");
      return 2;
    }
  }
  if (smoke) {
    runs = 1;
    max = 10000;
    mem = true;
  }
  if (runs < 1) runs = 1;
  static const char *const fam[2] = {"chain", "mlp"};
  int failures = 0;
  printf("tl_opt with %s; limits: 10 iterations, 50x nodes, 120 s; backoff scheduler.\n"
         "wall, cpu = wall-clock and process CPU time of tl_opt_graph (load + saturate + extract +\n"
         "rebuild); sat = runner phase time (wall); us/node = cpu / nodes in (per iteration: / iters);\n"
         "peak = eg_peak_bytes of the optimizer's e-graph; B/enode = peak / e-nodes after;\n"
         "HWM = process VmHWM (reset per size when the kernel allows); x10 = cpu(10n)/cpu(n); runs kept by least CPU time.\n"
         "min of %d runs for sizes <= 10^5, one run for 10^6.\n\n",
         rules, runs);
  for (int f = 0; f < 2; f++) {
    if (only >= 0 && f != only) continue;
    printf("| graph | nodes in | e-nodes | e-classes | iters | stop | wall ms | cpu ms | sat ms | us/node | us/node/iter "
           "| peak MiB | B/enode | HWM MiB | x10 | runs |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    double prev = 0;
    for (int32_t n = min; n <= max; n *= 10) {
      row r = run_size(rules, f, n, n >= 1000000 ? 1 : runs);
      char x10[32] = "-";
      if (prev > 0 && r.ok) snprintf(x10, sizeof x10, "%.1f", r.cpu_ms / prev);
      printf("| %s | %d | %zu | %zu | %u | %s | %.1f | %.1f | %.1f | %.2f | %.3f | %.1f | %.1f | %.0f | %s | %d |\n",
             fam[f], r.nodes_in, r.enodes, r.eclasses, r.iters, r.ok ? r.stop : "error",
             r.wall_ms, r.cpu_ms, r.sat_ms, r.cpu_ms * 1e3 / r.nodes_in,
             r.iters ? r.cpu_ms * 1e3 / r.nodes_in / r.iters : 0.0,
             (double)r.peak_bytes / (1024.0 * 1024.0),
             r.enodes ? (double)r.peak_bytes / (double)r.enodes : 0.0, r.hwm_mib, x10, r.runs);
      fflush(stdout);
      if (!r.ok || r.enodes < (size_t)r.nodes_in / 4) failures++;
      prev = r.cpu_ms;
    }
    printf("\n");
    if (!mem) continue;
    eg_run_params rp = run_params();
    printf("Memory, direct eg_run (match_per_node %g): peak = eg_peak_bytes; core = peak - analysis;\n"
           "stored = node records (live + dead duplicates); B/stored and the breakdown columns are\n"
           "per stored e-node (eg_mem_usage, capacities); match = peak of the rules' match buffers\n"
           "(outside the e-graph); per iteration: rule applications / rules skipped while banned.\n\n"
           "| graph | nodes in | stored | live | e-classes | iters | stop | sat ms | peak MiB | analysis MiB "
           "| core B/stored | core B/live | nodes | kids | memo | ids | lists (free) | index | work "
           "| match MiB | applied/banned per iteration |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
           rp.match_per_node);
    for (int32_t n = min; n <= max; n *= 10) failures += mem_row(rules, f, n);
    printf("\n");
  }
  return failures ? 1 : 0;
}
