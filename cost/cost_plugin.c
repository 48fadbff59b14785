/* cost/cost_plugin.c - cost plugins: a shared object whose entry point
 * registers properties and cost functions through a table of function
 * pointers, so the plugin links nothing of tlaloc (the tlaloc program links
 * the library statically and exports none of its symbols). See cost.h. */
#include "cost/cost.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static const char *op_name(int op) { return op >= 0 && op < TL_OP_COUNT ? tl_ops[op].name : NULL; }

static void close_plugin(void *handle) { dlclose(handle); }

int tl_cost_load_plugin(tl_cost_registry *r, const char *path, char *err, size_t n) {
  /* RTLD_LOCAL: two plugins may use the same symbol names */
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    snprintf(err, n, "plugin %s: cannot load it: %s", path, why ? why : "unknown error");
    return -1;
  }
  /* ISO C forbids casting void* to a function pointer; copy the bytes */
  void *sym = dlsym(h, TL_COST_PLUGIN_ENTRY);
  if (!sym) {
    snprintf(err, n, "plugin %s: has no '%s' (not a tlaloc cost plugin?)", path, TL_COST_PLUGIN_ENTRY);
    dlclose(h);
    return -1;
  }
  tl_cost_plugin_init init;
  memcpy(&init, &sym, sizeof init);
  /* kept before whatever the plugin keeps, so it is closed after its data */
  tl_cost_keep(r, h, close_plugin);
  tl_cost_api api = {
    .version = TL_COST_API_VERSION,
    .registry = r,
    .add_property = tl_cost_add_property,
    .register_fn = tl_cost_register,
    .find = tl_cost_find,
    .keep = tl_cost_keep,
    .node_work = tl_node_work,
    .kernel_time = tl_profile_kernel_time,
    .type_elems = tl_type_elems,
    .op_name = op_name,
  };
  char msg[512] = "";
  if (init(&api, msg, sizeof msg) != 0) {
    snprintf(err, n, "plugin %s: its init failed: %s", path, msg[0] ? msg : "(no message)");
    return -1;
  }
  return 0;
}
