/* fuzz_npy.c - the .npy reader. An accepted file must write back and read
 * again as the same dtype, shape and bytes; a refused one must say why. */
#include "fuzz/fuzz.h"
#include "tensor/tensor.h"

#include <string.h>
#include <unistd.h>

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(path, sizeof path, "%s/tl-fuzz-npy-%d.npy",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512] = "";
  tl_tensor *t = tl_npy_read_mem(data, size, "fuzz.npy", err, sizeof err);
  if (!t) {
    if (strncmp(err, "fuzz.npy: ", 10) != 0) FUZZ_FAIL("refused without naming the file: '%s'", err);
    return 0;
  }
  if (tl_npy_write(path, t, err, sizeof err) != 0) FUZZ_FAIL("write: %s", err);
  tl_tensor *u = tl_npy_read(path, err, sizeof err);
  if (!u) FUZZ_FAIL("what was written does not read back: %s", err);
  size_t bytes = (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype);
  if (u->dtype != t->dtype || u->rank != t->rank || u->numel != t->numel ||
      memcmp(u->dims, t->dims, (size_t)t->rank * sizeof *t->dims) != 0 ||
      (bytes && memcmp(u->data, t->data, bytes) != 0))
    FUZZ_FAIL("the round trip changed the tensor");
  unlink(path);
  tl_tensor_free(u);
  tl_tensor_free(t);
  return 0;
}
