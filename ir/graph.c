/* graph.c - building graphs: nodes, names, symbols, hash-consing.
 *
 * Nodes are appended in topological order (an operand always exists before
 * its user), so every pass over a graph is a loop over node ids. The memo
 * table maps (op, attrs, operands) to the node that already computes it;
 * inputs and constants with payloads are never merged by it. Its entries
 * are (low 32 bits of the hash) << 32 | (node id + 1), 0 empty, linear
 * probing at load <= 1/2: a probe compares the hash bits before it reads
 * a node (a cache miss on a large graph), and growing rehashes without
 * hashing a node again. */
#include "ir/ir.h"
#include "tensor/tensor.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t for streaming hashes */
#include <xxhash.h>

#define MEMO_SEED 0x746c616c6f63ULL /* fixed, so runs are reproducible */

tl_graph *tl_graph_new(const char *name) {
  tl_graph *g = tl_xcalloc(1, sizeof *g);
  g->name = tl_xstrdup(name ? name : "g");
  return g;
}

void tl_graph_free(tl_graph *g) {
  if (!g) return;
  tl_free(g->name);
  tl_free(g->nodes);
  tl_free(g->args);
  for (int i = 0; i < g->nnames; i++) tl_free(g->names[i]);
  tl_free(g->names);
  for (int i = 0; i < g->nsyms; i++) tl_free(g->syms[i]);
  tl_free(g->syms);
  tl_free(g->symdefs);
  tl_free(g->inputs);
  tl_free(g->outputs);
  tl_free(g->lets);
  for (int i = 0; i < g->nlits; i++) tl_tensor_free(g->lits[i]);
  tl_free(g->lits);
  tl_free(g->memo);
  if (g->fns_owned) tl_fns_release(g->fns);
  tl_free(g);
}

tl_fns *tl_fns_new(void) {
  tl_fns *t = tl_xcalloc(1, sizeof *t);
  t->refs = 1;
  return t;
}

void tl_fns_release(tl_fns *t) {
  if (!t || --t->refs > 0) return;
  for (int i = 0; i < t->n; i++) tl_graph_free(t->fn[i]);
  tl_free(t->fn);
  tl_free(t);
}

int32_t tl_fns_add(tl_fns *t, tl_graph *f) {
  TL_GROW(t->fn, t->n, t->cap);
  if (f->fns_owned) tl_fns_release(f->fns);
  f->fns = t;
  f->fns_owned = false;
  t->fn[t->n] = f;
  return t->n++;
}

int32_t tl_fns_find(const tl_fns *t, const char *name, size_t n) {
  for (int i = 0; t && i < t->n; i++)
    if (strlen(t->fn[i]->name) == n && memcmp(t->fn[i]->name, name, n) == 0) return i;
  return -1;
}

void tl_graph_set_fns(tl_graph *g, tl_fns *fns) {
  if (fns) fns->refs++;
  if (g->fns_owned) tl_fns_release(g->fns);
  g->fns = fns;
  g->fns_owned = fns != NULL;
}

bool tl_graph_has_control(const tl_graph *g) {
  for (int32_t i = 0; i < g->nnodes; i++)
    if (tl_ops[g->nodes[i].op].kind == TL_KIND_CONTROL) return true;
  return false;
}

static void *dup_array(const void *a, size_t n, size_t size) {
  void *d = tl_xmalloc(n * size + 1);
  if (n) memcpy(d, a, n * size);
  return d;
}

tl_graph *tl_graph_copy(const tl_graph *g, const char *name) {
  tl_graph *c = tl_xcalloc(1, sizeof *c);
  c->name = tl_xstrdup(name ? name : g->name);
  c->nodes = dup_array(g->nodes, (size_t)g->nnodes, sizeof *g->nodes);
  c->nnodes = c->capnodes = g->nnodes;
  c->args = dup_array(g->args, g->nargs, sizeof *g->args);
  c->nargs = c->capargs = g->nargs;
  c->names = dup_array(g->names, (size_t)g->nnames, sizeof *g->names);
  for (int i = 0; i < g->nnames; i++) c->names[i] = tl_xstrdup(g->names[i]);
  c->nnames = c->capnames = g->nnames;
  c->syms = dup_array(g->syms, (size_t)g->nsyms, sizeof *g->syms);
  for (int i = 0; i < g->nsyms; i++) c->syms[i] = tl_xstrdup(g->syms[i]);
  c->nsyms = c->capsyms = c->capsymdefs = g->nsyms;
  c->symdefs = dup_array(g->symdefs, (size_t)g->nsyms, sizeof *g->symdefs);
  c->inputs = dup_array(g->inputs, (size_t)g->ninputs, sizeof *g->inputs);
  c->ninputs = c->capinputs = g->ninputs;
  c->outputs = dup_array(g->outputs, (size_t)g->noutputs, sizeof *g->outputs);
  c->noutputs = c->capoutputs = g->noutputs;
  c->lets = dup_array(g->lets, (size_t)g->nlets, sizeof *g->lets);
  c->nlets = c->caplets = g->nlets;
  c->lits = dup_array(g->lits, (size_t)g->nlits, sizeof *g->lits);
  for (int i = 0; i < g->nlits; i++) c->lits[i] = tl_tensor_copy(g->lits[i]);
  c->nlits = c->caplits = g->nlits;
  c->memo = g->memocap ? dup_array(g->memo, g->memocap, sizeof *g->memo) : NULL;
  c->memocap = g->memocap;
  /* a copy of a function is a graph of its own: it holds the table */
  tl_graph_set_fns(c, g->fns);
  return c;
}

int tl_graph_sym_append(tl_graph *g, const char *name, size_t n, const tl_symdef *def) {
  TL_GROW(g->syms, g->nsyms, g->capsyms);
  if (g->capsymdefs < g->capsyms) {
    g->symdefs = tl_xrealloc(g->symdefs, (size_t)g->capsyms * sizeof *g->symdefs);
    g->capsymdefs = g->capsyms;
  }
  g->syms[g->nsyms] = tl_xstrndup(name, n);
  if (def) g->symdefs[g->nsyms] = *def;
  else memset(&g->symdefs[g->nsyms], 0, sizeof *g->symdefs);
  return g->nsyms++;
}

int tl_graph_sym(tl_graph *g, const char *name, size_t n) {
  for (int i = 0; i < g->nsyms; i++)
    if (strlen(g->syms[i]) == n && memcmp(g->syms[i], name, n) == 0) return i;
  if (n && name[0] == '(') {
    /* a derived dim's name is its definition (ir/symdim.h) */
    int64_t d;
    char err[256];
    if (tl_dim_parse(g, name, n, &d, err, sizeof err) == 0 && tl_dim_is_sym(d)) return tl_dim_sym_id(d);
  }
  return tl_graph_sym_append(g, name, n, NULL);
}

int32_t tl_graph_name(tl_graph *g, const char *name) {
  TL_GROW(g->names, g->nnames, g->capnames);
  g->names[g->nnames] = tl_xstrdup(name);
  return g->nnames++;
}

static int32_t push_node(tl_graph *g, int op, const tl_attrs *attrs,
                         const int32_t *inputs, int n, tl_loc loc) {
  TL_GROW(g->nodes, g->nnodes, g->capnodes);
  while (g->nargs + (uint32_t)n > g->capargs) {
    g->capargs = g->capargs ? g->capargs * 2 : 64;
    g->args = tl_xrealloc(g->args, g->capargs * sizeof *g->args);
  }
  tl_node *nd = &g->nodes[g->nnodes];
  memset(nd, 0, sizeof *nd);
  nd->op = (uint16_t)op;
  nd->ninputs = (uint16_t)n;
  nd->inputs = g->nargs;
  if (n) memcpy(g->args + g->nargs, inputs, (size_t)n * sizeof *inputs);
  g->nargs += (uint32_t)n;
  nd->name = -1;
  nd->loc = loc;
  if (attrs) nd->attrs = *attrs;
  else tl_attrs_init(&nd->attrs);
  return g->nnodes++;
}

int32_t tl_graph_add_input(tl_graph *g, const char *name, const tl_type *t, tl_loc loc) {
  int32_t id = push_node(g, TL_OP_INPUT, NULL, NULL, 0, loc);
  g->nodes[id].type = *t;
  g->nodes[id].name = tl_graph_name(g, name);
  TL_GROW(g->inputs, g->ninputs, g->capinputs);
  g->inputs[g->ninputs++] = id;
  return id;
}

void tl_graph_set_range(tl_graph *g, int32_t input, double lo, double hi) {
  tl_attrs *a = &g->nodes[input].attrs;
  a->present |= TL_A_RANGE;
  a->f = lo;
  a->hi = hi;
}

bool tl_graph_range(const tl_graph *g, int32_t input, double *lo, double *hi) {
  const tl_attrs *a = &g->nodes[input].attrs;
  if (g->nodes[input].op != TL_OP_INPUT || !(a->present & TL_A_RANGE)) return false;
  *lo = a->f;
  *hi = a->hi;
  return true;
}

static uint64_t node_hash(int op, const tl_attrs *a, const int32_t *in, int n) {
  XXH3_state_t st;
  XXH3_64bits_reset_withSeed(&st, MEMO_SEED);
  uint16_t hdr[2] = {(uint16_t)op, (uint16_t)n};
  XXH3_64bits_update(&st, hdr, sizeof hdr);
  XXH3_64bits_update(&st, a, sizeof *a);
  if (n) XXH3_64bits_update(&st, in, (size_t)n * sizeof *in);
  return XXH3_64bits_digest(&st);
}

static bool node_is(const tl_graph *g, int32_t id, int op, const tl_attrs *a,
                    const int32_t *in, int n) {
  const tl_node *nd = &g->nodes[id];
  return nd->op == op && nd->ninputs == n &&
         memcmp(&nd->attrs, a, sizeof *a) == 0 &&
         (n == 0 || memcmp(tl_node_inputs(g, nd), in, (size_t)n * sizeof *in) == 0);
}

static void memo_put(uint64_t *memo, uint32_t mask, uint64_t e) {
  uint32_t i = (uint32_t)(e >> 32) & mask;
  while (memo[i]) i = (i + 1) & mask;
  memo[i] = e;
}

static void memo_grow(tl_graph *g) {
  uint32_t old = g->memocap;
  uint64_t *om = g->memo;
  g->memocap = old ? old * 2 : 256;
  g->memo = tl_xcalloc(g->memocap, sizeof *g->memo);
  for (uint32_t i = 0; i < old; i++)
    if (om[i]) memo_put(g->memo, g->memocap - 1, om[i]);
  tl_free(om);
}

/* Nodes that stand for themselves: never shared by the memo. */
static bool memoizable(int op) { return op != TL_OP_INPUT && op != TL_OP_CONST; }

/* NEP 50: arithmetic between an i32 operand and an integer literal the
 * i32 range cannot hold is an error (numpy raises OverflowError), not a
 * silent wrap. Comparisons are exact instead and are not checked here. */
static int literal_out_of_range(const tl_graph *g, int op, const int32_t *inputs,
                                const tl_type *const *in, int n, char *err, size_t err_size) {
  const tl_op_info *oi = &tl_ops[op];
  if (oi->kind != TL_KIND_ELEMWISE || oi->dtype_rule == TL_DR_CMP || oi->dtype_rule == TL_DR_BOOL ||
      op == TL_OP_CAST)
    return 0;
  int first = oi->dtype_rule == TL_DR_WHERE ? 1 : 0;
  uint8_t dt, weak;
  tl_promote(in + first, n - first, &dt, &weak);
  if (dt != TL_I32 || weak) return 0;
  for (int i = first; i < n; i++) {
    const tl_node *x = &g->nodes[inputs[i]];
    if (x->op == TL_OP_LIT && x->attrs.is_int && (x->attrs.i < INT32_MIN || x->attrs.i > INT32_MAX)) {
      snprintf(err, err_size, "%s: integer literal %lld is out of range for i32 (cast the operand to i64)",
               oi->name, (long long)x->attrs.i);
      return -1;
    }
  }
  return 0;
}

int32_t tl_graph_add(tl_graph *g, int op, const tl_attrs *attrs,
                     const int32_t *inputs, int ninputs, tl_loc loc,
                     char *err, size_t err_size) {
  tl_attrs a;
  if (attrs) a = *attrs;
  else tl_attrs_init(&a);
  if (tl_ops[op].kind == TL_KIND_CONTROL) { /* :out 0 is the default: one encoding */
    if (a.out) a.present |= TL_A_OUT;
    else a.present &= ~(unsigned)TL_A_OUT;
  }
  if (op == TL_OP_TRANSPOSE && ninputs == 1) tl_perm_drop_reversal(&a, g->nodes[inputs[0]].type.rank);
  uint64_t h = memoizable(op) ? node_hash(op, &a, inputs, ninputs) : 0;
  if (memoizable(op) && g->memocap) {
    uint32_t mask = g->memocap - 1;
    for (uint32_t i = (uint32_t)h & mask; g->memo[i]; i = (i + 1) & mask) {
      int32_t id = (int32_t)(uint32_t)g->memo[i] - 1;
      if ((uint32_t)(g->memo[i] >> 32) == (uint32_t)h && node_is(g, id, op, &a, inputs, ninputs)) return id;
    }
  }
  const tl_type *in[TL_GRAPH_MAX_ARGS];
  if (ninputs > TL_GRAPH_MAX_ARGS) {
    snprintf(err, err_size, "%s: too many operands (%d, at most %d)", tl_ops[op].name,
             ninputs, TL_GRAPH_MAX_ARGS);
    return -1;
  }
  bool poisoned = false;
  for (int i = 0; i < ninputs; i++) {
    in[i] = &g->nodes[inputs[i]].type;
    if (in[i]->dtype == TL_DTYPE_ERROR) poisoned = true;
  }
  tl_type t;
  memset(&t, 0, sizeof t);
  if (poisoned) {
    t.dtype = TL_DTYPE_ERROR;
  } else if (tl_infer(g, op, &a, in, ninputs, &t, err, err_size) != 0) {
    return -1;
  } else if (literal_out_of_range(g, op, inputs, in, ninputs, err, err_size)) {
    return -1;
  }
  int32_t id = push_node(g, op, &a, inputs, ninputs, loc);
  g->nodes[id].type = t;
  if (memoizable(op)) {
    if ((uint32_t)g->nnodes * 2 >= g->memocap) memo_grow(g);
    memo_put(g->memo, g->memocap - 1, (uint64_t)(uint32_t)h << 32 | (uint32_t)(id + 1));
  }
  return id;
}

int32_t tl_graph_add_const(tl_graph *g, tl_tensor *t, tl_loc loc) {
  TL_GROW(g->lits, g->nlits, g->caplits);
  g->lits[g->nlits] = t;
  tl_attrs a;
  tl_attrs_init(&a);
  a.lit = g->nlits++;
  int32_t id = push_node(g, TL_OP_CONST, &a, NULL, 0, loc);
  tl_type *ty = &g->nodes[id].type;
  ty->dtype = t->dtype;
  ty->rank = t->rank;
  memcpy(ty->dims, t->dims, sizeof ty->dims);
  return id;
}

void tl_graph_add_output(tl_graph *g, const char *name, int32_t node) {
  TL_GROW(g->outputs, g->noutputs, g->capoutputs);
  g->outputs[g->noutputs].name = tl_graph_name(g, name);
  g->outputs[g->noutputs].node = node;
  g->noutputs++;
}

void tl_graph_add_let(tl_graph *g, const char *name, int32_t node) {
  /* The first name given to a node is the one printed for it. */
  if (g->nodes[node].name < 0) g->nodes[node].name = tl_graph_name(g, name);
  TL_GROW(g->lets, g->nlets, g->caplets);
  g->lets[g->nlets++] = node;
}

static bool types_equal(const tl_graph *ga, const tl_type *a, const tl_graph *gb,
                        const tl_type *b) {
  if (a->dtype != b->dtype || a->weak != b->weak || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++) {
    int64_t x = a->dims[i], y = b->dims[i];
    if (tl_dim_is_sym(x) != tl_dim_is_sym(y)) return false;
    if (!tl_dim_is_sym(x)) {
      if (x != y) return false;
    } else if (strcmp(ga->syms[tl_dim_sym_id(x)], gb->syms[tl_dim_sym_id(y)]) != 0) {
      return false;
    }
  }
  return true;
}

static bool attrs_equal(const tl_graph *ga, const tl_node *a, const tl_graph *gb,
                        const tl_node *b) {
  if (a->op == TL_OP_CONST) {
    const tl_tensor *x = ga->lits[a->attrs.lit], *y = gb->lits[b->attrs.lit];
    return x->numel == y->numel &&
           memcmp(x->data, y->data, (size_t)x->numel * tl_dtype_size(x->dtype)) == 0;
  }
  tl_attrs x = a->attrs, y = b->attrs;
  /* symbolic dims in shape attributes compare by name, not by id */
  for (int i = 0; i < x.nshape; i++) {
    if (x.shape[i] != TL_DIM_INFER && tl_dim_is_sym(x.shape[i])) {
      if (y.shape[i] == TL_DIM_INFER || !tl_dim_is_sym(y.shape[i]) ||
          strcmp(ga->syms[tl_dim_sym_id(x.shape[i])], gb->syms[tl_dim_sym_id(y.shape[i])]))
        return false;
      x.shape[i] = y.shape[i] = 0;
    }
  }
  if ((x.present & TL_A_TRIPS) && (y.present & TL_A_TRIPS)) { /* a loop's :trips, the same way */
    if (strcmp(ga->syms[tl_dim_sym_id(x.tdim)], gb->syms[tl_dim_sym_id(y.tdim)])) return false;
    x.tdim = y.tdim = 0;
  }
  return memcmp(&x, &y, sizeof x) == 0;
}

static bool body_equal(const tl_graph *a, const tl_graph *b);

/* Function tables compare function by function (names and bodies); the
 * nodes that call them compare by index. */
static bool fns_equal(const tl_fns *a, const tl_fns *b) {
  int na = a ? a->n : 0, nb = b ? b->n : 0;
  if (na != nb) return false;
  for (int i = 0; i < na; i++)
    if (strcmp(a->fn[i]->name, b->fn[i]->name) != 0 || !body_equal(a->fn[i], b->fn[i])) return false;
  return true;
}

bool tl_graph_equal(const tl_graph *a, const tl_graph *b) {
  return (a->fns == b->fns || fns_equal(a->fns, b->fns)) && body_equal(a, b);
}

static bool body_equal(const tl_graph *a, const tl_graph *b) {
  if (a->ninputs != b->ninputs || a->noutputs != b->noutputs) return false;
  for (int i = 0; i < a->ninputs; i++) {
    const tl_node *x = &a->nodes[a->inputs[i]], *y = &b->nodes[b->inputs[i]];
    if (strcmp(a->names[x->name], b->names[y->name]) != 0) return false;
    if (!types_equal(a, &x->type, b, &y->type)) return false;
  }
  int32_t *map = tl_xmalloc(((size_t)a->nnodes + 1) * sizeof *map);
  int32_t *rmap = tl_xmalloc(((size_t)b->nnodes + 1) * sizeof *rmap);
  for (int i = 0; i < a->nnodes; i++) map[i] = -1;
  for (int i = 0; i < b->nnodes; i++) rmap[i] = -1;
  for (int i = 0; i < a->ninputs; i++) {
    map[a->inputs[i]] = b->inputs[i];
    rmap[b->inputs[i]] = a->inputs[i];
  }
  size_t cap = 64, n = 0;
  int32_t *stack = tl_xmalloc(cap * 2 * sizeof *stack);
  bool eq = true;
  for (int i = 0; i < a->noutputs && eq; i++) {
    if (strcmp(a->names[a->outputs[i].name], b->names[b->outputs[i].name]) != 0) {
      eq = false;
      break;
    }
    stack[0] = a->outputs[i].node;
    stack[1] = b->outputs[i].node;
    n = 1;
    while (n > 0 && eq) {
      n--;
      int32_t x = stack[2 * n], y = stack[2 * n + 1];
      if (map[x] >= 0 || rmap[y] >= 0) {
        eq = map[x] == y && rmap[y] == x;
        continue;
      }
      const tl_node *nx = &a->nodes[x], *ny = &b->nodes[y];
      if (nx->op != ny->op || nx->ninputs != ny->ninputs ||
          !types_equal(a, &nx->type, b, &ny->type) || !attrs_equal(a, nx, b, ny)) {
        eq = false;
        break;
      }
      map[x] = y;
      rmap[y] = x;
      for (int k = 0; k < nx->ninputs; k++) {
        if (n + 1 > cap) {
          cap *= 2;
          stack = tl_xrealloc(stack, cap * 2 * sizeof *stack);
        }
        stack[2 * n] = tl_node_inputs(a, nx)[k];
        stack[2 * n + 1] = tl_node_inputs(b, ny)[k];
        n++;
      }
    }
  }
  tl_free(stack);
  tl_free(map);
  tl_free(rmap);
  return eq;
}

char *tl_type_str(const tl_graph *g, const tl_type *t, char *buf, size_t size) {
  size_t len = 0;
  len += (size_t)snprintf(buf, size, "%s[", tl_dtype_name((tl_dtype)t->dtype));
  for (int i = 0; i < t->rank && len < size; i++) {
    const char *sep = i ? " " : "";
    if (tl_dim_is_sym(t->dims[i]) && g && tl_dim_sym_id(t->dims[i]) < g->nsyms)
      len += (size_t)snprintf(buf + len, size - len, "%s%s", sep, g->syms[tl_dim_sym_id(t->dims[i])]);
    else if (tl_dim_is_sym(t->dims[i]))
      len += (size_t)snprintf(buf + len, size - len, "%s?%d", sep, tl_dim_sym_id(t->dims[i]));
    else
      len += (size_t)snprintf(buf + len, size - len, "%s%lld", sep, (long long)t->dims[i]);
  }
  if (len < size) snprintf(buf + len, size - len, "]");
  return buf;
}

int64_t tl_type_numel(const tl_type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (tl_dim_is_sym(t->dims[i])) return -1;
    n *= t->dims[i];
  }
  return n;
}
