/* tg_parse.c - reads a .tg graph.
 *
 *   file  := func* graph
 *   func  := '(' 'func' NAME item* ')'     (its ins are its parameters)
 *   graph := '(' 'graph' NAME item* ')'
 *   item  := '(' 'in' NAME DTYPE '[' dim* ']' ')'
 *          | '(' 'let' NAME expr ')'  |  '(' 'out' NAME expr ')'
 *          | '(' 'let' '[' NAME* ']' expr ')'   (the results of a call,
 *                                                 cond, loop or scan)
 *   expr  := NAME | NUMBER | '(' OP expr* attr* ')'
 *          | '(' 'const' DTYPE '[' dim* ']' NUMBER* ')'
 *          | '(' 'fill' DTYPE '[' dim* ']' NUMBER ')'
 *   attr  := ':' NAME value        value := INT | FLOAT | NAME | '[' value* ']'
 *
 * Recursive descent with recovery: an error inside an item is reported and
 * the parser skips to the item's closing parenthesis, so one run reports
 * every independent error. An expression that failed yields -1, and
 * anything built on it is skipped silently (the cause was reported). */
#include "tensor/tensor.h"
#include "util/alloc.h"
#include "ir/lex.h"
#include "ir/tg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef struct binding {
  uint32_t name, len; /* the name: offset in the scope's pool, length */
  int32_t node;       /* -1: defined by a statement that failed */
  tl_loc loc;
} binding;

/* The names defined so far. A graph can define 10^6 of them and every
 * operand is a lookup, so this is a flat table: bindings in one array, their
 * names (NUL-terminated) in one pool, and an open-addressed index (linear
 * probing, load <= 1/2) whose slots hold the hash's high 32 bits and the
 * binding's index + 1 (0: empty), so a probe reads one slot. */
typedef struct scope {
  binding *b;
  uint32_t n, cap;
  uint64_t *slot;
  uint32_t nslot;
  char *pool;
  size_t npool, cappool;
} scope;

typedef struct parser {
  tl_lexer lx;
  tl_diag *d;
  tl_graph *g;
  tl_fns *fns; /* the functions defined so far (NULL: none yet) */
  scope scope;
  int depth; /* nesting of '(' seen, for recovery */
  bool eof_reported; /* one "never closed" message is enough */
} parser;

#define attr_names tl_attr_names

static tl_tok next(parser *p) {
  tl_tok t = tl_lex_next(&p->lx);
  if (t.kind == TK_LPAREN) p->depth++;
  if (t.kind == TK_RPAREN) p->depth--;
  return t;
}

static tl_tok peek(parser *p) { return tl_lex_peek(&p->lx); }

/* Skips tokens until the parenthesis at depth `depth` closes (or EOF). */
static void skip_to_depth(parser *p, int depth) {
  while (p->depth > depth) {
    tl_tok t = next(p);
    if (t.kind == TK_EOF) return;
  }
}

static void unclosed(parser *p, tl_loc open) {
  if (p->eof_reported) return;
  p->eof_reported = true;
  tl_diag_error(p->d, open, "unbalanced parentheses: this '(' is never closed");
}

static const char *tok_desc(const tl_tok *t, char *buf, size_t n) {
  switch (t->kind) {
  case TK_EOF: return "end of file";
  case TK_LPAREN: return "'('";
  case TK_RPAREN: return "')'";
  case TK_LBRACK: return "'['";
  case TK_RBRACK: return "']'";
  default:
    snprintf(buf, n, "'%.*s%.*s'", t->kind == TK_KEYWORD ? 1 : t->kind == TK_VAR ? 1 : 0,
             t->kind == TK_KEYWORD ? ":" : "?", (int)(t->len > 40 ? 40 : t->len), t->text);
    return buf;
  }
}

static void expected(parser *p, const tl_tok *t, const char *what) {
  char b[64];
  if (t->kind == TK_EOF)
    tl_diag_error(p->d, t->loc, "expected %s, found end of file (unbalanced parentheses?)", what);
  else
    tl_diag_error(p->d, t->loc, "expected %s, found %s", what, tok_desc(t, b, sizeof b));
}

static binding *lookup(parser *p, const char *s, size_t n) {
  const scope *sc = &p->scope;
  if (!sc->nslot) return NULL;
  uint64_t h = XXH3_64bits(s, n);
  uint32_t mask = sc->nslot - 1;
  for (uint32_t i = (uint32_t)h & mask; sc->slot[i]; i = (i + 1) & mask) {
    if ((sc->slot[i] >> 32) != (h >> 32)) continue;
    binding *b = &sc->b[(uint32_t)sc->slot[i] - 1];
    if (b->len == n && memcmp(sc->pool + b->name, s, n) == 0) return b;
  }
  return NULL;
}

static void scope_index(scope *sc, uint32_t k) {
  const binding *b = &sc->b[k];
  uint64_t h = XXH3_64bits(sc->pool + b->name, b->len);
  uint32_t mask = sc->nslot - 1, i = (uint32_t)h & mask;
  while (sc->slot[i]) i = (i + 1) & mask;
  sc->slot[i] = (h & 0xffffffff00000000u) | (k + 1);
}

/* Binds a name; false (with an error) when it exists already. */
static bool bind(parser *p, const tl_tok *name, int32_t node) {
  binding *b = lookup(p, name->text, name->len);
  if (b) {
    tl_diag_error(p->d, name->loc, "duplicate name '%.*s'", (int)name->len, name->text);
    tl_diag_note(p->d, b->loc, "'%s' was defined here", p->scope.pool + b->name);
    return false;
  }
  scope *sc = &p->scope;
  while (sc->npool + name->len + 1 > sc->cappool) {
    sc->cappool = sc->cappool ? 2 * sc->cappool : 4096;
    sc->pool = tl_xrealloc(sc->pool, sc->cappool);
  }
  memcpy(sc->pool + sc->npool, name->text, name->len);
  sc->pool[sc->npool + name->len] = 0;
  TL_GROW(sc->b, sc->n, sc->cap);
  sc->b[sc->n] = (binding){(uint32_t)sc->npool, (uint32_t)name->len, node, name->loc};
  sc->npool += name->len + 1;
  sc->n++;
  if (2 * sc->n > sc->nslot) {
    tl_free(sc->slot);
    sc->nslot = sc->nslot ? 2 * sc->nslot : 64;
    sc->slot = tl_xcalloc(sc->nslot, sizeof *sc->slot);
    for (uint32_t k = 0; k < sc->n; k++) scope_index(sc, k);
  } else {
    scope_index(sc, sc->n - 1);
  }
  return true;
}

/* '[' dim* ']' into dims; symbols interned; -1 allowed when allow_infer. */
static bool parse_dims(parser *p, int64_t *dims, int *rank, bool allow_infer) {
  tl_tok t = next(p);
  if (t.kind != TK_LBRACK) {
    expected(p, &t, "'[' to start a shape");
    return false;
  }
  *rank = 0;
  for (;;) {
    t = next(p);
    if (t.kind == TK_RBRACK) return true;
    if (*rank >= TL_MAX_RANK) {
      tl_diag_error(p->d, t.loc, "shape has more than %d dims", TL_MAX_RANK);
      return false;
    }
    if (t.kind == TK_NUMBER) {
      double f;
      int64_t i;
      bool is_int;
      if (!tl_tok_number(&t, &f, &i, &is_int) || !is_int || i < -1 || (i == -1 && !allow_infer)) {
        tl_diag_error(p->d, t.loc, "bad dim '%.*s': dims are non-negative integers or names",
                      (int)t.len, t.text);
        return false;
      }
      dims[(*rank)++] = i == -1 ? TL_DIM_INFER : i;
    } else if (t.kind == TK_NAME) {
      dims[(*rank)++] = tl_dim_sym(tl_graph_sym(p->g, t.text, t.len));
    } else if (t.kind == TK_LPAREN) {
      /* a derived dim, (+ n 1): its text up to the matching ')' */
      int depth = p->depth;
      tl_tok e = t;
      while (p->depth >= depth && e.kind != TK_EOF) e = next(p);
      if (e.kind == TK_EOF) {
        unclosed(p, t.loc);
        return false;
      }
      char msg[256];
      int64_t d;
      if (tl_dim_parse(p->g, t.text, (size_t)(e.text + e.len - t.text), &d, msg, sizeof msg)) {
        tl_diag_error(p->d, t.loc, "bad dim: %s", msg);
        return false;
      }
      dims[(*rank)++] = d;
    } else {
      expected(p, &t, "a dim (integer, name or (+ - * floordiv ceildiv ...)) or ']'");
      return false;
    }
  }
}

static int parse_dtype(parser *p) {
  tl_tok t = next(p);
  int dt = t.kind == TK_NAME ? tl_dtype_lookup(t.text, t.len) : -1;
  if (dt < 0) {
    char b[64];
    tl_diag_error(p->d, t.loc, "bad dtype %s: expected one of bool i32 i64 f32 f64",
                  tok_desc(&t, b, sizeof b));
  }
  return dt;
}

static bool number_tok(parser *p, tl_tok *t, double *f, int64_t *i, bool *is_int) {
  *t = next(p);
  if (t->kind != TK_NUMBER) {
    expected(p, t, "a number");
    return false;
  }
  if (!tl_tok_number(t, f, i, is_int)) {
    tl_diag_error(p->d, t->loc, "integer literal '%.*s' does not fit in i64", (int)t->len, t->text);
    return false;
  }
  return true;
}

/* Stores a literal into element k of a tensor, checking it fits. */
static bool store_literal(parser *p, tl_tensor *x, int64_t k, const tl_tok *t, double f,
                          int64_t i, bool is_int) {
  switch (x->dtype) {
  case TL_BOOL:
    if (!is_int || (i != 0 && i != 1)) {
      tl_diag_error(p->d, t->loc, "bool values are 0 or 1, not '%.*s'", (int)t->len, t->text);
      return false;
    }
    break;
  case TL_I32:
    if (!is_int || i < INT32_MIN || i > INT32_MAX) {
      tl_diag_error(p->d, t->loc, "'%.*s' is not an i32 value", (int)t->len, t->text);
      return false;
    }
    break;
  case TL_I64:
    if (!is_int) {
      tl_diag_error(p->d, t->loc, "'%.*s' is not an i64 value", (int)t->len, t->text);
      return false;
    }
    break;
  default: break;
  }
  if (is_int) tl_tensor_set_i64(x, k, i);
  else tl_tensor_set_f64(x, k, f);
  return true;
}

/* After '(' 'const': DTYPE [dims] values ')' */
static int32_t parse_const(parser *p, tl_loc loc, int depth) {
  int dt = parse_dtype(p);
  if (dt < 0) return -1;
  int64_t dims[TL_MAX_RANK];
  int rank;
  if (!parse_dims(p, dims, &rank, false)) return -1;
  for (int k = 0; k < rank; k++)
    if (tl_dim_is_sym(dims[k])) {
      tl_diag_error(p->d, loc, "const needs a concrete shape (use fill for symbolic shapes)");
      return -1;
    }
  char err[256];
  tl_tensor *x = tl_tensor_new((tl_dtype)dt, rank, dims, err, sizeof err);
  if (!x) {
    tl_diag_error(p->d, loc, "const: %s", err);
    return -1;
  }
  int64_t k = 0;
  bool ok = true;
  while (peek(p).kind == TK_NUMBER) {
    tl_tok t;
    double f;
    int64_t i;
    bool is_int;
    if (!number_tok(p, &t, &f, &i, &is_int)) { ok = false; break; }
    if (k < x->numel && !store_literal(p, x, k, &t, f, i, is_int)) ok = false;
    k++;
  }
  if (ok && k != x->numel) {
    tl_diag_error(p->d, loc, "const of shape with %lld elements has %lld values",
                  (long long)x->numel, (long long)k);
    ok = false;
  }
  tl_tok t = next(p);
  if (ok && t.kind != TK_RPAREN) {
    expected(p, &t, "a number or ')' in const");
    ok = false;
  }
  if (!ok) {
    tl_tensor_free(x);
    skip_to_depth(p, depth);
    return -1;
  }
  return tl_graph_add_const(p->g, x, loc);
}

/* After '(' 'fill': DTYPE [dims] NUMBER ')' */
static int32_t parse_fill(parser *p, tl_loc loc, int depth) {
  tl_attrs a;
  tl_attrs_init(&a);
  int dt = parse_dtype(p);
  if (dt < 0) return -1;
  a.dtype = (uint8_t)dt;
  int rank;
  if (!parse_dims(p, a.shape, &rank, false)) return -1;
  a.nshape = (uint8_t)rank;
  tl_tok t;
  double f;
  int64_t i;
  bool is_int;
  if (!number_tok(p, &t, &f, &i, &is_int)) return -1;
  tl_tensor probe = {.dtype = (uint8_t)dt};
  uint64_t scratch = 0;
  probe.data = &scratch;
  if (!store_literal(p, &probe, 0, &t, f, i, is_int)) return -1;
  a.f = tl_tensor_get_f64(&probe, 0);
  a.i = tl_tensor_get_i64(&probe, 0);
  a.is_int = !tl_dtype_is_float((tl_dtype)dt);
  if (a.is_int) a.f = 0; /* one canonical encoding per value, for the memo */
  else a.i = 0;
  tl_tok close = next(p);
  if (close.kind != TK_RPAREN) {
    expected(p, &close, "')' after the fill value");
    skip_to_depth(p, depth);
    return -1;
  }
  char err[512];
  int32_t id = tl_graph_add(p->g, TL_OP_FILL, &a, NULL, 0, loc, err, sizeof err);
  if (id < 0) tl_diag_error(p->d, loc, "%s", err);
  return id;
}

static int attr_index(const tl_tok *t) {
  for (int i = 0; i < (int)(sizeof attr_names / sizeof *attr_names); i++)
    if (tl_tok_is(t, attr_names[i])) return i;
  return -1;
}

static bool int_value(parser *p, tl_tok *t, int64_t *v, const char *attr) {
  double f;
  bool is_int;
  *t = next(p);
  if (t->kind != TK_NUMBER || !tl_tok_number(t, &f, v, &is_int) || !is_int) {
    char b[64];
    tl_diag_error(p->d, t->loc, "attribute :%s expects an integer, found %s", attr,
                  tok_desc(t, b, sizeof b));
    return false;
  }
  return true;
}

/* Int or [int*] into an int8 list (axes, perm). */
static bool int_list(parser *p, int8_t *out, uint8_t *n, const char *attr, bool allow_scalar) {
  tl_tok t = peek(p);
  int64_t v;
  if (t.kind == TK_NUMBER && allow_scalar) {
    if (!int_value(p, &t, &v, attr)) return false;
    if (v < -TL_MAX_RANK * 2 || v >= TL_MAX_RANK * 2) {
      tl_diag_error(p->d, t.loc, "attribute :%s value %lld is out of range", attr, (long long)v);
      return false;
    }
    out[0] = (int8_t)v;
    *n = 1;
    return true;
  }
  t = next(p);
  if (t.kind != TK_LBRACK) {
    char b[64];
    tl_diag_error(p->d, t.loc, "attribute :%s expects %s, found %s", attr,
                  allow_scalar ? "an integer or a list [..]" : "a list [..]", tok_desc(&t, b, sizeof b));
    return false;
  }
  *n = 0;
  while (peek(p).kind != TK_RBRACK) {
    if (*n >= TL_MAX_RANK) {
      tl_diag_error(p->d, peek(p).loc, "attribute :%s has more than %d entries", attr, TL_MAX_RANK);
      return false;
    }
    if (!int_value(p, &t, &v, attr)) return false;
    if (v < -TL_MAX_RANK * 2 || v >= TL_MAX_RANK * 2) {
      tl_diag_error(p->d, t.loc, "attribute :%s value %lld is out of range", attr, (long long)v);
      return false;
    }
    out[(*n)++] = (int8_t)v;
  }
  next(p);
  return true;
}

static bool parse_attr(parser *p, int op, tl_attrs *a) {
  tl_tok key = next(p); /* TK_KEYWORD */
  int ai = attr_index(&key);
  if (ai < 0) {
    tl_diag_error(p->d, key.loc, "unknown attribute ':%.*s'", (int)key.len, key.text);
    return false;
  }
  unsigned bit = 1u << ai;
  if (!(tl_ops[op].allowed_attrs & bit)) {
    tl_diag_error(p->d, key.loc, "op '%s' does not take attribute ':%s'", tl_ops[op].name, attr_names[ai]);
    return false;
  }
  if (a->present & bit) {
    tl_diag_error(p->d, key.loc, "attribute ':%s' is given twice", attr_names[ai]);
    return false;
  }
  a->present |= bit;
  tl_tok t;
  int64_t v;
  switch (bit) {
  case TL_A_AXIS: return int_list(p, a->axes, &a->naxes, "axis", true);
  case TL_A_PERM: return int_list(p, a->perm, &a->nperm, "perm", false);
  case TL_A_KEEPDIMS:
    t = next(p);
    if (tl_tok_is(&t, "true") || tl_tok_is(&t, "1")) a->keepdims = 1;
    else if (tl_tok_is(&t, "false") || tl_tok_is(&t, "0")) a->present &= ~bit;
    else {
      char b[64];
      tl_diag_error(p->d, t.loc, "attribute :keepdims expects true or false, found %s",
                    tok_desc(&t, b, sizeof b));
      return false;
    }
    return true;
  case TL_A_DTYPE: {
    int dt = parse_dtype(p);
    if (dt < 0) return false;
    a->dtype = (uint8_t)dt;
    return true;
  }
  case TL_A_SHAPE: {
    int rank;
    if (!parse_dims(p, a->shape, &rank, op == TL_OP_RESHAPE)) return false;
    a->nshape = (uint8_t)rank;
    return true;
  }
  case TL_A_FN: case TL_A_THEN: case TL_A_ELSE: case TL_A_COND: case TL_A_BODY: case TL_A_UNTIL: {
    t = next(p);
    int32_t f = t.kind == TK_NAME ? tl_fns_find(p->fns, t.text, t.len) : -1;
    if (f < 0) {
      char b[64];
      tl_diag_error(p->d, t.loc, "attribute :%s expects the name of a function defined above, found %s",
                    attr_names[ai], tok_desc(&t, b, sizeof b));
      return false;
    }
    int slot = bit == TL_A_ELSE || bit == TL_A_BODY ? 1 : bit == TL_A_UNTIL ? 2 : 0;
    a->fn[slot] = f;
    return true;
  }
  case TL_A_OUT:
    if (!int_value(p, &t, &v, "out")) return false;
    if (v < 0 || v >= TL_GRAPH_MAX_ARGS) {
      tl_diag_error(p->d, t.loc, "attribute :out %lld is out of range", (long long)v);
      return false;
    }
    a->out = (int32_t)v;
    if (v == 0) a->present &= ~bit; /* the default, one encoding for the memo */
    return true;
  case TL_A_MAX:
    if (peek(p).kind == TK_NAME) {
      t = next(p);
      if (!tl_tok_is(&t, "unbounded")) {
        tl_diag_error(p->d, t.loc, "attribute :max expects a count or 'unbounded', found '%.*s'", (int)t.len, t.text);
        return false;
      }
      a->trips = -1;
      return true;
    }
    if (!int_value(p, &t, &v, "max")) return false;
    if (v < 0) {
      tl_diag_error(p->d, t.loc, "attribute :max must be >= 0 (or 'unbounded')");
      return false;
    }
    a->trips = v;
    return true;
  case TL_A_CARRY: if (!int_value(p, &t, &v, "carry")) return false; a->carry = v; return true;
  case TL_A_LENGTH: if (!int_value(p, &t, &v, "length")) return false; a->length = v; return true;
  case TL_A_CONSTS: if (!int_value(p, &t, &v, "consts")) return false; a->consts = v; return true;
  case TL_A_STACK:
    if (!int_value(p, &t, &v, "stack")) return false;
    if (v < 1 || v >= TL_GRAPH_MAX_ARGS) {
      tl_diag_error(p->d, t.loc, "attribute :stack %lld is out of range (1 or more per-trip results)", (long long)v);
      return false;
    }
    a->stack = v;
    return true;
  case TL_A_TRIPS: {
    t = next(p);
    int64_t d = 0;
    char e[160];
    if (t.kind != TK_NAME || tl_dim_parse(p->g, t.text, t.len, &d, e, sizeof e) || !tl_dim_is_sym(d) ||
        tl_sym_derived(p->g, tl_dim_sym_id(d))) {
      char b[64];
      tl_diag_error(p->d, t.loc, "attribute :trips expects a symbol name (the dim the trip count binds), found %s",
                    tok_desc(&t, b, sizeof b));
      return false;
    }
    a->tdim = d;
    return true;
  }
  case TL_A_START: if (!int_value(p, &t, &v, "start")) return false; a->start = v; return true;
  case TL_A_STOP: if (!int_value(p, &t, &v, "stop")) return false; a->stop = v; return true;
  default: /* TL_A_STEP */
    if (!int_value(p, &t, &v, "step")) return false;
    a->step = v;
    return true;
  }
}

static int32_t parse_expr(parser *p);

/* Deeper nesting than this is refused (the parser recurses per level). */
#define TL_PARSE_MAX_DEPTH 1000

static int32_t parse_call(parser *p, tl_tok open) {
  int depth = p->depth - 1; /* depth outside this '(' */
  if (p->depth > TL_PARSE_MAX_DEPTH) {
    tl_diag_error(p->d, open.loc, "expression nested more than %d deep (use let)", TL_PARSE_MAX_DEPTH);
    skip_to_depth(p, depth);
    return -1;
  }
  tl_tok optok = next(p);
  if (optok.kind != TK_NAME) {
    expected(p, &optok, "an op name");
    skip_to_depth(p, depth);
    return -1;
  }
  if (tl_tok_is(&optok, "const")) return parse_const(p, open.loc, depth);
  if (tl_tok_is(&optok, "fill")) return parse_fill(p, open.loc, depth);
  int op = tl_op_lookup(optok.text, optok.len);
  if (op < 0 || op == TL_OP_INPUT || op == TL_OP_LIT || op == TL_OP_CONST) {
    if (tl_tok_is(&optok, "in") || tl_tok_is(&optok, "let") || tl_tok_is(&optok, "out"))
      tl_diag_error(p->d, optok.loc, "'%.*s' is a statement, not an op (statements go at the top level of the graph)",
                    (int)optok.len, optok.text);
    else
      tl_diag_error(p->d, optok.loc, "unknown op '%.*s'", (int)optok.len, optok.text);
    skip_to_depth(p, depth);
    return -1;
  }
  int32_t args[TL_GRAPH_MAX_ARGS];
  int n = 0;
  bool ok = true;
  tl_attrs a;
  tl_attrs_init(&a);
  for (;;) {
    tl_tok t = peek(p);
    if (t.kind == TK_RPAREN) {
      next(p);
      break;
    }
    if (t.kind == TK_EOF) {
      unclosed(p, open.loc);
      return -1;
    }
    if (t.kind == TK_KEYWORD) {
      if (!parse_attr(p, op, &a)) {
        skip_to_depth(p, depth);
        return -1;
      }
      continue;
    }
    if (a.present) {
      tl_diag_error(p->d, t.loc, "operands must come before attributes");
      skip_to_depth(p, depth);
      return -1;
    }
    int32_t x = parse_expr(p);
    if (x < 0) ok = false;
    if (n < TL_GRAPH_MAX_ARGS) args[n++] = x;
  }
  if (!ok) return -1;
  /* -1 axis defaults and keepdims normalisation keep the memo canonical */
  char err[512];
  int32_t id = tl_graph_add(p->g, op, &a, args, n, open.loc, err, sizeof err);
  if (id < 0) tl_diag_error(p->d, open.loc, "%s", err);
  return id;
}

static int32_t parse_expr(parser *p) {
  tl_tok t = next(p);
  switch (t.kind) {
  case TK_NAME: {
    binding *b = lookup(p, t.text, t.len);
    if (!b) {
      tl_diag_error(p->d, t.loc, "undefined name '%.*s'", (int)t.len, t.text);
      return -1;
    }
    return b->node;
  }
  case TK_NUMBER: {
    double f;
    int64_t i;
    bool is_int;
    if (!tl_tok_number(&t, &f, &i, &is_int)) {
      tl_diag_error(p->d, t.loc, "integer literal '%.*s' does not fit in i64", (int)t.len, t.text);
      return -1;
    }
    tl_attrs a;
    tl_attrs_init(&a);
    a.is_int = is_int;
    if (is_int) a.i = i;
    else a.f = f;
    char err[256];
    int32_t id = tl_graph_add(p->g, TL_OP_LIT, &a, NULL, 0, t.loc, err, sizeof err);
    if (id < 0) tl_diag_error(p->d, t.loc, "%s", err);
    return id;
  }
  case TK_LPAREN: return parse_call(p, t);
  default:
    expected(p, &t, "an expression (a name, a number or '(')");
    return -1;
  }
}

/* After '(' 'let', at '[': `[a b ...] expr` binds the results of one
 * call/cond/loop/scan run, in order (each a node of its own :out). */
static void parse_multi_let(parser *p, tl_tok open, int depth) {
  tl_tok names[64];
  int n = 0;
  next(p); /* '[' */
  for (;;) {
    tl_tok t = next(p);
    if (t.kind == TK_RBRACK) break;
    if (t.kind != TK_NAME || n == 64) {
      if (n == 64) tl_diag_error(p->d, t.loc, "a let binds at most 64 names");
      else expected(p, &t, "a name or ']'");
      skip_to_depth(p, depth);
      return;
    }
    names[n++] = t;
  }
  int32_t x = parse_expr(p);
  bool ok = x >= 0;
  if (ok && tl_ops[p->g->nodes[x].op].kind != TL_KIND_CONTROL) {
    tl_diag_error(p->d, open.loc, "let [..] binds the results of a call, cond, loop or scan, not of a %s",
                  tl_ops[p->g->nodes[x].op].name);
    ok = false;
  }
  if (ok && (p->g->nodes[x].attrs.out != 0 || tl_control_nresults(p->g, &p->g->nodes[x]) != n)) {
    tl_diag_error(p->d, open.loc, "let [..] names %d value%s but the %s has %d result%s (and no :out)", n,
                  n == 1 ? "" : "s", tl_ops[p->g->nodes[x].op].name, tl_control_nresults(p->g, &p->g->nodes[x]),
                  tl_control_nresults(p->g, &p->g->nodes[x]) == 1 ? "" : "s");
    ok = false;
  }
  for (int k = 0; k < n; k++) {
    int32_t id = -1;
    if (ok) {
      tl_node nd = p->g->nodes[x];
      nd.attrs.out = k;
      if (k) nd.attrs.present |= TL_A_OUT;
      int32_t args[TL_GRAPH_MAX_ARGS];
      memcpy(args, tl_node_inputs(p->g, &nd), nd.ninputs * sizeof *args);
      char err[512];
      id = tl_graph_add(p->g, nd.op, &nd.attrs, args, nd.ninputs, open.loc, err, sizeof err);
      if (id < 0) tl_diag_error(p->d, open.loc, "%s", err);
    }
    char *nm = tl_xstrndup(names[k].text, names[k].len);
    if (bind(p, &names[k], id) && id >= 0) tl_graph_add_let(p->g, nm, id);
    tl_free(nm);
  }
  tl_tok close = next(p);
  if (close.kind != TK_RPAREN) {
    if (close.kind == TK_EOF) unclosed(p, open.loc);
    else expected(p, &close, "')' to end the let");
    skip_to_depth(p, depth);
  }
}

static void parse_item(parser *p) {
  tl_tok open = next(p);
  int depth = p->depth - 1;
  if (open.kind != TK_LPAREN) {
    expected(p, &open, "'(' to start an item (in, let or out)");
    return;
  }
  tl_tok kw = next(p);
  if (kw.kind != TK_NAME || !(tl_tok_is(&kw, "in") || tl_tok_is(&kw, "let") || tl_tok_is(&kw, "out"))) {
    expected(p, &kw, "'in', 'let' or 'out'");
    skip_to_depth(p, depth);
    return;
  }
  if (tl_tok_is(&kw, "let") && peek(p).kind == TK_LBRACK) {
    parse_multi_let(p, open, depth);
    return;
  }
  tl_tok name = next(p);
  if (name.kind != TK_NAME) {
    expected(p, &name, "a name");
    skip_to_depth(p, depth);
    return;
  }
  char *nm = tl_xstrndup(name.text, name.len);
  if (tl_tok_is(&kw, "in")) {
    tl_type ty;
    memset(&ty, 0, sizeof ty);
    int dt = parse_dtype(p);
    int rank = 0;
    if (dt < 0 || !parse_dims(p, ty.dims, &rank, false)) {
      bind(p, &name, -1);
      skip_to_depth(p, depth);
      tl_free(nm);
      return;
    }
    ty.dtype = (uint8_t)dt;
    ty.rank = (uint8_t)rank;
    double lo = -INFINITY, hi = INFINITY;
    bool ranged = false;
    if (peek(p).kind == TK_KEYWORD) {
      /* `:range LO HI`: every element lies in [LO, HI] (the graph's
       * promise, as an FPBench precondition: the optimizer's guards may
       * rely on it; nothing checks it at run time) */
      tl_tok kw2 = next(p);
      tl_tok t1, t2;
      double f;
      int64_t iv;
      bool is_int;
      if (!tl_tok_is(&kw2, "range")) {
        tl_diag_error(p->d, kw2.loc, "unknown input attribute ':%.*s' (an input takes :range LO HI)",
                      (int)kw2.len, kw2.text);
        bind(p, &name, -1);
        skip_to_depth(p, depth);
        tl_free(nm);
        return;
      }
      bool ok = number_tok(p, &t1, &f, &iv, &is_int);
      lo = is_int ? (double)iv : f;
      ok = ok && number_tok(p, &t2, &f, &iv, &is_int);
      hi = is_int ? (double)iv : f;
      if (ok && !(lo <= hi)) {
        tl_diag_error(p->d, t1.loc, "empty range: %.*s > %.*s (or NaN)", (int)t1.len, t1.text, (int)t2.len, t2.text);
        ok = false;
      }
      if (ok && !tl_dtype_is_float((tl_dtype)dt)) {
        tl_diag_error(p->d, kw2.loc, ":range is for float inputs");
        ok = false;
      }
      if (!ok) {
        bind(p, &name, -1);
        skip_to_depth(p, depth);
        tl_free(nm);
        return;
      }
      ranged = true;
    }
    int32_t id = lookup(p, name.text, name.len) ? -1 : tl_graph_add_input(p->g, nm, &ty, open.loc);
    if (id >= 0 && ranged) tl_graph_set_range(p->g, id, lo, hi);
    bind(p, &name, id);
  } else {
    int32_t x = parse_expr(p);
    if (tl_tok_is(&kw, "let")) {
      if (bind(p, &name, x) && x >= 0) tl_graph_add_let(p->g, nm, x);
    } else {
      if (bind(p, &name, x) && x >= 0) tl_graph_add_output(p->g, nm, x);
    }
  }
  tl_free(nm);
  tl_tok close = next(p);
  if (close.kind != TK_RPAREN) {
    if (close.kind == TK_EOF)
      unclosed(p, open.loc);
    else
      expected(p, &close, "')' to end the item");
    skip_to_depth(p, depth);
  }
}

/* After '(' ('graph' | 'func'): NAME item* ')' into a new graph. */
static tl_graph *parse_form(parser *p, tl_tok open, tl_tok kw) {
  tl_tok name = next(p);
  if (name.kind != TK_NAME) {
    expected(p, &name, kw.text[0] == 'f' ? "the function's name" : "the graph's name");
    skip_to_depth(p, 0);
    return NULL;
  }
  bool is_fn = tl_tok_is(&kw, "func");
  if (is_fn && tl_fns_find(p->fns, name.text, name.len) >= 0) {
    tl_diag_error(p->d, name.loc, "function '%.*s' is defined twice", (int)name.len, name.text);
    skip_to_depth(p, 0);
    return NULL;
  }
  int errors0 = p->d->nerrors;
  char *gname = tl_xstrndup(name.text, name.len);
  p->g = tl_graph_new(gname);
  tl_free(gname);
  if (is_fn) p->g->fns = p->fns; /* weakly: the table will hold it */
  else tl_graph_set_fns(p->g, p->fns);
  scope saved = p->scope;
  memset(&p->scope, 0, sizeof p->scope); /* names are local to a form */
  for (;;) {
    tl_tok t = peek(p);
    if (t.kind == TK_RPAREN) {
      next(p);
      break;
    }
    if (t.kind == TK_EOF) {
      unclosed(p, open.loc);
      break;
    }
    parse_item(p);
  }
  tl_free(p->scope.b);
  tl_free(p->scope.slot);
  tl_free(p->scope.pool);
  p->scope = saved;
  tl_graph *g = p->g;
  p->g = NULL;
  if (p->d->nerrors == errors0 && g->noutputs == 0)
    tl_diag_error(p->d, name.loc, "%s '%s' has no outputs", is_fn ? "function" : "graph", g->name);
  if (p->d->nerrors > errors0) {
    tl_graph_free(g);
    return NULL;
  }
  return g;
}

tl_graph *tl_tg_parse(const char *src, size_t len, tl_diag *d) {
  parser p = {.d = d};
  tl_lex_init(&p.lx, src, len);
  int errors0 = d->nerrors;
  tl_graph *main = NULL;
  bool seen_graph = false;
  for (;;) {
    tl_tok t = next(&p);
    if (t.kind == TK_EOF) {
      if (!seen_graph && d->nerrors == errors0)
        tl_diag_error(d, t.loc, p.fns ? "expected (graph NAME ...) after the functions"
                                      : "empty file: expected (graph NAME ...)");
      break;
    }
    if (t.kind != TK_LPAREN) {
      char b[64];
      if (seen_graph) tl_diag_error(d, t.loc, "unexpected %s after the end of the graph", tok_desc(&t, b, sizeof b));
      else expected(&p, &t, "'(graph NAME ...)'");
      break;
    }
    tl_tok kw = next(&p);
    if (seen_graph) {
      tl_diag_error(d, t.loc, "unexpected '(' after the end of the graph (functions come before it)");
      break;
    }
    if (tl_tok_is(&kw, "func")) {
      if (!p.fns) p.fns = tl_fns_new();
      tl_graph *f = parse_form(&p, t, kw);
      if (f) tl_fns_add(p.fns, f);
      continue;
    }
    if (!tl_tok_is(&kw, "graph")) {
      expected(&p, &kw, p.fns ? "'graph' or 'func'" : "'graph'");
      break;
    }
    seen_graph = true;
    main = parse_form(&p, t, kw);
    if (!main && d->nerrors == errors0) break;
  }
  tl_fns_release(p.fns); /* the graph holds its own reference */
  if (d->nerrors > errors0) {
    tl_graph_free(main);
    return NULL;
  }
  return main;
}

int tl_tg_parse_attr(tl_graph *g, int op, const char *text, size_t len, tl_attrs *a, char *err,
                     size_t err_size) {
  tl_diag d;
  tl_diag_init(&d, "attribute", text, len);
  parser p = {.d = &d, .g = g};
  tl_lex_init(&p.lx, text, len);
  int rc = 0;
  if (peek(&p).kind != TK_KEYWORD) {
    tl_tok t = peek(&p);
    expected(&p, &t, "':name value'");
    rc = -1;
  } else if (!parse_attr(&p, op, a)) {
    rc = -1;
  } else if (peek(&p).kind != TK_EOF) {
    tl_tok t = peek(&p);
    expected(&p, &t, "the end of the attribute value");
    rc = -1;
  }
  if (rc) {
    /* first line of the diagnostic, without the "attribute:1:c: error: " */
    const char *m = tl_diag_text(&d), *e = strstr(m, "error: ");
    m = e ? e + 7 : m;
    size_t n = strcspn(m, "\n");
    snprintf(err, err_size, "%.*s", (int)n, m);
  }
  tl_diag_free(&d);
  return rc;
}

tl_graph *tl_tg_load(const char *path, FILE *diag_out) {
  char err[512];
  size_t len;
  char *src = tl_read_file(path, &len, err, sizeof err);
  if (!src) {
    fprintf(diag_out, "tlaloc: %s\n", err);
    return NULL;
  }
  tl_diag d;
  tl_diag_init(&d, path, src, len);
  tl_graph *g = tl_tg_parse(src, len, &d);
  fputs(tl_diag_text(&d), diag_out);
  tl_diag_free(&d);
  tl_free(src);
  return g;
}
