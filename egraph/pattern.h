/* pattern.h - patterns over a language, and their compiled matching programs.
 *
 * A pattern is a term with ?variables, stored flat in post-order (the root is
 * last). `?x` in a child position binds an e-class; `:key ?a` binds the
 * node's attribute id (for now the whole attribute: a pattern with an
 * attribute variable takes no other :key). Repeated variables must bind the
 * same class (or equal attribute ids).
 *
 * Matching (egg section 5.1 and de Moura & Bjorner 2007): a pattern is
 * compiled once per e-graph into a short program of BIND (iterate the nodes of
 * a class with a given op, load the children into registers), CMP (two
 * registers hold the same class), LOOKUP (a register holds the class of a
 * ground sub-pattern, looked up once per search through the hash-cons) and
 * YIELD. A program is a flat loop with no per-match allocation, no recursion
 * over the pattern tree and no substitution maps; repeated variables cost one
 * compare, and ground parts are never searched. */
#ifndef TL_EGRAPH_PATTERN_H
#define TL_EGRAPH_PATTERN_H

#include "egraph/egraph.h"

enum { EG_PAT_VAR, EG_PAT_NODE };

typedef struct eg_pnode {
  uint8_t kind;     /* EG_PAT_VAR or EG_PAT_NODE */
  uint8_t attr_var; /* NODE: the attribute is variable `var` */
  uint16_t op;
  uint32_t n, kids;            /* NODE: n children, indices at pat->kids[kids..] */
  uint32_t var;                /* VAR (class variable) or attribute variable index */
  uint32_t attr_off, attr_len; /* NODE: fixed attribute bytes in pat->blob */
  int line, col;
} eg_pnode;

/* Variables of a rule (shared by its two sides) or of a lone pattern. */
typedef struct eg_vartab {
  char **names;
  uint8_t *is_attr;
  uint32_t n, cap;
} eg_vartab;

typedef struct eg_pattern {
  eg_pnode *nodes;
  uint32_t n;
  uint32_t *kids;
  uint32_t nkids;
  uint8_t *blob;
  uint32_t nblob;
} eg_pattern;

/* A standalone pattern (its own variables). NULL + message on error. */
typedef struct eg_pat {
  eg_pattern p;
  eg_vartab vars;
} eg_pat;
eg_pat *eg_pat_parse(const eg_lang *l, const char *text, char *err, size_t errsz);
void eg_pat_free(eg_pat *p);
void eg_pattern_clear(eg_pattern *p);
void eg_vartab_clear(eg_vartab *v);
int eg_vartab_find(const eg_vartab *v, const char *s, size_t n);             /* -1 */
uint32_t eg_vartab_add(eg_vartab *v, const char *s, size_t n, bool is_attr); /* its index */

/* Matches: records of (1 + width) u32 = class, then one slot per variable
 * (a class id, or an attribute id for attribute variables). Reused across
 * searches (eg_matches_clear keeps the buffer). */
typedef struct eg_matches {
  uint32_t *a;
  size_t n, cap; /* n records */
  uint32_t width;
} eg_matches;
void eg_matches_clear(eg_matches *m, uint32_t width);
void eg_matches_free(eg_matches *m);
static inline const uint32_t *eg_match_at(const eg_matches *m, size_t i) { return m->a + i * (1 + (size_t)m->width); }

/* A pattern compiled for one e-graph (its attributes interned there). The
 * pattern and vartab must outlive it. */
typedef struct eg_prog eg_prog;
eg_prog *eg_prog_new(eg_egraph *g, const eg_pattern *p, const eg_vartab *v);
void eg_prog_free(eg_prog *pr);
/* Appends matches to out; stops once more than limit matches were found
 * (SIZE_MAX: all). Requires a rebuilt e-graph. Returns the number found. */
size_t eg_prog_search(eg_egraph *g, eg_prog *pr, size_t limit, eg_matches *out);
/* The same in two steps, for searching several programs on threads:
 * eg_prog_prepare (on the e-graph's thread: rebuilds if needed, looks up the
 * pattern's ground parts and the op index) is false when the pattern cannot
 * match; eg_prog_search_prepared then only reads the e-graph and writes pr's
 * scratch and out, so different programs may run at once. try_alloc: grow out
 * with tl_try_realloc and, when that fails, stop and set *oom instead of
 * unwinding (a thread without a region cannot unwind); a block it allocated
 * belongs to no region until the caller's tl_adopt. */
bool eg_prog_prepare(eg_egraph *g, eg_prog *pr);
size_t eg_prog_search_prepared(const eg_egraph *g, eg_prog *pr, size_t limit, eg_matches *out, bool try_alloc,
                               bool *oom);
/* The caller applied every match the last search kept: that search is the
 * anchor of the skipping below. */
void eg_prog_applied(eg_prog *pr);
/* With on, searches from now on count every match but keep only those
 * binding an e-node stamped (eg_next_epoch) in or after the epoch in which
 * the anchor search ran: the others bind the same nodes, in the same
 * classes, with the same children as then, so that search found them too
 * and they were applied (or skipped as found by an earlier anchor). With no
 * anchor, a bare-variable or ground root, or ground parts whose classes
 * differ from the anchor's, all are kept. */
void eg_prog_skip_applied(eg_prog *pr, bool on);
/* No anchor: the next searches keep every match (until eg_prog_applied). */
void eg_prog_forget(eg_prog *pr);
/* Adds the pattern instantiated with subst (a match's slots); its class.
 * With into (not EG_NONE), a new top node is added into into's class
 * (eg_add_into; *added says so) where a union with into would follow. */
eg_id eg_prog_instantiate(eg_egraph *g, eg_prog *pr, const uint32_t *subst, eg_id into, bool *added);
/* Naive backtracking matcher over the pattern tree: the reference that the
 * tests compare the program against. */
size_t eg_pattern_search_naive(eg_egraph *g, const eg_pattern *p, const eg_vartab *v, eg_matches *out);

#endif
