/* machine.c - compiling patterns to matching programs, and running them.
 *
 * Why a program and not a recursive walk of the pattern (pattern.c keeps that
 * walk as the reference, eg_pattern_search_naive): the walk re-decides at
 * every node what kind of pattern node it is, keeps a worklist of pending
 * (pattern, class) pairs and a substitution map, and searches ground parts
 * like any other. The program fixes all of that at compile time: registers
 * hold the children of the node being tried, a repeated variable is one
 * compare, a ground sub-pattern is one compare against a class looked up
 * once per search in the hash-cons, and the only branching is the loop over
 * the nodes of one op inside a class (binary search into the class's nodes,
 * which rebuild keeps sorted by op). On the egg math suite the naive walk
 * (with its per-node allocation) is many times slower; the tests check that
 * both find exactly the same matches. */
#include "egraph/internal.h"
#include "util/alloc.h"
#include "egraph/pattern.h"

enum { I_BIND, I_CMP, I_LOOKUP, I_YIELD };
enum { A_FIXED, A_BIND, A_CMP }; /* attribute handling of a BIND */

typedef struct eg_insn {
  uint8_t k, amode;
  uint16_t op;
  uint32_t reg, out, n, attr; /* attr: fixed id, or the variable slot */
  /* a BIND with a fixed attribute whose first child must equal a register
   * bound earlier: that register + 1 (0: none) */
  uint32_t key;
} eg_insn;

struct eg_prog {
  const eg_pattern *p;
  const eg_vartab *v;
  eg_insn *code;
  uint32_t ncode, nregs;
  int root_kind; /* 0 variable, 1 ground, 2 node */
  uint32_t *var_reg;
  uint32_t *attr_ids; /* per pattern node: its fixed attribute, interned */
  uint32_t *ground;   /* pattern nodes looked up per search */
  uint32_t nground;
  eg_id *ground_cls, *ground_prev;
  uint32_t *regs, *aslot;
  eg_id *inst, *kbuf;
  /* instantiation: the non-variable nodes in order, and per child slot of
   * the pattern (p->kids) where its class comes from: a node's index, or
   * ~var for a variable's binding */
  uint32_t *steps, nsteps, *kref;
  /* eg_prog_applied / eg_prog_skip_applied: the epoch in which the last
   * prepare ran, the epoch of the last search whose matches were all
   * applied (0: none) with its ground classes in ground_prev, whether to
   * skip what that search found, and whether the ground classes now differ
   * from ground_prev (then nothing is skipped) */
  uint32_t searched, anchor;
  bool skipping, ground_moved;
};

/* A ground pattern node: no variables below it. */
static void mark_ground(const eg_pattern *p, uint32_t *gr) {
  for (uint32_t i = 0; i < p->n; i++) {
    const eg_pnode *pn = &p->nodes[i];
    gr[i] = pn->kind == EG_PAT_NODE && !pn->attr_var;
    for (uint32_t k = 0; k < pn->n && gr[i]; k++) gr[i] = gr[p->kids[pn->kids + k]];
  }
}

/* One allocation holds the program and all its arrays (and the compiler's
 * scratch): the runner compiles every rule's two patterns per run, and on
 * small e-graphs a dozen mallocs per pattern cost a fifth of the run. */
eg_prog *eg_prog_new(eg_egraph *g, const eg_pattern *p, const eg_vartab *v) {
  EG_ASSERT(p->n > 0);
  uint32_t nv = v->n ? v->n : 1, nk = 0, maxk = 1;
  for (uint32_t i = 0; i < p->n; i++) {
    nk += p->nodes[i].n;
    if (p->nodes[i].n > maxk) maxk = p->nodes[i].n;
  }
  /* at most one BIND per node plus one CMP/LOOKUP per child, plus YIELD;
   * registers: the root's plus one per child of a bound node */
  size_t ncode = 2 * (size_t)p->n + 1, words = 2 * (size_t)nv + 5 * (size_t)p->n + (1 + (size_t)nk) + maxk + p->n +
                                               (size_t)nk + 2 * (size_t)p->n + nv + p->n;
  char *blk = tl_xcalloc(1, sizeof(eg_prog) + ncode * sizeof(eg_insn) + words * sizeof(uint32_t));
  EG_ASSERT(blk);
  eg_prog *pr = (eg_prog *)blk;
  pr->code = (eg_insn *)(blk + sizeof *pr);
  uint32_t *w = (uint32_t *)(pr->code + ncode);
  pr->var_reg = w, w += nv;
  pr->aslot = w, w += nv;
  pr->attr_ids = w, w += p->n;
  pr->ground = w, w += p->n;
  pr->ground_cls = w, w += p->n;
  pr->ground_prev = w, w += p->n;
  pr->inst = w, w += p->n;
  pr->regs = w, w += 1 + nk;
  pr->kbuf = w, w += maxk;
  pr->steps = w, w += p->n;
  pr->kref = w, w += nk;
  uint32_t *stack = w;
  w += 2 * p->n;
  uint32_t *seen = w, *gr = w + nv; /* scratch, as words: zeroed by calloc */
  pr->p = p;
  pr->v = v;
  EG_ASSERT(p->nkids == nk);
  for (uint32_t i = 0; i < p->n; i++) {
    const eg_pnode *pn = &p->nodes[i];
    if (pn->kind == EG_PAT_VAR) continue;
    pr->steps[pr->nsteps++] = i;
    for (uint32_t k = 0; k < pn->n; k++) {
      uint32_t c = p->kids[pn->kids + k];
      pr->kref[pn->kids + k] = p->nodes[c].kind == EG_PAT_VAR ? ~p->nodes[c].var : c;
    }
  }
  for (uint32_t i = 0; i < v->n; i++) pr->var_reg[i] = EG_NONE;
  for (uint32_t i = 0; i < p->n; i++)
    if (p->nodes[i].kind == EG_PAT_NODE && !p->nodes[i].attr_var)
      pr->attr_ids[i] = eg_attr_intern(g, p->blob + p->nodes[i].attr_off, p->nodes[i].attr_len);
  mark_ground(p, gr);
  uint32_t root = p->n - 1, ns = 0;
  pr->nregs = 1;
  if (p->nodes[root].kind == EG_PAT_VAR) {
    pr->root_kind = 0;
    pr->var_reg[p->nodes[root].var] = 0;
  } else if (gr[root]) {
    pr->root_kind = 1;
    pr->ground[pr->nground++] = root;
  } else {
    pr->root_kind = 2;
    stack[ns++] = root;
    stack[ns++] = 0;
  }
  while (ns) {
    uint32_t reg = stack[--ns], pi = stack[--ns];
    const eg_pnode *pn = &p->nodes[pi];
    eg_insn in = {I_BIND, A_FIXED, pn->op, reg, pr->nregs, pn->n, pr->attr_ids[pi], 0};
    if (pn->attr_var) {
      in.amode = seen[pn->var] ? A_CMP : A_BIND;
      in.attr = pn->var;
      seen[pn->var] = 1;
    }
    pr->code[pr->ncode++] = in;
    pr->nregs += pn->n;
    /* checks on the children first, so a failing compare prunes before any
     * deeper BIND branches */
    for (uint32_t k = 0; k < pn->n; k++) {
      uint32_t c = p->kids[pn->kids + k], r = in.out + k;
      const eg_pnode *cn = &p->nodes[c];
      if (cn->kind == EG_PAT_VAR) {
        if (pr->var_reg[cn->var] == EG_NONE)
          pr->var_reg[cn->var] = r;
        else if (k == 0 && in.amode == A_FIXED)
          /* the class's nodes are sorted by (op, attr, n, children): those
           * with this first child are a range found by binary search (a
           * join such as factor's (+ (* a b) (* a c)) tried every pair) */
          pr->code[pr->ncode - 1].key = pr->var_reg[cn->var] + 1;
        else
          pr->code[pr->ncode++] = (eg_insn){I_CMP, 0, 0, r, pr->var_reg[cn->var], 0, 0, 0};
      } else if (gr[c]) {
        pr->code[pr->ncode++] = (eg_insn){I_LOOKUP, 0, 0, r, pr->nground, 0, 0, 0};
        pr->ground[pr->nground++] = c;
      }
    }
    for (uint32_t k = pn->n; k-- > 0;) {
      uint32_t c = p->kids[pn->kids + k];
      if (p->nodes[c].kind == EG_PAT_NODE && !gr[c]) {
        stack[ns++] = c;
        stack[ns++] = in.out + k;
      }
    }
  }
  pr->code[pr->ncode++] = (eg_insn){I_YIELD, 0, 0, 0, 0, 0, 0, 0};
  EG_ASSERT(pr->ncode <= ncode && pr->nregs <= 1 + nk);
  return pr;
}

void eg_prog_free(eg_prog *pr) { tl_free(pr); }

typedef struct mach {
  const eg_egraph *g;
  const eg_prog *pr;
  uint32_t *regs, *aslot;
  eg_matches *out;
  size_t found, limit;
  uint32_t skip; /* keep matches whose newest node was stamped in epoch skip or later (0: all) */
  bool done, try_alloc, oom;
} mach;

/* A match, through nodes last stamped in epoch stamp: counted, and kept
 * unless the runner asked to skip it (stamped before the anchor search,
 * which found the same match, applied then: eg_prog_skip_applied). */
static void yield(mach *m, uint32_t stamp) {
  if (stamp < m->skip) {
    if (++m->found > m->limit) m->done = true;
    return;
  }
  eg_matches *o = m->out;
  size_t w = 1 + (size_t)o->width;
  if ((o->n + 1) * w > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 1024;
    while ((o->n + 1) * w > cap) cap *= 2;
    if (m->try_alloc) {
      uint32_t *a = tl_try_realloc(o->a, cap * sizeof *a);
      if (!a) {
        m->oom = m->done = true;
        return;
      }
      o->a = a;
    } else {
      o->a = tl_xrealloc(o->a, cap * sizeof *o->a);
    }
    o->cap = cap;
  }
  uint32_t *rec = o->a + o->n * w;
  rec[0] = m->regs[0];
  const eg_prog *pr = m->pr;
  for (uint32_t v = 0; v < pr->v->n; v++) rec[1 + v] = pr->v->is_attr[v] ? m->aslot[v] : m->regs[pr->var_reg[v]];
  o->n++;
  if (++m->found > m->limit) m->done = true;
}

/* Orders node nd against the form (in's op, attr and arity; first child k0)
 * as eg_node_cmp orders nodes: negative below, 0 equal, positive above. */
static inline int key_cmp(const eg_node *nd, const eg_insn *in, uint32_t k0) {
  if (nd->op != in->op) return nd->op < in->op ? -1 : 1;
  if (nd->attr != in->attr) return nd->attr < in->attr ? -1 : 1;
  if (nd->n != in->n) return nd->n < in->n ? -1 : 1;
  const uint32_t k = ((const uint32_t *)(const void *)(nd + 1))[0];
  return k < k0 ? -1 : k > k0;
}

/* [*lo, *hi): the nodes of a sorted class list that have in's op, attr and
 * arity and first child k0. */
static void key_range(const eg_egraph *g, const uint32_t *ns, uint32_t nn, const eg_insn *in, uint32_t k0, uint32_t *lo,
                      uint32_t *hi) {
  uint32_t a = 0, b = nn;
  while (a < b) {
    uint32_t mid = (a + b) / 2;
    if (key_cmp(eg_nd_(g, ns[mid]), in, k0) < 0)
      a = mid + 1;
    else
      b = mid;
  }
  uint32_t e = a;
  while (e < nn && key_cmp(eg_nd_(g, ns[e]), in, k0) == 0) e++;
  *lo = a;
  *hi = e;
}

/* stamp: the newest stamp among the nodes bound so far */
static void run(mach *m, uint32_t pc, uint32_t stamp) {
  const eg_insn *code = m->pr->code;
  uint32_t *regs = m->regs;
  for (;;) {
    const eg_insn *in = &code[pc];
    switch (in->k) {
    case I_CMP:
      if (regs[in->reg] != regs[in->out]) return;
      pc++;
      continue;
    case I_LOOKUP:
      if (regs[in->reg] != m->pr->ground_cls[in->out]) return;
      pc++;
      continue;
    case I_YIELD: yield(m, stamp); return;
    default: break;
    }
    /* I_BIND: the nodes of op in the class are contiguous (sorted by op) */
    const uint32_t nn = eg_cls_nn(m->g, regs[in->reg]);
    const uint32_t *ns = eg_cls_nodes(m->g, regs[in->reg]);
    uint32_t lo = 0, hi = nn;
    if (in->key) {
      /* only nodes of this op, attribute, arity and first child: the
       * checks below pass for all of them */
      key_range(m->g, ns, nn, in, regs[in->key - 1], &lo, &hi);
    } else if (hi > 8) {
      while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (eg_nd_(m->g, ns[mid])->op < in->op)
          lo = mid + 1;
        else
          hi = mid;
      }
      hi = nn;
    }
    for (uint32_t i = lo; i < hi; i++) {
      const eg_node *nd = eg_nd_(m->g, ns[i]);
      if (nd->op != in->op) {
        if (nd->op > in->op) break;
        continue;
      }
      if (nd->n != in->n) continue;
      if (in->amode == A_FIXED) {
        if (nd->attr != in->attr) continue;
      } else if (in->amode == A_BIND) {
        m->aslot[in->attr] = nd->attr;
      } else if (m->aslot[in->attr] != nd->attr) {
        continue;
      }
      const uint32_t *k = eg_kids_(m->g, nd);
      for (uint32_t j = 0; j < in->n; j++) regs[in->out + j] = k[j];
      uint32_t ns_ = m->g->nstamp[ns[i] / EG_NODE_WORDS];
      run(m, pc + 1, ns_ > stamp ? ns_ : stamp);
      if (m->done) return;
    }
    return;
  }
}

/* Class of the ground pattern node gi (looked up, never added). */
static eg_id lookup_ground(eg_egraph *g, eg_prog *pr, uint32_t pi) {
  const eg_pattern *p = pr->p;
  const eg_pnode *pn = &p->nodes[pi];
  eg_id kb[8], *kids = pn->n <= 8 ? kb : tl_xmalloc(sizeof *kids * pn->n);
  EG_ASSERT(kids);
  eg_id r = EG_NONE;
  uint32_t k = 0;
  for (; k < pn->n; k++) {
    kids[k] = lookup_ground(g, pr, p->kids[pn->kids + k]);
    if (kids[k] == EG_NONE) break;
  }
  if (k == pn->n) r = eg_lookup(g, pn->op, pr->attr_ids[pi], kids, pn->n);
  if (kids != kb) tl_free(kids);
  return r;
}

bool eg_prog_prepare(eg_egraph *g, eg_prog *pr) {
  if (!eg_is_clean(g)) eg_rebuild(g);
  pr->searched = g->epoch;
  pr->ground_moved = false;
  for (uint32_t i = 0; i < pr->nground; i++) {
    pr->ground_cls[i] = lookup_ground(g, pr, pr->ground[i]);
    if (pr->ground_cls[i] != pr->ground_prev[i]) pr->ground_moved = true;
    if (pr->ground_cls[i] == EG_NONE) { /* can never match; eg_prog_applied copies all of them */
      for (uint32_t j = i + 1; j < pr->nground; j++) pr->ground_cls[j] = EG_NONE;
      return false;
    }
  }
  uint32_t nc;
  if (pr->root_kind != 1) /* builds the op index now, not on a searching thread */
    (void)eg_classes_with_op(g, pr->root_kind == 0 ? -1 : pr->p->nodes[pr->p->n - 1].op, &nc);
  /* A node the pattern binds can only be a node of its op: with none of
   * that op in the e-graph the search would visit every class of the
   * root's op for nothing. (The tensor rules' chain of 10^5 nodes: 59
   * rules that never matched took 120 of its 609 ms of search.) After the
   * ground parts, so that eg_prog_applied copies this search's classes. */
  for (uint32_t i = 0; i < pr->ncode; i++)
    if (pr->code[i].k == I_BIND) {
      (void)eg_classes_with_op(g, pr->code[i].op, &nc);
      if (!nc) return false;
    }
  return true;
}

/* out holds records of this program's width (a fresh buffer takes it) */
static void fit_width(const eg_prog *pr, eg_matches *out) {
  if (out->width != pr->v->n) {
    EG_ASSERT(out->n == 0);
    out->width = pr->v->n;
  }
}

size_t eg_prog_search_prepared(const eg_egraph *g, eg_prog *pr, size_t limit, eg_matches *out, bool try_alloc,
                               bool *oom) {
  fit_width(pr, out);
  /* skipping needs everything a match depends on read from bound nodes:
   * not a bare variable or ground root, nor ground parts whose classes
   * moved (a node's child can equal the new class without a stamp) */
  uint32_t skip = pr->skipping && pr->anchor && pr->root_kind == 2 && !pr->ground_moved ? pr->anchor : 0;
  mach m = {g, pr, pr->regs, pr->aslot, out, 0, limit, skip, false, try_alloc, false};
  if (pr->root_kind == 1) {
    pr->regs[0] = pr->ground_cls[0];
    yield(&m, UINT32_MAX);
  } else {
    uint32_t nc;
    /* prepared: the index is built, so this only reads */
    const eg_id *cl = eg_classes_with_op((eg_egraph *)g, pr->root_kind == 0 ? -1 : pr->p->nodes[pr->p->n - 1].op, &nc);
    for (uint32_t i = 0; i < nc && !m.done; i++) {
      pr->regs[0] = cl[i];
      if (pr->root_kind == 0)
        yield(&m, UINT32_MAX);
      else
        run(&m, 0, 0);
    }
  }
  if (oom) *oom = m.oom;
  return m.found;
}

size_t eg_prog_search(eg_egraph *g, eg_prog *pr, size_t limit, eg_matches *out) {
  if (!eg_prog_prepare(g, pr)) {
    fit_width(pr, out);
    return 0;
  }
  return eg_prog_search_prepared(g, pr, limit, out, false, NULL);
}

void eg_prog_skip_applied(eg_prog *pr, bool on) { pr->skipping = on; }

void eg_prog_forget(eg_prog *pr) { pr->anchor = 0; }

void eg_prog_applied(eg_prog *pr) {
  pr->anchor = pr->searched;
  memcpy(pr->ground_prev, pr->ground_cls, pr->nground * sizeof *pr->ground_prev);
}

eg_id eg_prog_instantiate(eg_egraph *g, eg_prog *pr, const uint32_t *subst, eg_id into, bool *added) {
  const eg_pattern *p = pr->p;
  *added = false;
  if (!pr->nsteps) return subst[p->nodes[p->n - 1].var]; /* a bare variable */
  for (uint32_t s = 0; s < pr->nsteps; s++) {
    uint32_t i = pr->steps[s];
    const eg_pnode *pn = &p->nodes[i];
    const uint32_t *kr = pr->kref + pn->kids;
    for (uint32_t k = 0; k < pn->n; k++) {
      uint32_t r = kr[k];
      pr->kbuf[k] = (int32_t)r < 0 ? subst[~r] : pr->inst[r];
    }
    uint32_t attr = pn->attr_var ? subst[pn->var] : pr->attr_ids[i];
    pr->inst[i] = i == p->n - 1 && into != EG_NONE ? eg_add_into(g, pn->op, attr, pr->kbuf, pn->n, into, added)
                                                   : eg_add(g, pn->op, attr, pr->kbuf, pn->n);
  }
  return pr->inst[p->n - 1];
}
