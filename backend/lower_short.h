/* lower_short.h - what the short-row lowerings share: softmax blocks
 * (lower_short.c) and sums (lower_sums.c). A block of rows (srow) and the
 * vector helpers both emit with; the halving tree that reduces a block's
 * rows across lanes; the loops over groups and over staged blocks of
 * rows. */
#ifndef TLALOC_BACKEND_LOWER_SHORT_H
#define TLALOC_BACKEND_LOWER_SHORT_H

#include "backend/lower_internal.h"

typedef struct srow {
  int dt;
  int W;     /* lanes of a vector (VW) */
  int64_t d; /* the row length, or 0 when symbolic */
  bool soft;
  bool mean; /* sums: divide by the row length */
  int odt;   /* sums: the output's dtype */
  LLVMTypeRef et, vt;
  LLVMValueRef step[6]; /* symbolic: butterfly step i (partner 2^i lanes away) is inside a row */
  LLVMValueRef src, dst;
  LLVMValueRef dv;   /* the row length (i64) */
  LLVMValueRef invd; /* symbolic flat blocks: 1 / d in f32 lanes, for the images' row numbers */
  LLVMValueRef itbl; /* symbolic flat blocks: the images' permute indices (sym_table) */
  LLVMValueRef mv;   /* symbolic sums: the vectors a row (i64) */
} srow;

enum { MAXV = 32, MAXM = 4 /* vectors a row of a flat block */ };

/* The longest rows summed here: four f64 vectors with AVX-512, eight with
 * AVX2, where rows of 24 and 32 f32 ran the row passes at 0.22-0.23x the
 * per-element speed of rows of 1024 and run at 0.94-1.07x this way
 * (x86-64-v3 objects, min of 300 x 20 calls, Sapphire Rapids). Longer
 * rows are the row passes'. */
enum { SUMMAX = 32 };

/* A vector of L lanes holding L/g rows of g partials each: segment k
 * (lanes [k g, k g + g)) holds row rows[k]'s. */
typedef struct rowvec {
  LLVMValueRef v;
  int g;
  int rows[64];
} rowvec;

typedef void group_fn(em *e, const srow *s, LLVMValueRef off, LLVMValueRef n);
typedef void block_fn(em *e, const srow *s, LLVMValueRef off, LLVMValueRef row);

/* c (a constant) in n lanes */
LLVMValueRef sr_splat_n(em *e, LLVMValueRef c, int n);
/* A vector load at p: masked (masked-off lanes 0) when mask, else plain. */
LLVMValueRef sr_vload(em *e, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef mask, unsigned al);
/* A vector store at p, masked when mask */
void sr_vstore(em *e, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef v, LLVMValueRef mask, unsigned al);
/* v (a value) in n lanes */
LLVMValueRef sr_splat_v(em *e, LLVMValueRef v, int n);
/* lanes [0, n) of W (n: i64) */
LLVMValueRef sr_lanes_below(em *e, int W, LLVMValueRef n);
/* The lanes of the vector starting at element start that hold one of the
 * first n elements (both i64) */
LLVMValueRef sr_lanes_from(em *e, int W, LLVMValueRef n, LLVMValueRef start);
/* Rows [r0, r1) in groups of per rows (a loop; the last group partial
 * unless whole) through fn */
void sr_groups(em *e, const srow *s, LLVMValueRef r0, LLVMValueRef r1, LLVMValueRef per, LLVMValueRef dv, group_fn *fn,
               bool whole);
/* Rows [r0, r1) in blocks of VW rows through fn, nblk blocks a call, the
 * last, partial group staged on the stack (lower_short.c says how) */
void sr_staged_blocks(em *e, const srow *s, LLVMValueRef r0, LLVMValueRef r1, block_fn *fn, int nblk, bool per_row);
/* What sr_call_outlined emits into a function of its own: rows [r0, r1)
 * of s, whose src, dst and dv are that function's parameters */
typedef void outlined_body(em *e, srow *s, LLVMValueRef r0, LLVMValueRef r1);
/* Emits void f(src, dst, r0, r1, d), named the kernel's name and suffix,
 * with body, and a call of it on s0's src, dst and dv at the builder's
 * place in the kernel (lower_short.c says why) */
void sr_call_outlined(em *e, const srow *s0, const char *suffix, outlined_body *body, LLVMValueRef r0, LLVMValueRef r1);
/* Two vectors of rows of g partials combined into one of rows of g/2 */
rowvec sr_halve(em *e, const rowvec *a, const rowvec *b, int L, bool max);
/* A vector of L rows of one value each with lane r row r's */
LLVMValueRef sr_rows_in_order(em *e, const rowvec *c, int L);
/* leaf i of an L-leaf halving tree is row order[i]: the result comes out in row order */
void sr_leaf_order(int L, int *order);
/* L vectors (vector r: row r's partials) reduced to one whose lane r is
 * row r's sum or max */
LLVMValueRef sr_halving_tree(em *e, LLVMValueRef *v, int L, bool max);

#endif
