/* test_core.c - hash-consing, union-find, rebuild invariants (against a
 * naive congruence-closure oracle), attributes, analyses, memory accounting
 * and the list pool's compaction, threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#include "egraph/egraph.h"
#include "util/alloc.h"
#include "egraph/extract.h"
#include "tests/support/egg_math.h"
#include "egraph/runner.h"
#include "toy.h"

static eg_egraph *toy_graph(bool immediate) {
  return eg_new((eg_params){.lang = &toy_lang, .seed = 42, .check = true,
                            .immediate_rebuild = immediate});
}

Test(egraph_core, hashcons_shares_equal_nodes) {
  eg_egraph *g = toy_graph(false);
  char err[128];
  eg_id a = eg_add_term(g, "(g (f x) (f x))", err, sizeof err);
  eg_id b = eg_add_term(g, "(g (f x) (f x))", err, sizeof err);
  cr_assert_eq(a, b);
  cr_assert_eq(eg_nclasses(g), 3);
  cr_assert_eq(eg_nenodes(g), 3);
  cr_assert_eq(eg_memo_size(g), 3);
  eg_free(g);
}

Test(egraph_core, attr_interning) {
  eg_egraph *g = toy_graph(false);
  uint32_t a = eg_attr_intern(g, "abc", 3), b = eg_attr_intern(g, "abd", 3);
  cr_assert_neq(a, b);
  cr_assert_eq(eg_attr_intern(g, "abc", 3), a);
  cr_assert_eq(eg_attr_intern(g, "", 0), EG_ATTR_NONE);
  for (int i = 0; i < 1000; i++) eg_attr_intern(g, &i, sizeof i);
  int k = 777;
  size_t n;
  const uint8_t *p = eg_attr_bytes(g, eg_attr_intern(g, &k, sizeof k), &n);
  cr_assert_eq(n, sizeof k);
  cr_assert_eq(memcmp(p, &k, n), 0);
  cr_assert_eq(eg_attr_intern(g, "abc", 3), a);
  eg_free(g);
}

Test(egraph_core, congruence_after_rebuild) {
  eg_egraph *g = toy_graph(false);
  char err[128];
  eg_id fx = eg_add_term(g, "(f x)", err, sizeof err);
  eg_id fy = eg_add_term(g, "(f y)", err, sizeof err);
  eg_id x = eg_add_term(g, "x", err, sizeof err), y = eg_add_term(g, "y", err, sizeof err);
  cr_assert_neq(eg_find(g, fx), eg_find(g, fy));
  cr_assert(eg_union(g, x, y));
  cr_assert_not(eg_union(g, y, x));
  eg_rebuild(g);
  cr_assert_eq(eg_find(g, fx), eg_find(g, fy));
  cr_assert_eq(eg_nclasses(g), 2);
  eg_free(g);
}

/* ---- random adds and unions vs a naive oracle ---------------------------- */

typedef struct term { int op; uint32_t attr; int n; int kids[2]; eg_id id; } term;

static int ofind(int *p, int x) {
  while (p[x] != x) x = p[x];
  return x;
}

/* into: a third of the adds go through eg_add_into with a random existing
 * term, followed by a union when the node was found (as the runner does),
 * and the oracle unites the two terms. */
static void random_run(unsigned seed, bool immediate, bool into) {
  srand(seed);
  eg_egraph *g = toy_graph(immediate);
  enum { N = 160 };
  term t[N];
  int nt = 0;
  int par[N];
  for (int step = 0; step < 400; step++) {
    int r = rand() % 10;
    if (nt < N && (r < 6 || nt < 4)) {
      term x = {0};
      int k = nt ? rand() % 3 : 0;
      if (k == 0) {
        char leaf = (char)('a' + rand() % 6);
        x.op = TOY_LEAF;
        x.attr = eg_attr_intern(g, &leaf, 1);
      } else {
        x.op = k == 1 ? TOY_F : TOY_G;
        x.n = k;
        for (int i = 0; i < k; i++) x.kids[i] = rand() % nt;
      }
      eg_id kids[2];
      for (int i = 0; i < x.n; i++) kids[i] = t[x.kids[i]].id;
      int with = into && nt && rand() % 3 == 0 ? rand() % nt : -1;
      par[nt] = nt;
      if (with >= 0) {
        bool added;
        x.id = eg_add_into(g, x.op, x.attr, kids, (uint32_t)x.n, t[with].id, &added);
        if (!added) eg_union(g, t[with].id, x.id);
        par[nt] = ofind(par, with);
      } else {
        x.id = eg_add(g, x.op, x.attr, kids, (uint32_t)x.n);
      }
      t[nt] = x;
      nt++;
    } else if (nt > 1) {
      int a = rand() % nt, b = rand() % nt;
      eg_union(g, t[a].id, t[b].id);
      par[ofind(par, a)] = ofind(par, b);
      if (rand() % 4 == 0) eg_rebuild(g);
    }
  }
  eg_rebuild(g);
  /* oracle: close the relation under congruence by fixpoint */
  for (bool ch = true; ch;) {
    ch = false;
    for (int i = 0; i < nt; i++)
      for (int j = i + 1; j < nt; j++) {
        if (ofind(par, i) == ofind(par, j)) continue;
        if (t[i].op != t[j].op || t[i].attr != t[j].attr || t[i].n != t[j].n) continue;
        bool same = true;
        for (int k = 0; k < t[i].n; k++)
          same = same && ofind(par, t[i].kids[k]) == ofind(par, t[j].kids[k]);
        if (same) {
          par[ofind(par, i)] = ofind(par, j);
          ch = true;
        }
      }
  }
  for (int i = 0; i < nt; i++)
    for (int j = 0; j < nt; j++)
      cr_assert_eq(ofind(par, i) == ofind(par, j), eg_find(g, t[i].id) == eg_find(g, t[j].id),
                   "seed %u: terms %d and %d", seed, i, j);
  char err[256];
  cr_assert(eg_check(g, err, sizeof err), "%s", err);
  eg_free(g);
}

Test(egraph_core, random_adds_unions_match_oracle) {
  for (unsigned s = 1; s <= 40; s++) random_run(s, false, false);
}

Test(egraph_core, immediate_rebuild_matches_oracle) {
  for (unsigned s = 1; s <= 20; s++) random_run(s, true, false);
}

Test(egraph_core, adds_into_classes_match_oracle) {
  for (unsigned s = 1; s <= 40; s++) random_run(s, false, true);
  for (unsigned s = 1; s <= 20; s++) random_run(s, true, true);
}

/* Rebuild sorts a large class by a 64-bit prefix of the node order (16
 * bits of attribute id): ids past 0xFFFF share one prefix and must still
 * come out in eg_node_cmp's order (eg_check verifies it). */
Test(egraph_core, classes_sort_past_the_sort_key_bits) {
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .check = true});
  char err[128], tok[16];
  enum { NLEAF = 65600 };
  eg_id last[100];
  for (unsigned i = 0; i < NLEAF; i++) {
    snprintf(tok, sizeof tok, "%u", i);
    eg_id id = eg_add_term(g, tok, err, sizeof err);
    cr_assert_neq(id, EG_NONE, "%s", err);
    if (i >= NLEAF - 100) last[i - (NLEAF - 100)] = id;
  }
  /* one class of the last 100 leaves (attribute ids either side of
   * 0xFFFF), joined in a scrambled order */
  for (unsigned i = 1; i < 100; i++) eg_union(g, last[(i * 37) % 100], last[(i * 37 + 37) % 100]);
  eg_rebuild(g);
  uint32_t n;
  const uint32_t *ns = eg_class_nodes(g, eg_find(g, last[0]), &n);
  cr_assert_eq(n, 100);
  for (uint32_t i = 1; i < n; i++) cr_assert_lt(eg_get_node(g, ns[i - 1])->attr, eg_get_node(g, ns[i])->attr);
  cr_assert_gt(eg_get_node(g, ns[n - 1])->attr, 0xFFFFu);
  eg_free(g);
}

/* ---- analyses: refusal hook ------------------------------------------------ */

typedef struct tag { uint8_t t; } tag;
static void tag_make(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n,
                     void *out, void *ctx) {
  (void)ctx;
  tag *d = out;
  if (op == TOY_LEAF) {
    size_t len;
    d->t = eg_attr_bytes(g, attr, &len)[0] >= 'n'; /* "dtype": two kinds of leaves */
  } else {
    d->t = n ? ((const tag *)eg_data(g, kids[0]))->t : 0;
  }
}
static unsigned tag_merge(eg_egraph *g, void *to, const void *from, void *ctx) {
  (void)g; (void)to; (void)from; (void)ctx;
  return 0;
}
static bool tag_refuse(eg_egraph *g, const void *a, const void *b, char *why, size_t n, void *ctx) {
  (void)g; (void)ctx;
  if (((const tag *)a)->t == ((const tag *)b)->t) return false;
  snprintf(why, n, "dtype %d vs %d", ((const tag *)a)->t, ((const tag *)b)->t);
  return true;
}

Test(egraph_core, refused_union_is_reported_with_rule) {
  eg_analysis an = {sizeof(tag), tag_make, tag_merge, NULL, tag_refuse, NULL};
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .analysis = &an, .check = true});
  char err[128];
  eg_id a = eg_add_term(g, "a", err, sizeof err), b = eg_add_term(g, "b", err, sizeof err);
  eg_id z = eg_add_term(g, "z", err, sizeof err);
  cr_assert(eg_union(g, a, b));
  eg_reason why = {EG_WHY_RULE, "bad-rule", false};
  cr_assert_not(eg_union_why(g, a, z, &why));
  eg_rebuild(g);
  cr_assert_neq(eg_find(g, a), eg_find(g, z));
  cr_assert_eq(eg_nrefused(g), 1);
  cr_assert_str_eq(eg_refusals(g), "union refused (rule bad-rule): dtype 0 vs 1\n");
  eg_free(g);
}

/* A node added into a class whose data refuses it gets a class of its own
 * (not added), so that the union that follows is refused and reported as
 * eg_union's would be; an accepted one joins the class. */
Test(egraph_core, add_into_a_refusing_class_keeps_the_node_apart) {
  eg_analysis an = {sizeof(tag), tag_make, tag_merge, NULL, tag_refuse, NULL};
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .analysis = &an, .check = true});
  char err[128];
  eg_id a = eg_add_term(g, "a", err, sizeof err), z = eg_add_term(g, "z", err, sizeof err);
  bool added;
  eg_id fz = eg_add_into(g, TOY_F, 0, &z, 1, a, &added); /* (f z): z's dtype */
  cr_assert_not(added);
  cr_assert_neq(eg_find(g, fz), eg_find(g, a));
  eg_reason why = {EG_WHY_RULE, "bad-rule", false};
  cr_assert_not(eg_union_why(g, a, fz, &why));
  eg_id fa = eg_add_into(g, TOY_F, 0, &a, 1, a, &added); /* (f a): a's dtype */
  cr_assert(added);
  cr_assert_eq(fa, eg_find(g, a));
  eg_rebuild(g);
  cr_assert_eq(eg_lookup(g, TOY_F, 0, &a, 1), eg_find(g, a));
  cr_assert_neq(eg_lookup(g, TOY_F, 0, &z, 1), eg_find(g, a));
  cr_assert_eq(eg_nrefused(g), 1);
  cr_assert_str_eq(eg_refusals(g), "union refused (rule bad-rule): dtype 0 vs 1\n");
  cr_assert(eg_check(g, err, sizeof err), "%s", err);
  eg_free(g);
}

/* ---- memory ---------------------------------------------------------------- */

static size_t mem_sum(const eg_mem *m) {
  return m->fixed + m->nodes + m->kids + m->memo + m->ids + m->lists + m->index + m->work +
         m->attrs + m->analysis + m->explain;
}

/* eg_mem_usage accounts for every byte of eg_bytes; capacities never shrink,
 * so the peak is the current value; and a saturated math e-graph of tens of
 * thousands of e-nodes stays under the target of 100 bytes per stored e-node
 * (analysis values apart). */
Test(egraph_core, memory_breakdown_adds_up) {
  eg_math m;
  eg_math_init(&m);
  eg_rules *r = eg_rules_new(&m.lang, m.conds);
  cr_assert_eq(eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", NULL), 0);
  for (int explain = 0; explain < 2; explain++) {
    eg_egraph *g = eg_new(eg_math_params(&m, explain));
    char err[256];
    eg_add_term(g, "(i (* (cos x) x) x)", err, sizeof err);
    eg_phase ph = {NULL, {explain ? 6 : 14, 100000, 20, 0}};
    eg_run_params rp = eg_run_defaults();
    rp.match_per_node = 0;
    eg_report_free(eg_run(g, r, &ph, 1, rp));
    cr_assert(eg_check(g, err, sizeof err), "%s", err);
    eg_mem mem;
    eg_mem_usage(g, &mem);
    cr_assert_eq(mem_sum(&mem), mem.total);
    cr_assert_eq(mem.total, eg_bytes(g));
    cr_assert_eq(eg_peak_bytes(g), eg_bytes(g));
    cr_assert_leq(mem.lists_free, mem.lists);
    cr_assert_eq(mem.analysis, eg_analysis_bytes(g));
    cr_assert_eq(mem.explain > 0, explain);
    size_t stored = eg_nodes_stored(g);
    cr_assert_geq(stored, eg_nenodes(g));
    if (!explain) {
      cr_assert_gt(stored, 10000);
      double core = (double)(eg_peak_bytes(g) - eg_analysis_bytes(g)) / (double)stored;
      cr_assert_leq(core, 100.0, "%.1f core bytes per stored e-node", core);
    }
    eg_free(g);
  }
  eg_rules_free(r);
  eg_math_fini(&m);
}

/* Classes with equal analysis data share one stored value. */
Test(egraph_core, analysis_values_are_shared) {
  eg_math m;
  eg_math_init(&m);
  eg_egraph *g = eg_new(eg_math_params(&m, false));
  char err[128];
  eg_id x = eg_add_term(g, "(sin x)", err, sizeof err), y = eg_add_term(g, "(cos y)", err, sizeof err);
  eg_id two = eg_add_term(g, "2", err, sizeof err), sum = eg_add_term(g, "(+ 1 1)", err, sizeof err);
  eg_rebuild(g);
  cr_assert_eq(eg_data(g, x), eg_data(g, y)); /* both unknown */
  cr_assert_eq(eg_find(g, two), eg_find(g, sum)); /* folded and merged */
  double v;
  cr_assert(eg_math_const(g, sum, &v));
  cr_assert_eq(v, 2);
  /* values: none, 1, 2 */
  cr_assert_eq(eg_analysis_values(g), 3);
  eg_free(g);
  eg_math_fini(&m);
}

/* Many merges free list blocks of every size, which the pool's compaction
 * reclaims; eg_check (on after every rebuild here) walks the pool, and the
 * classes must still be right: explicit unions by a union-find oracle and
 * f(a) = f(b) exactly when a = b (congruence). */
Test(egraph_core, list_pool_compaction_keeps_classes) {
  eg_egraph *g = toy_graph(false);
  enum { N = 3000 };
  eg_id *leaf = tl_xmalloc(N * sizeof *leaf), *f = tl_xmalloc(N * sizeof *f);
  int *par = tl_xmalloc(N * sizeof *par);
  cr_assert(leaf && f && par);
  for (int i = 0; i < N; i++) {
    leaf[i] = eg_add(g, TOY_LEAF, eg_attr_intern(g, &i, sizeof i), NULL, 0);
    f[i] = eg_add(g, TOY_F, EG_ATTR_NONE, &leaf[i], 1);
    par[i] = i;
  }
  for (int i = 1; i < N; i++) {
    eg_id k[2] = {f[i - 1], leaf[i]};
    eg_add(g, TOY_G, EG_ATTR_NONE, k, 2);
  }
  srand(7);
  for (int round = 0; round < 12; round++) {
    for (int k = 0; k < N / 8; k++) {
      int a = rand() % N, b = rand() % N;
      eg_union(g, leaf[a], leaf[b]);
      par[ofind(par, a)] = ofind(par, b);
    }
    eg_rebuild(g);
  }
  eg_mem mem;
  eg_mem_usage(g, &mem);
  cr_assert_gt(mem.compactions, 0);
  cr_assert_eq(mem_sum(&mem), mem.total);
  for (int i = 0; i < N; i++) {
    int j = rand() % N;
    bool same = ofind(par, i) == ofind(par, j);
    cr_assert_eq(eg_find(g, leaf[i]) == eg_find(g, leaf[j]), same);
    cr_assert_eq(eg_find(g, f[i]) == eg_find(g, f[j]), same);
  }
  char err[256];
  cr_assert(eg_check(g, err, sizeof err), "%s", err);
  tl_free(leaf);
  tl_free(f);
  tl_free(par);
  eg_free(g);
}

/* ---- two e-graphs on two threads ------------------------------------------ */

static void *saturate(void *arg) {
  const char *expr = arg;
  eg_math m;
  eg_math_init(&m);
  eg_rules *r = eg_rules_new(&m.lang, m.conds);
  if (eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", NULL)) return NULL;
  eg_egraph *g = eg_new(eg_math_params(&m, false));
  char err[128];
  eg_id root = eg_add_term(g, expr, err, sizeof err);
  eg_phase ph = {NULL, {12, 20000, 10, 0}};
  eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
  char *best = eg_extract_best(g, root, NULL);
  eg_free(g);
  eg_rules_free(r);
  eg_math_fini(&m);
  return best;
}

Test(egraph_core, two_egraphs_two_threads) {
  pthread_t t1, t2;
  pthread_create(&t1, NULL, saturate, "(+ x (+ x (+ x x)))");
  pthread_create(&t2, NULL, saturate, "(d x (+ 1 (* 2 x)))");
  void *r1, *r2;
  pthread_join(t1, &r1);
  pthread_join(t2, &r2);
  cr_assert_str_eq(r1, "(* x 4)");
  cr_assert_str_eq(r2, "2");
  tl_free(r1);
  tl_free(r2);
}
