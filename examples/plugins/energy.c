/* energy.c - a cost plugin: an energy model, property `energy` in joules.
 *
 *   cc -shared -fPIC -I/path/to/tlaloc -I/path/to/tlaloc/include \
 *      -o energy.so examples/plugins/energy.c
 *   tlaloc opt G.tg --plugin ./energy.so --cost energy
 *
 * A node's energy is what its arithmetic and its memory traffic cost:
 *
 *   energy = PJ_PER_FLOP * flops + PJ_PER_BYTE * bytes
 *          + PJ_PER_TRANSCENDENTAL * (elements of exp/log/tanh/... )
 *
 * reading this node's built-in `flops` and `bytes` (registered before it)
 * and counting transcendental elements from the op's work (the elements
 * that carry per-element math in the machine profile). The constants are orders of magnitude for a CPU, not
 * measurements: an f32 fused multiply-add costs a few picojoules, moving a
 * byte between DRAM and the core tens of picojoules, a vectorised exp or
 * log some tens of flops' worth. Moving data dominates, so this model
 * prefers programs that touch fewer bytes even when they do more
 * arithmetic, where `time` (a roofline in which the GEMM rate is high)
 * may not.
 *
 * The plugin links nothing of tlaloc: it registers through the table it is
 * given (cost/cost.h), and keeps its per-registry data (the property
 * ids) with api->keep, so two optimizers may load it at once. */
#include <stdio.h>
#include <stdlib.h>

#include "cost/cost.h"

#define PJ_PER_FLOP 2.0
#define PJ_PER_BYTE 64.0
#define PJ_PER_TRANSCENDENTAL 20.0

typedef struct energy_ctx {
  int flops, bytes, energy; /* property ids in this registry */
} energy_ctx;

static double energy(const tl_cost_node *n, void *user) {
  const energy_ctx *c = user;
  /* the op's work as the time model sees it: elements of exp/log/... carry math */
  double transcendental = n->work->math_ns > 0 ? n->work->elems : 0;
  double pj = PJ_PER_FLOP * n->self[c->flops] + PJ_PER_BYTE * n->self[c->bytes] +
              PJ_PER_TRANSCENDENTAL * transcendental;
  /* a term's energy: this node's plus its operands' (additive, so monotone) */
  double total = pj * 1e-12;
  for (int k = 0; k < n->nin; k++) total += n->in[k][c->energy];
  return total;
}

int tlaloc_plugin_init(const tl_cost_api *api, char *err, size_t n) {
  if (api->version != TL_COST_API_VERSION) {
    snprintf(err, n, "energy plugin built for cost API %d, tlaloc has %d", TL_COST_API_VERSION,
             api->version);
    return 1;
  }
  energy_ctx *c = malloc(sizeof *c);
  if (!c) {
    snprintf(err, n, "energy plugin: out of memory");
    return 1;
  }
  c->flops = api->find(api->registry, "flops");
  c->bytes = api->find(api->registry, "bytes");
  api->keep(api->registry, c, free);
  if (c->flops < 0 || c->bytes < 0) {
    snprintf(err, n, "energy plugin: the registry has no 'flops' or 'bytes' property");
    return 1;
  }
  c->energy = api->add_property(api->registry, "energy", TL_PROP_COST, energy, c, err, n);
  return c->energy < 0;
}
