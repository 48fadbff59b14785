/* runner.c - the saturation loop and its two schedulers.
 *
 * The semantics are egg 0.9.5's Runner and BackoffScheduler (see
 * shared/bench/egg-math-suite.md), so the math benchmark does the same work:
 *  - search all rules, then apply all, then one rebuild (egg section 3.2: the
 *    batch is what makes deferred rebuilding pay);
 *  - limits checked at the start, after each rule's search and apply, and
 *    after the iteration; a stop still finishes the iteration's rebuild;
 *    unlike egg (unless limits_between_rules), the node limit is also
 *    checked after every application (and the others every 64): one
 *    rule's matches can multiply the e-graph (a 14-term sum under associativity, commutativity and
 *    distributivity went from 33k to 536k memo entries in one iteration
 *    against a limit of 100k), so applying stops once the limit is
 *    passed, overshooting by what the last application added (its
 *    right-hand side's new nodes, and the leaves the analysis adds for
 *    them);
 *  - backoff: a rule finding more than limit << times_banned matches is
 *    skipped and banned for ban_length << times_banned iterations; when
 *    nothing applies but rules are banned, bans are fast-forwarded so the
 *    earliest ban ends now instead of stopping as "saturated". The limit is
 *    egg's match_limit, raised to match_per_node times the e-nodes the phase
 *    started with (runner.h says why); match_per_node 0 is egg's.
 * Match buffers are reused across iterations (the per-iteration scratch);
 * those over 64 KB are freed after the apply (release_matches). */
#include "egraph/runner.h"
#include "util/alloc.h"
#include "egraph/internal.h"
#include "egraph/pattern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *eg_stop_name(eg_stop s) {
  switch (s) {
  case EG_STOP_SATURATED: return "Saturated";
  case EG_STOP_ITERATIONS: return "IterLimit";
  case EG_STOP_NODES: return "NodeLimit";
  case EG_STOP_TIME: return "TimeLimit";
  case EG_STOP_MEMORY: return "MemoryLimit";
  default: return "None";
  }
}

eg_run_params eg_run_defaults(void) {
  return (eg_run_params){EG_SCHED_BACKOFF, 1000, 5, 2.0, false, 1, false, false, false};
}

typedef struct rstate {
  eg_prog *lhs, *rhs;
  eg_matches m;
  uint32_t banned_until, times_banned;
  /* whether this iteration searched and may apply every match it kept (not
   * once the search went over its limit) */
  bool now;
  bool active;
  /* one search's outcome, from whichever thread ran it */
  size_t got, thr;
  double ms;
  bool oom;
} rstate;

static size_t shl_sat(size_t x, uint32_t k) { return k >= 8 * sizeof x || x > (SIZE_MAX >> k) ? SIZE_MAX : x << k; }

/* The backoff scheduler's match limit for a phase that starts with n0 live
 * e-nodes, before the shift by times_banned (runner.h). */
static size_t match_base(eg_run_params p, size_t n0) {
  double scaled = p.match_per_node * (double)n0;
  if (!(scaled > (double)p.match_limit)) return p.match_limit;
  return scaled >= (double)SIZE_MAX ? SIZE_MAX : (size_t)scaled;
}

typedef struct run {
  eg_egraph *g;
  const eg_limits *lim;
  double start;
  uint32_t iters;
  double stop_value;
  size_t match_bytes; /* the match buffers now (counted by the memory limit) */
  size_t work;        /* units of work since the clock was last read */
} run;

/* Between rules the clock is read only once the work since the last reading
 * reaches CLOCK_WORK units: an e-node the search could visit, or a match
 * applied. A read costs 18-25 ns on the machines measured, as much as
 * searching a rule on a tiny e-graph: reading it after every rule's search
 * and apply was a tenth of egg's math rows of 20 e-nodes. A unit takes well
 * under a microsecond, so a time limit is seen at most a few milliseconds
 * late, and on an e-graph of CLOCK_WORK e-nodes or more every rule reads the
 * clock as before. The per-rule times accrue at the readings: on smaller
 * e-graphs a rule's time may include the few rules' before it. */
enum { CLOCK_WORK = 1 << 14 };
static bool clock_due(run *r, size_t units) {
  r->work += units;
  if (r->work < CLOCK_WORK) return false;
  r->work = 0;
  return true;
}

/* t: now_s() (the caller's last reading; a stale one checks every limit but
 * the time) */
static eg_stop check_at(run *r, double t) {
  double el = t - r->start;
  if (r->lim->seconds > 0 && el > r->lim->seconds) {
    r->stop_value = el;
    return EG_STOP_TIME;
  }
  size_t sz = eg_total_size(r->g);
  if (r->lim->nodes && sz > r->lim->nodes) {
    r->stop_value = (double)sz;
    return EG_STOP_NODES;
  }
  if (r->lim->iters && r->iters >= r->lim->iters) {
    r->stop_value = r->iters;
    return EG_STOP_ITERATIONS;
  }
  size_t b = eg_bytes(r->g) + r->match_bytes;
  if (r->lim->bytes && b > r->lim->bytes) {
    r->stop_value = (double)b;
    return EG_STOP_MEMORY;
  }
  return EG_STOP_NONE;
}

static eg_stop check(run *r) { return check_at(r, now_s()); }

bool eg_ruleset_in(const eg_rules *rules, int set, const char *sets) {
  if (!sets || !*sets) return true;
  const char *name = rules->rulesets[set];
  size_t n = strlen(name);
  for (const char *p = sets; *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ' ' && *e != ',') e++;
    if ((size_t)(e - p) == n && !memcmp(p, name, n)) return true;
    p = e;
  }
  return false;
}

static int check_sets(const eg_rules *rules, const char *sets, char *msg, size_t n) {
  if (!sets) return 0;
  for (const char *p = sets; *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ' ' && *e != ',') e++;
    if (e > p) {
      int found = 0;
      for (int i = 0; i < rules->nrulesets; i++)
        if (strlen(rules->rulesets[i]) == (size_t)(e - p) && !memcmp(rules->rulesets[i], p, (size_t)(e - p))) found = 1;
      if (!found) {
        snprintf(msg, n, "unknown ruleset '%.*s'", (int)(e - p), p);
        return -1;
      }
    }
    p = e;
  }
  return 0;
}

/* A large match buffer is freed once applied: all rules' matches of one
 * iteration are held together (search all, then apply all), and keeping each
 * rule's buffer at its largest size ever would stack the peaks of different
 * iterations. Small ones stay for reuse. (Keeping them while they held less
 * than the e-graph measured no faster, in alternating runs.) */
static void release_matches(run *r, rstate *s) {
  if (s->m.cap * sizeof *s->m.a <= 64 * 1024) return;
  r->match_bytes -= s->m.cap * sizeof *s->m.a;
  uint32_t w = s->m.width;
  eg_matches_free(&s->m);
  eg_matches_clear(&s->m, w);
}

/* BackoffScheduler::can_stop: true when no rule is banned; otherwise moves
 * every ban earlier so the first one ends at this iteration. */
static bool can_stop(rstate *st, int n, uint32_t it) {
  uint32_t min = UINT32_MAX;
  for (int i = 0; i < n; i++)
    if (st[i].active && st[i].banned_until > it && st[i].banned_until < min) min = st[i].banned_until;
  if (min == UINT32_MAX) return true;
  uint32_t delta = min - it;
  for (int i = 0; i < n; i++)
    if (st[i].active && st[i].banned_until > it) st[i].banned_until -= delta;
  return false;
}

/* ---- searching on several threads ----------------------------------------
 *
 * The search phase only reads the e-graph (rebuilt, its op index built by
 * eg_prog_prepare on this thread), and each rule has its own program scratch
 * and match buffer, so rules can be searched at once; the apply phase stays
 * on one thread, in rule order. Each rule's matches are found by the same
 * sequential walk whichever thread runs it, so the matches, the bans and
 * everything after are the same for any thread count. Workers start at the
 * first iteration big enough to share (thread start and wake-up cost tens of
 * microseconds, more than a small e-graph's whole search) and live until
 * eg_run returns. A worker has no allocation region: it grows match buffers
 * with tl_try_realloc, and this thread adopts them into its region after the
 * phase, and reports a failed allocation from here. */
enum { PAR_MIN_ENODES = 2048 };

typedef struct pool {
  pthread_t th[EG_MAX_SEARCH_THREADS];
  int nth;
  int state;           /* 0: not started, 1: workers running, -1: none could start */
  tl_cleanup *cleanup; /* stops the workers if the region unwinds */
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  unsigned gen, finished;
  bool quit;
  /* the job: search st[todo[k]] for k taken from next */
  const eg_egraph *g;
  rstate *st;
  const int *todo;
  int ntodo;
  atomic_int next;
} pool;

static void search_rules(pool *P, bool worker) {
  for (;;) {
    int k = atomic_fetch_add(&P->next, 1);
    if (k >= P->ntodo) return;
    rstate *s = &P->st[P->todo[k]];
    double t0 = now_s();
    s->got = eg_prog_search_prepared(P->g, s->lhs, s->thr, &s->m, worker, &s->oom);
    s->ms = (now_s() - t0) * 1e3;
  }
}

static void *worker_main(void *arg) {
  pool *P = arg;
  unsigned seen = 0;
  pthread_mutex_lock(&P->mu);
  for (;;) {
    while (P->gen == seen && !P->quit) pthread_cond_wait(&P->go, &P->mu);
    if (P->quit) break;
    seen = P->gen;
    pthread_mutex_unlock(&P->mu);
    search_rules(P, true);
    pthread_mutex_lock(&P->mu);
    if (++P->finished == (unsigned)P->nth) pthread_cond_signal(&P->done);
  }
  pthread_mutex_unlock(&P->mu);
  return NULL;
}

/* Starts up to n - 1 workers (fewer if threads cannot be made: the search
 * then runs with what there is); false when none started. */
static bool pool_start(pool *P, int n) {
  pthread_mutex_init(&P->mu, NULL);
  pthread_cond_init(&P->go, NULL);
  pthread_cond_init(&P->done, NULL);
  P->gen = P->finished = 0;
  P->quit = false;
  P->nth = 0;
  for (int i = 0; i + 1 < n && i < EG_MAX_SEARCH_THREADS; i++) {
    if (pthread_create(&P->th[i], NULL, worker_main, P)) break;
    P->nth++;
  }
  if (P->nth) return true;
  pthread_cond_destroy(&P->done);
  pthread_cond_destroy(&P->go);
  pthread_mutex_destroy(&P->mu);
  return false;
}

static void pool_stop(void *arg) {
  pool *P = arg;
  pthread_mutex_lock(&P->mu);
  P->quit = true;
  pthread_cond_broadcast(&P->go);
  pthread_mutex_unlock(&P->mu);
  for (int i = 0; i < P->nth; i++) pthread_join(P->th[i], NULL);
  pthread_cond_destroy(&P->done);
  pthread_cond_destroy(&P->go);
  pthread_mutex_destroy(&P->mu);
}

/* Searches st[todo[0..ntodo)] on this thread and the workers. */
static void pool_search(pool *P, const eg_egraph *g, rstate *st, const int *todo, int ntodo) {
  P->g = g;
  P->st = st;
  P->todo = todo;
  P->ntodo = ntodo;
  atomic_store(&P->next, 0);
  pthread_mutex_lock(&P->mu);
  P->finished = 0;
  P->gen++;
  pthread_cond_broadcast(&P->go);
  pthread_mutex_unlock(&P->mu);
  search_rules(P, false);
  pthread_mutex_lock(&P->mu);
  while (P->finished < (unsigned)P->nth) pthread_cond_wait(&P->done, &P->mu);
  pthread_mutex_unlock(&P->mu);
}

static void run_phase(eg_egraph *g, const eg_rules *rules, const eg_phase *ph, eg_run_params p, rstate *st,
                      eg_rule_stats *rs, eg_phase_report *out, size_t *match_bytes, pool *P, int *todo) {
  int n = rules->nrules;
  for (int i = 0; i < n; i++) {
    st[i].active = eg_ruleset_in(rules, rules->rules[i].ruleset, ph->rulesets);
    st[i].banned_until = st[i].times_banned = 0;
  }
  run R = {g, &ph->limits, now_s(), 0, 0, 0, 0};
  for (int i = 0; i < n; i++) R.match_bytes += st[i].m.cap * sizeof *st[i].m.a;
  uint32_t capit = 0;
  eg_rebuild(g);
  size_t base = match_base(p, eg_nenodes(g));
  eg_stop stop = EG_STOP_NONE;
  for (;;) {
    eg_iter_stats is = {0};
    size_t size0 = eg_total_size(g), classes0 = eg_nclasses(g);
    uint32_t it = R.iters;
    (void)eg_next_epoch(g); /* nodes stamped from here on are this iteration's (eg_prog_applied) */
    double t0 = now_s(), tp = t0;
    stop = check_at(&R, t0);
    /* which rules search this iteration, and their match limits */
    int ntodo = 0;
    for (int i = 0; i < n && !stop; i++) {
      rstate *s = &st[i];
      eg_matches_clear(&s->m, s->m.width);
      s->now = false;
      if (!s->active) continue;
      if (p.sched == EG_SCHED_BACKOFF && it < s->banned_until) {
        is.banned++;
        continue;
      }
      s->thr = p.sched == EG_SCHED_BACKOFF ? shl_sat(base, s->times_banned) : SIZE_MAX;
      /* A match this rule found and applied in an earlier iteration (the
       * last whose matches it applied all, eg_prog_applied), found again
       * through nodes not stamped since, is the same match: applying it
       * again adds nothing that the rebuild would not merge away (its
       * right-hand side is in the hash-cons, in the left-hand side's class;
       * a child class merged since gives at most a duplicate node, congruent
       * to the old one). It is counted (the backoff limits see it) and not
       * kept. Searches in between that went over the limit applied nothing
       * and leave that iteration the anchor, so a rule the backoff
       * scheduler bans and lets go skips what it applied before the ban.
       * Conditions read analysis data, which changes without a node being
       * stamped, and explanations record every application: those rules
       * apply every match. */
      const eg_rule *ru = &rules->rules[i];
      eg_prog_skip_applied(s->lhs, !p.apply_repeats && !ru->nconds && !g->ex);
      s->now = true;
      todo[ntodo++] = i;
    }
    bool par = !stop && p.search_threads > 1 && P->state >= 0 && ntodo > 1 && eg_nenodes(g) >= PAR_MIN_ENODES;
    if (par && P->state == 0) {
      P->state = pool_start(P, (int)p.search_threads) ? 1 : -1;
      if (P->state == 1) P->cleanup->arg = P;
    }
    par = par && P->state == 1;
    if (par) {
      /* prepare every program here (a pattern with an absent ground part
       * finds nothing), then search the rest at once */
      int *work = todo + n, nw = 0;
      for (int k = 0; k < ntodo; k++) {
        rstate *s = &st[todo[k]];
        s->got = 0, s->ms = 0, s->oom = false;
        if (eg_prog_prepare(g, s->lhs)) work[nw++] = todo[k];
      }
      pool_search(P, g, st, work, nw);
      size_t failed = 0;
      for (int k = 0; k < nw; k++) {
        rstate *s = &st[work[k]];
        tl_adopt(s->m.a);
        if (s->oom) failed = (s->m.cap ? 2 * s->m.cap : 1024) * sizeof *s->m.a;
      }
      if (failed) tl_oom(failed); /* as the search on this thread would have */
      R.match_bytes = 0;          /* the buffers as the searches left them */
      for (int i = 0; i < n; i++) R.match_bytes += st[i].m.cap * sizeof *st[i].m.a;
    }
    int last = -1; /* the last rule searched or applied here: the time since the last reading is its */
    for (int k = 0; k < ntodo && !stop; k++) {
      int i = todo[k];
      rstate *s = &st[i];
      size_t got = s->got, cap0 = s->m.cap;
      if (!par) {
        got = eg_prog_search(g, s->lhs, s->thr, &s->m);
        R.match_bytes += (s->m.cap - cap0) * sizeof *s->m.a;
      }
      rs[i].searches++;
      rs[i].matches += got;
      if (got > s->thr) {
        s->now = false;
        size_t len = shl_sat(p.ban_length, s->times_banned);
        s->banned_until = len >= UINT32_MAX - it ? UINT32_MAX : it + (uint32_t)len;
        s->times_banned++;
        rs[i].times_banned++;
        eg_matches_clear(&s->m, s->m.width);
      } else {
        rs[i].repeats += got - s->m.n;
      }
      if (par) {
        rs[i].search_ms += s->ms;
        continue;
      }
      last = i;
      if (clock_due(&R, eg_nenodes(g) + got)) {
        double t = now_s();
        rs[i].search_ms += (t - tp) * 1e3;
        tp = t;
      }
      stop = check_at(&R, tp);
    }
    if (par && !stop) stop = check(&R);
    double t1 = now_s();
    if (last >= 0) rs[last].search_ms += (t1 - tp) * 1e3;
    tp = t1;
    last = -1;
    if (R.match_bytes > *match_bytes) *match_bytes = R.match_bytes;
    for (int i = 0; i < n && !stop; i++) {
      rstate *s = &st[i];
      const eg_rule *ru = &rules->rules[i];
      /* a search whose kept matches are all applied below (none refused,
       * the run not stopped) becomes the rule's anchor; rules with
       * conditions never skip (and may not apply every match) */
      if (!s->m.n) {
        if (s->now && !ru->nconds) eg_prog_applied(s->lhs);
        continue;
      }
      eg_reason why = {EG_WHY_RULE, ru->name, ru->backward};
      size_t refused0 = eg_nrefused(g);
      /* compiled when first needed: on small e-graphs compiling every rule's
       * two programs was a tenth of the run, and half the rules of egg's
       * math suite never match there */
      if (!s->rhs) s->rhs = eg_prog_new(g, &ru->rhs, ru->vars);
      /* The newest classes' matches first. A right-hand side is looked up
       * under its children's current roots, and a union made earlier in
       * this phase leaves the absorbed class's parents keyed under its old
       * id until the rebuild: a lookup through the new root misses and adds
       * a duplicate, which the rebuild then merges as congruent. Which
       * lookups miss depends on the order of the unions. Measured on egg's
       * math suite (Simple scheduler, node limit 100000): the golden-ratio
       * row's last iteration stores 282k nodes newest-first against 518k
       * in search order (ascending class ids) for the same e-graph after
       * the rebuild, and egg (its classes in hash order) 356k; every row
       * ends with egg's e-nodes, e-classes and iterations either way. */
      for (size_t j = 0; j < s->m.n && !stop; j++) {
        size_t k = p.apply_in_search_order ? j : s->m.n - 1 - j;
        const uint32_t *rec = eg_match_at(&s->m, k);
        if (ru->nconds && !eg_rule_conds_hold(g, rules, ru, rec + 1)) {
          rs[i].refused_conds++;
          continue;
        }
        eg_id from = rec[0];
        bool added;
        if (g->ex) from = eg_prog_instantiate(g, s->lhs, rec + 1, EG_NONE, &added);
        /* a new right-hand side's top node joins from's class directly */
        eg_id to = eg_prog_instantiate(g, s->rhs, rec + 1, p.top_node_own_class ? EG_NONE : from, &added);
        if (added || eg_union_why(g, from, to, &why)) {
          rs[i].applied++;
          is.applied++;
        }
        if (!p.limits_between_rules && ((R.lim->nodes && eg_total_size(g) > R.lim->nodes) || (j & 63) == 63))
          stop = check(&R);
      }
      /* a refused union may go through next time: the anchor stays */
      if (s->now && !stop && !ru->nconds && eg_nrefused(g) == refused0) eg_prog_applied(s->lhs);
      last = i;
      if (clock_due(&R, s->m.n)) {
        double t = now_s();
        rs[i].apply_ms += (t - tp) * 1e3;
        tp = t;
      }
      if (!stop) stop = check_at(&R, tp);
    }
    for (int i = 0; i < n; i++) release_matches(&R, &st[i]);
    double t2 = now_s();
    if (last >= 0) rs[last].apply_ms += (t2 - tp) * 1e3;
    size_t refused_r = eg_nrefused(g);
    eg_rebuild(g);
    /* a congruence the analysis refused leaves two congruent classes apart,
     * so a right-hand side found again may look up into the other one: no
     * search skips anything from before this (refusals are rare; an
     * analysis that refuses may accept later) */
    if (eg_nrefused(g) != refused_r)
      for (int i = 0; i < n; i++) eg_prog_forget(st[i].lhs);
    double t3 = now_s();
    is.search_ms = (t1 - t0) * 1e3;
    is.apply_ms = (t2 - t1) * 1e3;
    is.rebuild_ms = (t3 - t2) * 1e3;
    is.enodes = eg_nenodes(g);
    is.eclasses = eg_nclasses(g);
    is.memo = eg_total_size(g);
    is.bytes = eg_bytes(g);
    bool sat = is.applied == 0 && (p.sched != EG_SCHED_BACKOFF || can_stop(st, n, it)) && size0 == eg_total_size(g) &&
               classes0 == eg_nclasses(g);
    if (!stop && sat) stop = EG_STOP_SATURATED;
    if (out->niters == capit) {
      capit = capit ? capit * 2 : 16;
      out->iters = tl_xrealloc(out->iters, sizeof *out->iters * capit);
      EG_ASSERT(out->iters);
    }
    out->iters[out->niters++] = is;
    R.iters++;
    if (stop) break;
    stop = check(&R);
    if (stop) break;
  }
  out->stop = stop;
  out->stop_value = stop == EG_STOP_SATURATED ? R.iters : R.stop_value;
  out->ms = (now_s() - R.start) * 1e3;
}

eg_report *eg_run(eg_egraph *g, const eg_rules *rules, const eg_phase *phases, int nphases, eg_run_params p) {
  eg_report *rep = tl_xcalloc(1, sizeof *rep);
  EG_ASSERT(rep);
  int n = rules->nrules;
  rep->nrules = n;
  rep->rules = tl_xcalloc((size_t)(n ? n : 1), sizeof *rep->rules);
  rep->phases = tl_xcalloc((size_t)(nphases ? nphases : 1), sizeof *rep->phases);
  EG_ASSERT(rep->rules && rep->phases);
  for (int i = 0; i < nphases; i++)
    if (check_sets(rules, phases[i].rulesets, rep->msg, sizeof rep->msg)) {
      rep->error = 1;
      return rep;
    }
  if (!p.match_limit) p.match_limit = 1000;
  if (!(p.match_per_node >= 0)) p.match_per_node = 0; /* NaN or negative: egg's */
  if (!p.ban_length) p.ban_length = 5;
  rstate *st = tl_xcalloc((size_t)(n ? n : 1), sizeof *st);
  EG_ASSERT(st);
  for (int i = 0; i < n; i++) {
    st[i].lhs = eg_prog_new(g, &rules->rules[i].lhs, rules->rules[i].vars);
    eg_matches_clear(&st[i].m, rules->rules[i].vars->n);
  }
  /* todo: the rules searching in an iteration, then those with something
   * to search (two lists of n) */
  int *todo = tl_xmalloc(sizeof *todo * 2 * (size_t)(n ? n : 1));
  pool *P = tl_xcalloc(1, sizeof *P);
  P->cleanup = tl_cleanup_push(pool_stop); /* armed once workers start */
  for (int ph = 0; ph < nphases; ph++) {
    run_phase(g, rules, &phases[ph], p, st, rep->rules, &rep->phases[ph], &rep->match_bytes, P, todo);
    rep->nphases++;
  }
  if (P->state == 1) pool_stop(P);
  tl_cleanup_pop(P->cleanup);
  tl_free(P);
  tl_free(todo);
  for (int i = 0; i < n; i++) {
    eg_prog_free(st[i].lhs);
    eg_prog_free(st[i].rhs);
    eg_matches_free(&st[i].m);
  }
  tl_free(st);
  return rep;
}

void eg_report_free(eg_report *r) {
  if (!r) return;
  for (int i = 0; i < r->nphases; i++) tl_free(r->phases[i].iters);
  tl_free(r->phases);
  tl_free(r->rules);
  tl_free(r);
}

void eg_report_print(const eg_report *r, const eg_rules *rules, FILE *f) {
  if (r->error) {
    fprintf(f, "error: %s\n", r->msg);
    return;
  }
  for (int ph = 0; ph < r->nphases; ph++) {
    const eg_phase_report *P = &r->phases[ph];
    fprintf(f, "phase %d: stop %s(%.6g) after %u iterations, %.2f ms\n", ph, eg_stop_name(P->stop), P->stop_value,
            P->niters, P->ms);
    fprintf(f, "| iter | enodes | eclasses | memo | applied | banned | search_ms | apply_ms | rebuild_ms |\n"
               "|---|---|---|---|---|---|---|---|---|\n");
    for (uint32_t i = 0; i < P->niters; i++) {
      const eg_iter_stats *s = &P->iters[i];
      fprintf(f, "| %u | %zu | %zu | %zu | %zu | %zu | %.3f | %.3f | %.3f |\n", i, s->enodes, s->eclasses, s->memo,
              s->applied, s->banned, s->search_ms, s->apply_ms, s->rebuild_ms);
    }
  }
  fprintf(f, "| rule | searches | matches | repeats | applied | cond-refused | bans | search_ms | apply_ms |\n"
             "|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < r->nrules; i++) {
    const eg_rule_stats *s = &r->rules[i];
    if (!s->searches) continue;
    fprintf(f, "| %s%s | %zu | %zu | %zu | %zu | %zu | %u | %.3f | %.3f |\n", rules->rules[i].name,
            rules->rules[i].backward ? " (<=)" : "", s->searches, s->matches, s->repeats, s->applied, s->refused_conds,
            s->times_banned, s->search_ms, s->apply_ms);
  }
}
