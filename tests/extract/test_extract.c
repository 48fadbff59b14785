/* Tests of extract/: three independent kinds.
 *  1. Samples: extraction-gym files through every extractor; each result is
 *     checked by the oracle below (valid, acyclic, its DAG cost), and dag <=
 *     tree, exact <= dag. The small sample kept in the repository
 *     (tests/data/extraction-gym, TL_EXTRACTION_SAMPLE) always runs, against
 *     expected.tsv (optimal tree and DAG costs computed from the definitions
 *     by expected.py); the full set next to the repository
 *     (TL_EXTRACTION_GYM) runs when present and is reported as skipped
 *     otherwise. Malformed lean-egg files must give the non-canonical-root
 *     error.
 *  2. Brute force: random small e-graphs (cycles, self-loops, negative
 *     costs, unextractable classes) where every choice is enumerated and
 *     judged by the oracle; exact must match the enumerated optimum, and
 *     every extractor must agree on feasibility.
 *  3. Malformed input and the builder/CLI contracts, each with its message. */
#include "cli/cli.h"
#include "util/alloc.h"
#include "extract/extract.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *data_dir(void) {
  const char *d = getenv("TL_EXTRACTION_GYM");
  return d ? d : "../shared/data/extraction-gym";
}

static const char *sample_dir(void) {
  const char *d = getenv("TL_EXTRACTION_SAMPLE");
  return d ? d : "tests/data/extraction-gym";
}

/* Criterion shows a skip only in its verbose mode: say it on stderr too. */
#define SKIP(...)                                                                                                      \
  do {                                                                                                                 \
    fprintf(stderr, "skipped: " __VA_ARGS__);                                                                          \
    fputc('\n', stderr);                                                                                               \
    cr_skip_test(__VA_ARGS__);                                                                                         \
  } while (0)

/* ---- the oracle -------------------------------------------------------------
 * extract.h's semantics written again, plainly, so that what the tests
 * check is not checked by the code under test (ex_check, ex_dag_cost,
 * ex_tree_cost). or_walk visits the classes reachable from the roots
 * through the chosen nodes, depth first with three colours, and fails
 * when a reached class has no node of its own chosen or when the walk
 * meets a class still on its stack (a cycle). The DAG cost pays each
 * reached class's node once; the tree cost unfolds the term, a class once
 * per occurrence as a child. */

typedef struct or_walk_t {
  uint32_t *order; /* the reached classes, children before parents */
  uint32_t n;
} or_walk_t;

static bool or_chosen(const ex_graph *g, const uint32_t *choice, uint32_t c) {
  return choice[c] != EX_NONE && choice[c] >= g->class_start[c] && choice[c] < g->class_start[c + 1];
}

static bool or_walk(const ex_graph *g, const uint32_t *choice, or_walk_t *w) {
  uint32_t nc = g->n_classes;
  uint8_t *colour = tl_xcalloc((size_t)nc + 1, 1); /* 0 new, 1 on the stack, 2 done */
  uint32_t *stk = tl_xmalloc(((size_t)nc + 1) * sizeof *stk), *next = tl_xmalloc(((size_t)nc + 1) * sizeof *next);
  w->order = tl_xmalloc(((size_t)nc + 1) * sizeof *w->order);
  w->n = 0;
  cr_assert(colour && stk && next && w->order);
  bool ok = true;
  for (uint32_t i = 0; ok && i < g->n_roots; i++) {
    uint32_t r = g->roots[i];
    if (colour[r] == 2) continue;
    if (!or_chosen(g, choice, r)) {
      ok = false;
      break;
    }
    uint32_t sp = 0;
    stk[sp] = r, next[sp++] = 0, colour[r] = 1;
    while (ok && sp) {
      uint32_t c = stk[sp - 1], n = choice[c];
      uint32_t k = g->child_start[n] + next[sp - 1];
      if (k < g->child_start[n + 1]) {
        next[sp - 1]++;
        uint32_t x = g->child[k];
        if (colour[x] == 1 || (colour[x] == 0 && !or_chosen(g, choice, x)))
          ok = false;
        else if (colour[x] == 0)
          stk[sp] = x, next[sp++] = 0, colour[x] = 1;
      } else {
        colour[c] = 2;
        w->order[w->n++] = c;
        sp--;
      }
    }
  }
  tl_free(colour), tl_free(stk), tl_free(next);
  return ok;
}

/* NAN when the choice is not valid. */
static double or_dag_cost(const ex_graph *g, const uint32_t *choice) {
  or_walk_t w;
  double v = NAN;
  if (or_walk(g, choice, &w)) {
    v = 0;
    for (uint32_t i = 0; i < w.n; i++) v += g->node_cost[choice[w.order[i]]];
  }
  tl_free(w.order);
  return v;
}

static double or_tree_cost(const ex_graph *g, const uint32_t *choice) {
  or_walk_t w;
  double v = NAN;
  if (or_walk(g, choice, &w)) {
    double *tc = tl_xcalloc((size_t)g->n_classes + 1, sizeof *tc);
    cr_assert(tc);
    for (uint32_t i = 0; i < w.n; i++) { /* children first */
      uint32_t c = w.order[i], n = choice[c];
      tc[c] = g->node_cost[n];
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) tc[c] += tc[g->child[k]];
    }
    v = 0;
    for (uint32_t i = 0; i < g->n_roots; i++) v += tc[g->roots[i]];
    tl_free(tc);
  }
  tl_free(w.order);
  return v;
}

static const char *malformed[] = {"Binders__4.json", "Condition_Subgoals__4.json", "Explosion__4.json",
                                  "Math_BooleanAlgebra__1.json", "Reduce__6.json"};

static bool is_malformed(const char *path) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
    if (strcmp(b, malformed[i]) == 0) return true;
  return false;
}

typedef struct sample_stats {
  int files, bad;
} sample_stats;

static void run_sample(const char *path, sample_stats *s) {
  ex_graph *g;
  tl_error d;
  ex_status st = ex_read_json(path, &g, &d);
  if (is_malformed(path)) {
    cr_expect_eq(st, EX_ERR_SCHEMA, "%s should be rejected", path);
    cr_expect(strstr(d.msg, path) && strstr(d.msg, "root e-class") && strstr(d.msg, "has no e-node"),
              "unexpected message: %s", d.msg);
    s->bad++;
    return;
  }
  cr_assert_eq(st, EX_OK, "%s", d.msg);
  s->files++;
  ex_params p = ex_params_default();
  p.time_limit_s = 0.25; /* keeps the suite short; the bench uses 10 s */
  double cost[EX_KIND_COUNT];
  /* CBC overruns short limits on big models (it checks time between
   * phases); large files are left to bench-extract to keep the suite short. */
  int kinds = g->n_nodes <= 3000 ? EX_KIND_COUNT : EX_EXACT;
  cost[EX_EXACT] = -INFINITY;
  for (int k = 0; k < kinds; k++) {
    ex_result r;
    st = ex_extract(g, (ex_kind)k, p, &r, &d);
    cr_assert_eq(st, EX_OK, "%s %s: %s", ex_kind_name((ex_kind)k), path, d.msg);
    double oc = or_dag_cost(g, r.choice);
    cr_expect(!isnan(oc), "%s %s: not a valid extraction", ex_kind_name((ex_kind)k), path);
    cost[k] = r.dag_cost;
    cr_expect(fabs(oc - r.dag_cost) <= 1e-9 * (1 + fabs(r.dag_cost)), "%s %s: cost %.17g, oracle %.17g",
              ex_kind_name((ex_kind)k), path, r.dag_cost, oc);
    if (k == EX_EXACT)
      cr_expect(r.lower_bound <= r.dag_cost + 1e-6 * (1 + fabs(r.dag_cost)), "%s: lb %g > %g", path, r.lower_bound,
                r.dag_cost);
    ex_result_free(&r);
  }
  double tol = 1e-9 * (1 + fabs(cost[EX_TREE]));
  cr_expect(cost[EX_DAG] <= cost[EX_TREE] + tol, "%s: dag %.17g > tree %.17g", path, cost[EX_DAG], cost[EX_TREE]);
  cr_expect(cost[EX_EXACT] <= cost[EX_DAG] + tol, "%s: exact %.17g > dag %.17g", path, cost[EX_EXACT], cost[EX_DAG]);
  ex_graph_free(g);
}

static void walk(const char *dir, sample_stats *s) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    size_t len = strlen(p);
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
      walk(p, s);
    else if (len > 5 && strcmp(p + len - 5, ".json") == 0)
      run_sample(p, s);
  }
  closedir(d);
}

/* One test per top-level folder so Criterion can run them in parallel. */
static void samples_under(const char *sub) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", data_dir(), sub);
  struct stat st;
  if (stat(dir, &st) != 0) SKIP("no extraction-gym data at %s (the full set; the repository's sample runs)", dir);
  sample_stats s = {0};
  walk(dir, &s);
  cr_expect_gt(s.files, 0);
}

Test(samples, tensat, .timeout = 120) { samples_under("data/tensat"); }
Test(samples, egg, .timeout = 120) { samples_under("data/egg"); }
Test(samples, babble, .timeout = 120) { samples_under("data/babble"); }
Test(samples, lean_egg, .timeout = 120) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/data/lean-egg", data_dir());
  struct stat st;
  if (stat(dir, &st) != 0) SKIP("no extraction-gym data at %s (the full set; the repository's sample runs)", dir);
  sample_stats s = {0};
  walk(dir, &s);
  cr_expect_eq(s.bad, 5, "the five malformed lean-egg files must be rejected");
  cr_expect_eq(s.files, 7);
}
Test(samples, others, .timeout = 120) {
  static const char *subs[] = {"data/diospyros", "data/dummy_examples", "data/eggcc-bril",
                               "data/flexc",     "data/herbie",         "data/maxsat",
                               "data/rover",     "data/set_covering",   "data/constructed"};
  for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) samples_under(subs[i]);
}
Test(samples, test_data, .timeout = 120) { samples_under("test_data"); }

/* The repository's sample against expected.tsv (file, status, optimal tree
 * cost, optimal DAG cost; see expected.py): tree-greedy's tree cost is the
 * optimum (the sample's costs are >= 0), exact finds and proves the DAG
 * optimum, dag is no better than it, and every result passes the oracle.
 * Every .json of the sample must have a row. */
Test(samples, repository_expected, .timeout = 120) {
  char path[4096], line[4096];
  snprintf(path, sizeof path, "%s/expected.tsv", sample_dir());
  FILE *f = fopen(path, "r");
  cr_assert(f, "cannot open %s", path);
  int rows = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    char rel[1024], status[32], tree_s[64], dag_s[64];
    cr_assert_eq(sscanf(line, "%1023s %31s %63s %63s", rel, status, tree_s, dag_s), 4, "%s", line);
    snprintf(path, sizeof path, "%s/%s", sample_dir(), rel);
    rows++;
    ex_graph *g;
    tl_error d;
    ex_status st = ex_read_json(path, &g, &d);
    if (!strcmp(status, "malformed")) {
      cr_expect_eq(st, EX_ERR_SCHEMA, "%s should be rejected", rel);
      cr_expect(strstr(d.msg, "root e-class") && strstr(d.msg, "has no e-node"), "%s", d.msg);
      bad++;
      continue;
    }
    cr_assert_eq(st, EX_OK, "%s", d.msg);
    double tree_opt = strtod(tree_s, NULL), dag_opt = strtod(dag_s, NULL);
    double tol = 1e-9 * (1 + fabs(dag_opt)), ttol = 1e-9 * (1 + fabs(tree_opt));
    ex_params p = ex_params_default();
    p.time_limit_s = 30;
    for (int k = 0; k < EX_KIND_COUNT; k++) {
      ex_result r;
      cr_assert_eq(ex_extract(g, (ex_kind)k, p, &r, &d), EX_OK, "%s %s: %s", ex_kind_name((ex_kind)k), rel, d.msg);
      double oc = or_dag_cost(g, r.choice);
      cr_expect(!isnan(oc), "%s %s: not a valid extraction", ex_kind_name((ex_kind)k), rel);
      cr_expect(fabs(oc - r.dag_cost) <= tol, "%s %s: cost %.17g, oracle %.17g", ex_kind_name((ex_kind)k), rel,
                r.dag_cost, oc);
      cr_expect(oc >= dag_opt - tol, "%s %s: %.17g beats the optimum %.17g", ex_kind_name((ex_kind)k), rel, oc,
                dag_opt);
      if (k == EX_TREE)
        cr_expect(fabs(or_tree_cost(g, r.choice) - tree_opt) <= ttol, "tree %s: tree cost %.17g, optimum %.17g", rel,
                  or_tree_cost(g, r.choice), tree_opt);
      if (k == EX_EXACT) {
        cr_expect(fabs(oc - dag_opt) <= tol, "exact %s: %.17g, optimum %.17g", rel, oc, dag_opt);
        cr_expect(r.optimal, "exact %s: not proved", rel);
        cr_expect(r.lower_bound <= dag_opt + tol);
      }
      ex_result_free(&r);
    }
    ex_graph_free(g);
  }
  fclose(f);
  sample_stats all = {0};
  /* every file of the sample has a row: walk counts them (and checks them again) */
  walk(sample_dir(), &all);
  cr_expect_eq(all.files + all.bad, rows, "%d .json files, %d rows in expected.tsv: run expected.py",
               all.files + all.bad, rows);
  cr_expect_eq(bad, all.bad);
}

/* ---- brute force -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  /* splitmix64: reproducible, no global state */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A random e-graph of 2..max_classes classes (at most 8) with 1..3 nodes
 * each and up to max_kids (at most 4) children per node, any class allowed
 * as a child: cycles and self-loops. */
static ex_graph *random_graph_sized(uint64_t *seed, bool negative, uint32_t max_classes, uint32_t max_kids) {
  ex_graph *g = ex_graph_new();
  uint32_t nc = 2 + (uint32_t)(rng_next(seed) % (max_classes - 1));
  for (uint32_t c = 0; c < nc; c++) ex_graph_add_class(g, NULL);
  for (uint32_t c = 0; c < nc; c++) {
    uint32_t nn = 1 + (uint32_t)(rng_next(seed) % 3);
    for (uint32_t i = 0; i < nn; i++) {
      uint32_t kids[4], nk = (uint32_t)(rng_next(seed) % (max_kids + 1));
      for (uint32_t k = 0; k < nk; k++) kids[k] = (uint32_t)(rng_next(seed) % nc);
      double cost = (double)(rng_next(seed) % 10);
      if (negative && rng_next(seed) % 3 == 0) cost = -cost;
      ex_graph_add_node(g, c, cost, kids, nk, NULL);
    }
  }
  ex_graph_add_root(g, 0);
  if (rng_next(seed) % 3 == 0) ex_graph_add_root(g, nc - 1);
  tl_error d;
  cr_assert_eq(ex_graph_finish(g, &d), EX_OK, "%s", d.msg);
  return g;
}

static ex_graph *random_graph(uint64_t *seed, bool negative) { return random_graph_sized(seed, negative, 6, 3); }

/* Minimum DAG cost over every assignment of one node to every class
 * (unreachable classes' picks do not matter, so this covers all choices),
 * judged by the oracle; INFINITY when none is valid. On the way, the
 * library's own ex_check, ex_dag_cost and ex_tree_cost must agree with the
 * oracle on every assignment. */
static double brute_force(const ex_graph *g) {
  uint32_t nc = g->n_classes, ch[8] = {0}, idx[8] = {0};
  double best = INFINITY;
  for (;;) {
    for (uint32_t c = 0; c < nc; c++) ch[c] = g->class_start[c] + idx[c];
    double v = or_dag_cost(g, ch);
    cr_assert_eq(ex_check(g, ch, NULL) == EX_OK, !isnan(v), "ex_check disagrees with the oracle");
    if (!isnan(v)) {
      cr_assert(fabs(ex_dag_cost(g, ch) - v) < 1e-9, "ex_dag_cost %g, oracle %g", ex_dag_cost(g, ch), v);
      cr_assert(fabs(ex_tree_cost(g, ch) - or_tree_cost(g, ch)) < 1e-9);
      if (v < best) best = v;
    }
    uint32_t c = 0;
    while (c < nc && ++idx[c] == g->class_start[c + 1] - g->class_start[c]) idx[c++] = 0;
    if (c == nc) break;
  }
  return best;
}

static void brute_round_sized(uint64_t seed, int count, bool negative, uint32_t max_classes, uint32_t max_kids) {
  for (int i = 0; i < count; i++) {
    ex_graph *g = random_graph_sized(&seed, negative, max_classes, max_kids);
    double opt = brute_force(g);
    ex_params p = ex_params_default();
    p.time_limit_s = 5;
    for (int k = 0; k < EX_KIND_COUNT; k++) {
      ex_result r;
      tl_error d;
      ex_status st = ex_extract(g, (ex_kind)k, p, &r, &d);
      if (!isfinite(opt)) {
        cr_expect_eq(st, EX_ERR_INFEASIBLE, "graph %d: %s found a choice where none exists", i,
                     ex_kind_name((ex_kind)k));
        cr_expect(strstr(d.msg, "no acyclic extraction"), "%s", d.msg);
        continue;
      }
      cr_assert_eq(st, EX_OK, "graph %d %s: %s", i, ex_kind_name((ex_kind)k), d.msg);
      double oc = or_dag_cost(g, r.choice);
      cr_expect(!isnan(oc), "graph %d %s: not a valid extraction", i, ex_kind_name((ex_kind)k));
      cr_expect(fabs(oc - r.dag_cost) < 1e-9, "graph %d %s: cost %g, oracle %g", i, ex_kind_name((ex_kind)k),
                r.dag_cost, oc);
      cr_expect_geq(r.dag_cost, opt - 1e-9);
      if (k == EX_EXACT) {
        /* The bound is the combinatorial one or the solver's: either way
         * it may never pass the optimum. */
        cr_expect(r.lower_bound <= opt + 1e-9, "graph %d (seed %llu): lower bound %g > optimum %g", i,
                  (unsigned long long)seed, r.lower_bound, opt);
        cr_expect(fabs(r.dag_cost - opt) < 1e-9, "graph %d (seed %llu): exact %g, optimum %g", i,
                  (unsigned long long)seed, r.dag_cost, opt);
        cr_expect(r.optimal);
      }
      ex_result_free(&r);
    }
    ex_graph_free(g);
  }
}

static void brute_round(uint64_t seed, int count, bool negative) { brute_round_sized(seed, count, negative, 6, 3); }

Test(brute_force, nonnegative_costs, .timeout = 60) { brute_round(1, 300, false); }
Test(brute_force, negative_costs, .timeout = 60) { brute_round(2, 300, true); }
/* Larger and denser graphs: more cycles, so the exact extractor often needs
 * several rounds of cycle rows, and more sharing for the lower bound. */
Test(brute_force, dense_cycles, .timeout = 120) {
  brute_round_sized(4, 150, false, 8, 4);
  brute_round_sized(5, 150, true, 8, 4);
}

/* Tree-greedy is optimal for the tree cost with costs >= 0: compare with the
 * enumerated minimum tree cost. */
Test(brute_force, tree_optimal_tree_cost, .timeout = 60) {
  uint64_t seed = 3;
  for (int i = 0; i < 300; i++) {
    ex_graph *g = random_graph(&seed, false);
    uint32_t nc = g->n_classes, ch[8], idx[8] = {0};
    double best = INFINITY;
    for (;;) {
      for (uint32_t c = 0; c < nc; c++) ch[c] = g->class_start[c] + idx[c];
      double v = or_tree_cost(g, ch);
      if (!isnan(v) && v < best) best = v;
      uint32_t c = 0;
      while (c < nc && ++idx[c] == g->class_start[c + 1] - g->class_start[c]) idx[c++] = 0;
      if (c == nc) break;
    }
    ex_result r;
    tl_error d;
    if (ex_extract(g, EX_TREE, ex_params_default(), &r, &d) == EX_OK) {
      cr_expect(fabs(or_tree_cost(g, r.choice) - best) < 1e-9, "graph %d: tree %g, optimum %g", i,
                or_tree_cost(g, r.choice), best);
      cr_expect(fabs(r.tree_cost - best) < 1e-9);
      ex_result_free(&r);
    } else {
      cr_expect(!isfinite(best));
    }
    ex_graph_free(g);
  }
}

/* ---- malformed input, builder, CLI ------------------------------------- */

static ex_status read_str(const char *s, tl_error *d) {
  ex_graph *g;
  ex_status st = ex_read_json_buf(s, strlen(s), "t.json", &g, d);
  cr_expect((st == EX_OK) == (g != NULL));
  ex_graph_free(g);
  return st;
}

Test(malformed, messages) {
  tl_error d;
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": [\"zz\"], \"eclass\": "
                        "\"1\"}}, \"root_eclasses\": [\"1\"]}",
                        &d),
               EX_ERR_SCHEMA);
  cr_expect(strstr(d.msg, "t.json: error: node 'a' has child 'zz', which is not a node"), "%s", d.msg);
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": [], \"eclass\": "
                        "\"1\"}}, \"root_eclasses\": [\"2\"]}",
                        &d),
               EX_ERR_SCHEMA);
  cr_expect(strstr(d.msg, "root e-class '2' has no e-node"), "%s", d.msg);
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": [], \"eclass\": "
                        "\"1\",}}, \"root_eclasses\": [\"1\"]}",
                        &d),
               EX_ERR_SYNTAX);
  cr_expect(strstr(d.msg, "t.json:1:") && strstr(d.msg, "JSON syntax error"), "%s", d.msg);
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": [], \"eclass\": ", &d), EX_ERR_SYNTAX);
  cr_expect(strstr(d.msg, "unexpected end of input"), "%s", d.msg);
  cr_expect_eq(read_str("[1, 2]", &d), EX_ERR_SCHEMA);
  cr_expect_eq(read_str("{\"nodes\": {}, \"root_eclasses\": []}", &d), EX_ERR_SCHEMA);
  cr_expect(strstr(d.msg, "no root"), "%s", d.msg);
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": [], \"cost\": \"x\", "
                        "\"eclass\": \"1\"}}, \"root_eclasses\": [\"1\"]}",
                        &d),
               EX_ERR_SCHEMA);
  cr_expect(strstr(d.msg, "\"cost\" is not a finite number"), "%s", d.msg);
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": []}}, "
                        "\"root_eclasses\": [\"1\"]}",
                        &d),
               EX_ERR_SCHEMA);
  cr_expect(strstr(d.msg, "no string \"eclass\""), "%s", d.msg);
  cr_expect_eq(read_str("{\"nodes\": {\"a\": {\"op\": \"x\", \"children\": [], \"eclass\": \"1\"},"
                        "\"a\": {\"op\": \"y\", \"children\": [], \"eclass\": \"1\"}}, "
                        "\"root_eclasses\": [\"1\"]}",
                        &d),
               EX_ERR_SCHEMA);
  cr_expect(strstr(d.msg, "defined twice"), "%s", d.msg);
  ex_graph *g;
  cr_expect_eq(ex_read_json("/nonexistent/e.json", &g, &d), EX_ERR_IO);
  cr_expect(strstr(d.msg, "/nonexistent/e.json: error: cannot open"), "%s", d.msg);
}

/* The in-memory reader takes a buffer that need not be NUL-terminated:
 * the syntax error quotes only bytes inside it. */
Test(malformed, syntax_error_quotes_inside_the_buffer) {
  char *buf = tl_xmalloc(2);
  memcpy(buf, "{x", 2);
  ex_graph *g;
  tl_error d;
  cr_expect_eq(ex_read_json_buf(buf, 2, "t.json", &g, &d), EX_ERR_SYNTAX);
  cr_expect(strstr(d.msg, "t.json:1:2: error: JSON syntax error near 'x'"), "%s", d.msg);
  tl_free(buf);
  buf = tl_xmalloc(40);
  memset(buf, 'x', 40);
  buf[0] = '[';
  cr_expect_eq(ex_read_json_buf(buf, 40, "t.json", &g, &d), EX_ERR_SYNTAX);
  cr_expect(strstr(d.msg, "near 'xxxxxxxxxxxxxxxxxxxx'"), "%s", d.msg);
  tl_free(buf);
  cr_expect_eq(ex_read_json("/dev/zero", &g, &d), EX_ERR_IO);
  cr_expect(strstr(d.msg, "/dev/zero: error: not a regular file and longer than the input limit"), "%s", d.msg);
}

/* A cost CLP cannot take (it asserts |cost| < 1e25, and aborted the
 * process): exact returns the dag heuristic's valid choice, not proved. */
Test(exact, costs_out_of_the_solvers_range) {
  const char *s = "{\"nodes\": {\"a\": {\"op\": \"a\", \"children\": [], \"eclass\": \"A\"},"
                  "\"b\": {\"op\": \"b\", \"children\": [], \"eclass\": \"B\"},"
                  "\"x\": {\"op\": \"x\", \"children\": [\"a\"], \"eclass\": \"X\"},"
                  "\"h\": {\"op\": \"huge\", \"cost\": 6.7e25, \"children\": [\"a\"], \"eclass\": \"Y\"},"
                  "\"c\": {\"op\": \"cheap\", \"children\": [\"b\"], \"eclass\": \"Y\"},"
                  "\"r\": {\"op\": \"r\", \"children\": [\"x\", \"c\"], \"eclass\": \"R\"}},"
                  "\"root_eclasses\": [\"R\"]}";
  ex_graph *g;
  tl_error d;
  cr_assert_eq(ex_read_json_buf(s, strlen(s), "huge.json", &g, &d), EX_OK, "%s", d.msg);
  ex_result r;
  cr_assert_eq(ex_extract(g, EX_EXACT, ex_params_default(), &r, &d), EX_OK, "%s", d.msg);
  cr_expect_eq(ex_check(g, r.choice, &d), EX_OK, "%s", d.msg);
  cr_expect_eq(r.dag_cost, 5.0);
  ex_result_free(&r);
  ex_graph_free(g);
}

Test(malformed, only_cyclic_choices) {
  ex_graph *g;
  tl_error d;
  const char *s = "{\"nodes\": {\"a\": {\"op\": \"f\", \"children\": [\"b\"], \"eclass\": \"1\"},"
                  "\"b\": {\"op\": \"g\", \"children\": [\"a\"], \"eclass\": \"2\"},"
                  "\"c\": {\"op\": \"k\", \"children\": [], \"eclass\": \"3\"}},"
                  "\"root_eclasses\": [\"1\", \"3\"]}";
  cr_assert_eq(ex_read_json_buf(s, strlen(s), "cyc.json", &g, &d), EX_OK, "%s", d.msg);
  for (int k = 0; k < EX_KIND_COUNT; k++) {
    ex_result r;
    cr_expect_eq(ex_extract(g, (ex_kind)k, ex_params_default(), &r, &d), EX_ERR_INFEASIBLE);
    cr_expect(strstr(d.msg, "no acyclic extraction exists") && strstr(d.msg, "'1'"), "%s", d.msg);
  }
  ex_graph_free(g);
}

/* Shared subterm: tree-greedy picks the cheap-looking unshared node, the
 * DAG-aware extractor sees that reusing the shared class is cheaper. */
Test(extractors, sharing_counted_once) {
  ex_graph *g = ex_graph_new();
  uint32_t root = ex_graph_add_class(g, "root"), s = ex_graph_add_class(g, "s"), a = ex_graph_add_class(g, "a"),
           b = ex_graph_add_class(g, "b");
  ex_graph_add_node(g, s, 10, NULL, 0, "s0");
  uint32_t ks[1] = {s};
  ex_graph_add_node(g, a, 1, ks, 1, "a_shared"); /* tree 11 */
  ex_graph_add_node(g, a, 8, NULL, 0, "a_leaf"); /* tree 8 */
  ex_graph_add_node(g, b, 1, ks, 1, "b_shared");
  ex_graph_add_node(g, b, 8, NULL, 0, "b_leaf");
  uint32_t kr[3] = {a, b, s};
  ex_graph_add_node(g, root, 0, kr, 3, "r");
  ex_graph_add_root(g, root);
  tl_error d;
  cr_assert_eq(ex_graph_finish(g, &d), EX_OK);
  ex_result t, x, e;
  cr_assert_eq(ex_extract(g, EX_TREE, ex_params_default(), &t, &d), EX_OK);
  cr_assert_eq(ex_extract(g, EX_DAG, ex_params_default(), &x, &d), EX_OK);
  cr_assert_eq(ex_extract(g, EX_EXACT, ex_params_default(), &e, &d), EX_OK, "%s", d.msg);
  cr_expect_eq(t.dag_cost, 26); /* 8 + 8 + 10 */
  cr_expect_eq(x.dag_cost, 12); /* 1 + 1 + 10, s paid once */
  cr_expect_eq(e.dag_cost, 12);
  cr_expect(e.optimal);
  cr_expect_eq(e.lower_bound, 12);
  char b1[32];
  cr_expect_str_eq(ex_graph_node_name(g, x.choice[a], b1, sizeof b1), "a_shared");
  ex_result_free(&t), ex_result_free(&x), ex_result_free(&e);
  ex_graph_free(g);
}

/* A private class (one parent occurrence) under a shared one: the DAG
 * extractor folds its cost into its owner instead of giving it a bit, and
 * must still count it once. r = (a, b); a and b either share s (cost 1 each,
 * s costs 1 plus its private child p, 3) or are leaves (5 each). */
Test(extractors, private_class_counted_once) {
  ex_graph *g = ex_graph_new();
  uint32_t r = ex_graph_add_class(g, "r"), a = ex_graph_add_class(g, "a"), b = ex_graph_add_class(g, "b"),
           s = ex_graph_add_class(g, "s"), p = ex_graph_add_class(g, "p");
  ex_graph_add_node(g, p, 3, NULL, 0, "p0");
  ex_graph_add_node(g, s, 1, (uint32_t[]){p}, 1, "s0");
  ex_graph_add_node(g, a, 1, (uint32_t[]){s}, 1, "a_s");
  ex_graph_add_node(g, a, 5, NULL, 0, "a_leaf");
  ex_graph_add_node(g, b, 1, (uint32_t[]){s}, 1, "b_s");
  ex_graph_add_node(g, b, 5, NULL, 0, "b_leaf");
  ex_graph_add_node(g, r, 0, (uint32_t[]){a, b}, 2, "r0");
  ex_graph_add_root(g, r);
  tl_error d;
  cr_assert_eq(ex_graph_finish(g, &d), EX_OK);
  ex_result x;
  cr_assert_eq(ex_extract(g, EX_DAG, ex_params_default(), &x, &d), EX_OK, "%s", d.msg);
  cr_expect_eq(x.dag_cost, 6); /* 1 + 1 + 1 + 3, s and p paid once */
  ex_result_free(&x);
  ex_graph_free(g);
}

/* The cheapest choice without acyclicity is a cycle (a_c -> c -> c_a), so
 * the exact extractor needs its cycle rows; the optimum is 4 (a_leaf, b_c,
 * c_a). Overlapping reachable sets keep the combinatorial bound (3) below
 * it, so the solver has to prove it. Once more with negative costs, where
 * the bound is not used at all. */
Test(exact, cycle_rows) {
  for (int neg = 0; neg < 2; neg++) {
    ex_graph *g = ex_graph_new();
    uint32_t r = ex_graph_add_class(g, "r"), a = ex_graph_add_class(g, "a"), b = ex_graph_add_class(g, "b"),
             c = ex_graph_add_class(g, "c");
    double lo = neg ? -1 : 1; /* the cheap cyclic nodes */
    ex_graph_add_node(g, r, 0, (uint32_t[]){a, b}, 2, "r0");
    ex_graph_add_node(g, a, lo, (uint32_t[]){c}, 1, "a_c");
    ex_graph_add_node(g, a, 3, NULL, 0, "a_leaf");
    ex_graph_add_node(g, b, 1, (uint32_t[]){c}, 1, "b_c");
    ex_graph_add_node(g, b, 3, NULL, 0, "b_leaf");
    ex_graph_add_node(g, c, 4, NULL, 0, "c_leaf");
    ex_graph_add_node(g, c, neg ? -1 : 0, (uint32_t[]){a}, 1, "c_a");
    ex_graph_add_root(g, r);
    tl_error d;
    cr_assert_eq(ex_graph_finish(g, &d), EX_OK);
    double opt = brute_force(g);
    cr_assert_eq(opt, neg ? 3 : 4);
    ex_result e;
    cr_assert_eq(ex_extract(g, EX_EXACT, ex_params_default(), &e, &d), EX_OK, "%s", d.msg);
    cr_expect_eq(e.dag_cost, opt, "neg %d: exact %g", neg, e.dag_cost);
    cr_expect(e.optimal);
    cr_expect_eq(e.lower_bound, opt);
    ex_result_free(&e);
    ex_graph_free(g);
  }
}

/* egg's associativity/commutativity shape (math_associate_adds): one class
 * per non-empty subset of {1..6}, one '+' node per ordered split, cost 1
 * per node. Every extraction is a binary tree with 6 leaves (cost 11), and
 * no two subterms can share, which the LP relaxation does not see; the
 * combinatorial bound proves it without the solver. */
Test(exact, disjoint_reach_bound) {
  enum { K = 6, SETS = 1 << K };
  ex_graph *g = ex_graph_new();
  uint32_t cls[SETS];
  for (uint32_t s = 1; s < SETS; s++) cls[s] = ex_graph_add_class(g, NULL);
  for (uint32_t s = 1; s < SETS; s++) {
    if (!(s & (s - 1))) {
      ex_graph_add_node(g, cls[s], 1, NULL, 0, NULL); /* a leaf */
      continue;
    }
    for (uint32_t t = (s - 1) & s; t; t = (t - 1) & s)
      ex_graph_add_node(g, cls[s], 1, (uint32_t[]){cls[t], cls[s & ~t]}, 2, NULL);
  }
  ex_graph_add_root(g, cls[SETS - 1]);
  tl_error d;
  cr_assert_eq(ex_graph_finish(g, &d), EX_OK);
  ex_result e;
  cr_assert_eq(ex_extract(g, EX_EXACT, ex_params_default(), &e, &d), EX_OK, "%s", d.msg);
  cr_expect_eq(e.dag_cost, 2 * K - 1);
  cr_expect(e.optimal);
  cr_expect_eq(e.lower_bound, 2 * K - 1);
  ex_result_free(&e);
  ex_graph_free(g);
}

Test(extractors, kind_names) {
  for (int k = 0; k < EX_KIND_COUNT; k++) cr_expect_eq(ex_kind_parse(ex_kind_name((ex_kind)k)), k);
  cr_expect_eq(ex_kind_parse("ilp"), EX_KIND_COUNT);
}

Test(cli, exit_status, .init = cr_redirect_stderr) {
  char path[4096];
  snprintf(path, sizeof path, "%s/data/egg/math_powers.json", sample_dir());
  FILE *saved = stdout;
  stdout = fopen("/dev/null", "w");
  char *ok[] = {"extract", path, "--extract", "exact", "--time-limit", "2", "--json", NULL};
  int rc_ok = cli_cmd_extract(7, ok);
  char *bad_opt[] = {"extract", path, "--extract", "ilp", NULL};
  int rc_bad_opt = cli_cmd_extract(4, bad_opt);
  char *missing[] = {"extract", "/nonexistent.json", NULL};
  int rc_missing = cli_cmd_extract(2, missing);
  char *none[] = {"extract", NULL};
  int rc_none = cli_cmd_extract(1, none);
  fclose(stdout);
  stdout = saved;
  cr_expect_eq(rc_ok, 0);
  cr_expect_eq(rc_bad_opt, 2);
  cr_expect_eq(rc_missing, 2);
  cr_expect_eq(rc_none, 2);
}

/* More random graphs through the exact extractor's LP stage (mandatory
 * classes, reduced-cost fixing, the LP heuristic): each seed is a new set
 * of graphs, checked against the enumerated optimum. */
Test(brute_force, lp_reduction, .timeout = 300) {
  for (uint64_t seed = 10; seed < 30; seed++) brute_round_sized(seed, 200, seed % 2 == 1, 8, 4);
}

/* tensat/bert_acyclic: the LP relaxation alone is weak here (0.374 against
 * an optimum of 0.708439); mandatory-class rows, the LP heuristic and
 * reduced-cost fixing are what make the proof possible. The limit is
 * generous so that sanitizer builds also finish; `tlaloc extract` proves it
 * within 10 s. */
Test(exact, tensat_bert_acyclic_proved, .timeout = 180) {
  char path[4096];
  snprintf(path, sizeof path, "%s/data/tensat/bert_acyclic.json", data_dir());
  struct stat st;
  if (stat(path, &st) != 0)
    SKIP("no extraction-gym data at %s (3.9 MB, not in the repository's sample; "
         "samples.repository_expected proves two smaller tensat graphs)",
         path);
  ex_graph *g;
  tl_error d;
  cr_assert_eq(ex_read_json(path, &g, &d), EX_OK, "%s", d.msg);
  ex_params p = ex_params_default();
  p.time_limit_s = 60;
  ex_result r;
  cr_assert_eq(ex_extract(g, EX_EXACT, p, &r, &d), EX_OK, "%s", d.msg);
  cr_expect(fabs(or_dag_cost(g, r.choice) - r.dag_cost) < 1e-9);
  cr_expect(r.optimal, "not proved: %.9g, bound %.9g", r.dag_cost, r.lower_bound);
  cr_expect(fabs(r.dag_cost - 0.708439016569173) < 1e-9, "cost %.15g", r.dag_cost);
  cr_expect_eq(r.lower_bound, r.dag_cost);
  ex_result_free(&r);
  ex_graph_free(g);
}
