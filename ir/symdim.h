/* symdim.h - symbolic dims with arithmetic: sums, differences, products
 * and floor/ceil divisions of symbols and integers.
 *
 * A derived dim is a symbol of the graph's table like `n`, whose name is
 * its canonical form, written as an s-expression: `(+ d -1)`, `(* n d)`,
 * `(floordiv (+ n 1) 2)`. Canonical means that equal polynomials get the
 * same text, so the same symbol id: d - 1 from a slice and d + -1 from a
 * concat are one dim, and comparing dims stays comparing int64s. Because
 * the name is the definition, code that copies a table by names
 * (tl_graph_sym) copies the definitions too.
 *
 * Each symbol has a definition (tl_symdef): a base symbol is bound from
 * the inputs; a polynomial is a sum of coefficient * product of atoms (base
 * symbols or divisions); a division divides one dim by another. Every
 * symbol's operands come before it in the table, so the values are
 * computed in id order (tl_syms_eval, called by tl_bind_inputs).
 *
 * A derived dim must not be negative: interning one is also a promise
 * checked at bind time. Slicing a symbolic dim relies on it: x[2:] of
 * [n] is [(+ n -2)] and needs n >= 2; x[:3] is [3] and interns (+ n -3)
 * only to check n >= 3 (numpy would clamp; a graph compiled for any n
 * cannot). */
#ifndef TL_SYMDIM_H
#define TL_SYMDIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tl_graph;

enum { TL_SYM_BASE, TL_SYM_POLY, TL_SYM_FLOORDIV, TL_SYM_CEILDIV };
#define TL_SYM_TERMS 8 /* terms of a polynomial */
#define TL_SYM_DEG 4   /* atoms of one term */

typedef struct tl_symdef {
  uint8_t kind;
  uint8_t nterms;
  uint8_t deg[TL_SYM_TERMS];
  int64_t coef[TL_SYM_TERMS];
  int32_t atom[TL_SYM_TERMS][TL_SYM_DEG]; /* symbol ids, sorted by name */
  int64_t num, den;                       /* a division's operands (dims) */
} tl_symdef;

enum { TL_DIM_ADD, TL_DIM_SUB, TL_DIM_MUL, TL_DIM_FLOORDIV, TL_DIM_CEILDIV };

/* A dim not bound to anything yet (maps between symbol tables). */
#define TL_DIM_NONE INT64_MAX

/* *out = a OP b in canonical form (a constant, an existing symbol, or a new
 * derived symbol of g). -1 with a message when the result would be a
 * negative constant, a division by zero or a non-positive constant, or a
 * polynomial larger than TL_SYM_TERMS x TL_SYM_DEG. */
int tl_dim_arith(struct tl_graph *g, int op, int64_t a, int64_t b, int64_t *out, char *err, size_t n);
/* The same for an integer operand that may be negative (a - 3 as a + -3). */
int tl_dim_add_int(struct tl_graph *g, int64_t a, int64_t k, int64_t *out, char *err, size_t n);
/* Parses one dim: an integer, a name, or an expression `(+ ...)`, `(- a
 * b)`, `(* ...)`, `(floordiv a b)`, `(ceildiv a b)` (text of len bytes). */
int tl_dim_parse(struct tl_graph *g, const char *text, size_t len, int64_t *out, char *err, size_t n);

/* Whether symbol s is derived (not bound from the inputs). */
bool tl_sym_derived(const struct tl_graph *g, int s);
/* Fills syms[] for every derived symbol whose operands are bound (others
 * stay -1); -1 with a message naming the dim when one is negative or
 * divides by zero. */
int tl_syms_eval(const struct tl_graph *g, int64_t *syms, char *err, size_t n);
/* Binds every base symbol s of g to size + step * s and computes the
 * derived ones (tools and tests that run a graph at one size); -1 as
 * tl_syms_eval. */
int tl_syms_at(const struct tl_graph *g, int64_t *syms, int64_t size, int64_t step, char *err, size_t n);
/* The value of dim d under syms, computing derived symbols on the way; -1
 * when something it needs is unbound. */
int64_t tl_dim_value(const struct tl_graph *g, int64_t d, const int64_t *syms);

/* map[s] holds the dim of `to` that symbol s of `from` stands for, or
 * TL_DIM_NONE; fills it for every derived symbol of `from` whose operands
 * are mapped (interning in `to` as needed). */
int tl_syms_map(struct tl_graph *to, const struct tl_graph *from, int64_t *map, char *err, size_t n);

/* C statements that compute g's derived symbols in array `arr` (already
 * holding the base ones; -1 where unknown) and `return -1;` when one is
 * negative, divides by zero or differs from a value arr already holds:
 * for generated code, which has no tlaloc. */
void tl_syms_emit_c(const struct tl_graph *g, FILE *f, const char *arr);

#endif
