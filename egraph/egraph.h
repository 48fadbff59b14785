/* egraph.h - tlaloc's language-generic e-graph: hash-consed e-nodes, union-find,
 * deferred rebuilding and e-class analyses (Willsey et al., "egg: Fast and
 * Extensible Equality Saturation", POPL 2021).
 *
 *   eg_egraph *g = eg_new((eg_params){.lang = &eg_math_lang, .analysis = &a});
 *   eg_id x = eg_add(g, MATH_SYM, eg_attr_intern(g, "x", 1), NULL, 0);
 *   eg_id two = eg_add_term(g, "(* 2 x)", err, sizeof err);
 *   eg_union(g, x, two); eg_rebuild(g);          // congruence restored here
 *   eg_free(g);
 *
 * An e-node is (op: u16, attr: u32 interned attribute id, children: e-class
 * ids). The engine never interprets ops: a language descriptor (eg_lang) names
 * them and parses/prints leaf payloads, an analysis vtable (eg_analysis)
 * gives every e-class a fixed-size data value. No global state: two
 * e-graphs on two threads are independent. Class ids are dense u32, node ids
 * arena offsets, never pointers, so arenas can grow by realloc. */
#ifndef TL_EGRAPH_H
#define TL_EGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t eg_id;
#define EG_NONE UINT32_MAX
#define EG_ATTR_NONE 0u /* interned id of the empty attribute (0 bytes) */
#define EG_ATTR_MAX 512 /* largest attribute payload in bytes */

typedef struct eg_egraph eg_egraph;

/* One ":key value" pair of a pattern or term, as source text. */
typedef struct eg_kv {
  const char *key, *val;
  size_t keylen, vallen;
} eg_kv;

/* A language: the op table the e-graph runs over. Strings are borrowed. */
typedef struct eg_lang {
  const char *name;
  int nops;
  const char *const *op_names; /* nops names */
  const int *arity;            /* nops entries; -1 = variadic (>= 1 child) */
  /* Token that is not "(" or "?var": writes its op and payload bytes into
   * attr (EG_ATTR_MAX bytes); returns the payload length, -1 if not a leaf. */
  int (*parse_leaf)(const struct eg_lang *l, const char *tok, size_t n, int *op, uint8_t *attr);
  /* ":key value" pairs of an op into payload bytes; returns the length or -1
   * with a message in err. NULL: the language has no attributes. */
  int (*parse_attrs)(const struct eg_lang *l, int op, const eg_kv *kv, int nkv, uint8_t *attr, char *err, size_t errsz);
  /* Prints op + payload (a leaf's token, or "op" followed by " :key v").
   * Returns the snprintf-style length. NULL: the op name alone. */
  int (*print_head)(const struct eg_lang *l, int op, const uint8_t *attr, size_t n, char *buf, size_t size);
  /* Built-in opclasses for rule files (tensor ops: the fusion classes of
   * the op table): class k (1 <= k < nclasses) is named class_names[k] and
   * holds every op whose op_class[op] is k. nclasses 0: none. */
  int nclasses;
  const char *const *class_names;
  const uint8_t *op_class; /* nops entries */
  /* What control-flow rules may name (rules.h); NULL: rule files of this
   * language have none. */
  const struct eg_control_lang *control;
  void *ctx;
} eg_lang;

/* eg_analysis.merge result flags, as egg's DidMerge. */
enum { EG_MERGE_TO = 1, EG_MERGE_FROM = 2 };

/* An e-class analysis (egg section 4). Each class has a data_size-byte
 * value. Values are interned: equal blobs are stored once and a class holds a
 * 4-byte handle, so data should be a plain value (no pointers to owned
 * memory) whose unused bytes make() leaves alone (the engine zeroes the blob
 * before make). A class's value only moves up by merge, so the distinct
 * values ever stored stay few (the lattice's height per class at most). */
typedef struct eg_analysis {
  size_t data_size;
  /* Data of a new e-node into out (zeroed); kids may be non-canonical (use
   * eg_data). Must not add to or union in the e-graph. */
  void (*make)(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n, void *out, void *ctx);
  /* Joins from into to (a scratch copy of the class's value); EG_MERGE_TO
   * if to changed, EG_MERGE_FROM if the result differs from `from`. */
  unsigned (*merge)(eg_egraph *g, void *to, const void *from, void *ctx);
  /* Called after a class's data changes or it absorbs another (may add and
   * union, e.g. constant folding). NULL: none. */
  void (*modify)(eg_egraph *g, eg_id cls, void *ctx);
  /* true: the two classes must not merge (dtype/shape clash); writes why.
   * The union is refused and logged with the current reason. NULL: never. */
  bool (*refuse)(eg_egraph *g, const void *a, const void *b, char *why, size_t n, void *ctx);
  void *ctx;
} eg_analysis;

typedef struct eg_params {
  const eg_lang *lang;         /* required, must outlive the e-graph */
  const eg_analysis *analysis; /* NULL: no analysis; must outlive */
  uint64_t seed;               /* XXH3 seed; runs are reproducible per seed */
  bool explain;                /* record a proof forest (eg_explain) */
  bool immediate_rebuild;      /* restore congruence after every union */
  bool check;                  /* eg_check after every rebuild (tests) */
} eg_params;

/* Why two classes were merged (explanations, refusal reports). */
enum { EG_WHY_USER, EG_WHY_CONGRUENCE, EG_WHY_RULE, EG_WHY_ANALYSIS };
typedef struct eg_reason {
  int kind;
  const char *name; /* rule or analysis name; borrowed for the call only */
  bool backward;    /* rule applied right-to-left (a `<=>` rule) */
} eg_reason;

/* A stored e-node: a 12-byte head, followed in the node arena by its n child
 * ids (eg_node_kids). A node id is the node's word offset in that arena, so
 * node ids are not dense. Valid until the next add/union/rebuild. */
typedef struct eg_node {
  uint16_t op, n;
  uint32_t attr;
  uint32_t cls; /* id created with this node (its class is eg_find(cls)) */
} eg_node;

eg_egraph *eg_new(eg_params p); /* NULL on allocation failure */
void eg_free(eg_egraph *g);
const eg_lang *eg_lang_of(const eg_egraph *g);

/* Interns payload bytes (n <= EG_ATTR_MAX); equal bytes give equal ids. */
uint32_t eg_attr_intern(eg_egraph *g, const void *bytes, size_t n);
const uint8_t *eg_attr_bytes(const eg_egraph *g, uint32_t id, size_t *n);

/* Adds op(kids) with attribute id attr (or finds it: hash-consing). The
 * result may already be non-canonical if an analysis merged it; with
 * explanations on, every distinct original term gets its own id. */
eg_id eg_add(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n);
/* eg_add then eg_union(into, the result), in one step: a new node joins
 * into's class (*added true; returns into's root) instead of getting a
 * class of its own; a found one's class is returned for the caller to
 * unite (*added false). The new node's make() data merges into the class,
 * the analysis's refuse sees that data (refused: eg_add's own class, for
 * the union to refuse) and modify runs on the class, as after a union.
 * With explanations on, it is eg_add (the proof needs the node's own id). */
eg_id eg_add_into(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n, eg_id into, bool *added);
/* The class of op(kids) if present (kids canonicalised), else EG_NONE. */
eg_id eg_lookup(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n);
/* Canonical id (path halving). */
eg_id eg_find(eg_egraph *g, eg_id id);

/* Merges two classes; false if already equal or refused. Congruence is
 * restored by eg_rebuild (or at once in immediate mode). */
bool eg_union(eg_egraph *g, eg_id a, eg_id b);
bool eg_union_why(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why);
/* Restores the congruence and analysis invariants; returns #unions done. */
size_t eg_rebuild(eg_egraph *g);
bool eg_is_clean(const eg_egraph *g);
/* Starts a new epoch (the runner: one per iteration, before its searches);
 * each e-node records the epoch in which it was added, joined its class (its
 * old class merged into another) or was re-canonicalised. Returns it. */
uint32_t eg_next_epoch(eg_egraph *g);

/* Full invariant check; on failure writes a message and returns false. */
bool eg_check(eg_egraph *g, char *err, size_t errsz);

/* Sizes. enodes: nodes in class lists; memo: live hash-cons entries;
 * total: hash-cons insertions ever (egg 0.9.5's total_size(), which keeps
 * stale keys: the node limit is checked against it for parity with egg). */
size_t eg_nclasses(const eg_egraph *g);
size_t eg_nenodes(const eg_egraph *g);
size_t eg_memo_size(const eg_egraph *g);
size_t eg_total_size(const eg_egraph *g);
size_t eg_bytes(const eg_egraph *g);           /* bytes held by the arenas now */
size_t eg_peak_bytes(const eg_egraph *g);      /* high-water mark of eg_bytes */
size_t eg_analysis_bytes(const eg_egraph *g);  /* of which analysis data */
size_t eg_analysis_values(const eg_egraph *g); /* distinct analysis values */
size_t eg_nids(const eg_egraph *g);            /* ids ever made (classes+merged) */
/* Node records ever stored: live, pruned by eg_class_retain, and dead
 * duplicates that rebuild dropped (egg keeps all of them too). */
size_t eg_nodes_stored(const eg_egraph *g);

/* Where eg_bytes goes: the capacity of each structure now. Capacities never
 * shrink, so (without explanations) eg_bytes is also the peak and this is
 * the breakdown at the peak. The fields add up to total. */
typedef struct eg_mem {
  size_t fixed;       /* the eg_egraph record */
  size_t nodes;       /* e-node records (eg_node) */
  size_t kids;        /* child ids of the records */
  size_t memo;        /* the hash-cons table */
  size_t ids;         /* per id: union-find parent, flags, class block offset */
  size_t lists;       /* class node and parent lists (the list pool) */
  size_t lists_free;  /*   of which free: freed blocks and the pool's tail */
  size_t index;       /* op index (classes by op) and the list of roots */
  size_t work;        /* worklists and scratch (rebuild queues, sort buffer) */
  size_t attrs;       /* interned attribute payloads */
  size_t analysis;    /* per-id value handles and the distinct values */
  size_t explain;     /* proof forest (only with eg_params.explain) */
  size_t total;       /* eg_bytes */
  size_t compactions; /* times the list pool was compacted (not bytes) */
} eg_mem;
void eg_mem_usage(const eg_egraph *g, eg_mem *m);

/* Class contents (canonical id expected); arrays valid until mutation. */
const eg_node *eg_get_node(const eg_egraph *g, uint32_t nid);
const eg_id *eg_node_kids(const eg_egraph *g, const eg_node *nd);
const uint32_t *eg_class_nodes(const eg_egraph *g, eg_id cls, uint32_t *n);
/* Analysis data of find(id) (NULL without an analysis). Read-only: classes
 * share values. Valid until the next add or union. */
const void *eg_data(eg_egraph *g, eg_id id);
/* Keeps only the nodes of class cls for which keep() is true (egg's
 * `nodes.retain`): the removed nodes stay in the hash-cons. */
void eg_class_retain(eg_egraph *g, eg_id cls, bool (*keep)(const eg_egraph *, const eg_node *, void *), void *ctx);
/* Classes containing op (after a rebuild); the op index of e-matching.
 * op -1: every class with a node. */
const eg_id *eg_classes_with_op(eg_egraph *g, int op, uint32_t *n);

/* Refused unions since creation, and the first few messages. */
size_t eg_nrefused(const eg_egraph *g);
const char *eg_refusals(const eg_egraph *g);

/* Adds an s-expression term in the language's syntax; EG_NONE + message. */
eg_id eg_add_term(eg_egraph *g, const char *text, char *err, size_t errsz);
/* Prints one node head (op + payload) into buf; returns length. */
int eg_print_head(const eg_egraph *g, int op, uint32_t attr, char *buf, size_t size);

#endif
