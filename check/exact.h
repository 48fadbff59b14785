/* exact.h - the exact value of an elementwise graph at one point, with
 * MPFR: the reference that judges rules claiming to improve accuracy
 * (check-rules) and the FPBench benchmark (bench/accuracy). Every node is
 * evaluated at 256 bits, then at twice the precision until two precisions
 * round to the same f64 and no add or sub lost bits the precision could
 * not hold (1 + 1e-300 - 1 is 0 at 256 and at 512 bits: a cancellation
 * beyond the precision, or an operand too small to fit beside the other),
 * up to 16384 bits. The graph's ops must be elementwise (inputs, literals and
 * the elementwise rows of the op table); numbers are exact, f32 and f64
 * alike (the reference of the real-number semantics). */
#ifndef TL_CHECK_EXACT_H
#define TL_CHECK_EXACT_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "tensor/tensor.h"

/* Whether every node of g is one tl_exact_elem can evaluate. */
bool tl_exact_supports(const tl_graph *g);

/* The exact value of node `id` of g at its element `elem` (a flat index
 * into id's shape; operands broadcast to it as numpy does), rounded to
 * f64, from the input tensors (ins[i]: g's input i, any dtype). 0 and the
 * value in *out; 1 when the precision never settled; -1 when g has an op
 * it cannot evaluate. */
int tl_exact_elem(const tl_graph *g, tl_tensor *const *ins, int32_t id, int64_t elem, double *out);

#endif
