/* cost/cost_plugin.c - cost plugins: a shared object whose entry point
 * registers properties and cost functions through a table of function
 * pointers, so the plugin links nothing of tlaloc (the tlaloc program links
 * the library statically and exports none of its symbols). See cost.h. */
#include "cost/cost.h"
#include "util/util.h"

#include <dlfcn.h>
#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *op_name(int op) { return op >= 0 && op < TL_OP_COUNT ? tl_ops[op].name : NULL; }

static void close_plugin(void *handle) { dlclose(handle); }

#if UINTPTR_MAX > 0xffffffffu
typedef Elf64_Ehdr elf_ehdr;
typedef Elf64_Phdr elf_phdr;
typedef Elf64_Shdr elf_shdr;
#define ELF_CLASS ELFCLASS64
#else
typedef Elf32_Ehdr elf_ehdr;
typedef Elf32_Phdr elf_phdr;
typedef Elf32_Shdr elf_shdr;
#define ELF_CLASS ELFCLASS32
#endif

/* Whether a table of count entries of size each, at off, lies in a file of
 * size bytes (overflow-safe). */
static bool within(uint64_t off, uint64_t count, uint64_t each, uint64_t size) {
  return off <= size && (each == 0 || count <= (size - off) / each);
}

/* dlopen maps a shared object's segments from the file and reads its
 * headers through the mapping: a truncated file makes it touch pages past
 * the end and die of SIGBUS. So the file is checked first: a regular file,
 * a sane ELF header for this machine's class and byte order, the program
 * and section header tables and every segment's bytes inside the file.
 * 0, or -1 with the reason in why. */
static int check_elf(const char *path, char *why, size_t n) {
  int64_t size;
  FILE *f = tl_open_input(path, &size, why, n);
  if (!f) return -1;
  int rc = -1;
  elf_ehdr eh;
  elf_phdr *ph = NULL;
  if (size < 0) {
    snprintf(why, n, "not a regular file");
    goto out;
  }
  if ((uint64_t)size < sizeof eh || fread(&eh, sizeof eh, 1, f) != 1 ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    snprintf(why, n, "not an ELF file");
    goto out;
  }
  const union { uint16_t u; uint8_t b[2]; } endian = {1};
  if (eh.e_ident[EI_CLASS] != ELF_CLASS ||
      eh.e_ident[EI_DATA] != (endian.b[0] ? ELFDATA2LSB : ELFDATA2MSB)) {
    snprintf(why, n, "an ELF file of another word size or byte order");
    goto out;
  }
  if (eh.e_type != ET_DYN) {
    snprintf(why, n, "not a shared object (ELF type %u)", (unsigned)eh.e_type);
    goto out;
  }
  uint64_t fsize = (uint64_t)size;
  if (eh.e_phentsize != sizeof(elf_phdr) || eh.e_phnum == 0 ||
      !within(eh.e_phoff, eh.e_phnum, sizeof(elf_phdr), fsize)) {
    snprintf(why, n, "its program header table is missing, malformed or past the end of the "
                     "file (truncated?)");
    goto out;
  }
  ph = tl_xmalloc((size_t)eh.e_phnum * sizeof *ph);
  if (!ph || fseek(f, (long)eh.e_phoff, SEEK_SET) != 0 ||
      fread(ph, sizeof *ph, eh.e_phnum, f) != eh.e_phnum) {
    snprintf(why, n, "cannot read its program headers");
    goto out;
  }
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    if (ph[i].p_filesz && !within(ph[i].p_offset, 1, ph[i].p_filesz, fsize)) {
      snprintf(why, n, "segment %u (bytes %llu..%llu) is past the end of the file (%llu bytes; "
                       "truncated?)", i, (unsigned long long)ph[i].p_offset,
               (unsigned long long)ph[i].p_offset + ph[i].p_filesz, (unsigned long long)fsize);
      goto out;
    }
    if (ph[i].p_type == PT_LOAD && ph[i].p_filesz > ph[i].p_memsz) {
      snprintf(why, n, "segment %u is larger in the file than in memory", i);
      goto out;
    }
  }
  if (eh.e_shoff != 0 && (eh.e_shentsize != sizeof(elf_shdr) ||
                          !within(eh.e_shoff, eh.e_shnum ? eh.e_shnum : 1, sizeof(elf_shdr), fsize))) {
    snprintf(why, n, "its section header table is malformed or past the end of the file "
                     "(truncated?)");
    goto out;
  }
  rc = 0;
out:
  tl_free(ph);
  fclose(f);
  return rc;
}

int tl_cost_load_plugin(tl_cost_registry *r, const char *path, char *err, size_t n) {
  /* A name without '/' is searched for by dlopen in the system's library
   * folders; a path names the file, which is checked before it is mapped. */
  char why[256];
  if (strchr(path, '/') && check_elf(path, why, sizeof why)) {
    snprintf(err, n, "plugin %s: cannot load it: %s", path, why);
    return -1;
  }
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
