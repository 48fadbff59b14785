/* test_core.c - hash-consing, union-find, rebuild invariants (against a
 * naive congruence-closure oracle), attributes, analyses, threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#include "egraph/egraph.h"
#include "egraph/extract.h"
#include "egraph/math.h"
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

static void random_run(unsigned seed, bool immediate) {
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
      x.id = eg_add(g, x.op, x.attr, kids, (uint32_t)x.n);
      t[nt] = x;
      par[nt] = nt;
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
  for (unsigned s = 1; s <= 40; s++) random_run(s, false);
}

Test(egraph_core, immediate_rebuild_matches_oracle) {
  for (unsigned s = 1; s <= 20; s++) random_run(s, true);
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
    d->t = n ? ((tag *)eg_data(g, kids[0]))->t : 0;
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
  free(r1);
  free(r2);
}
