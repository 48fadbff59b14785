/* fuzz.h - what the libFuzzer harnesses share: the entry points libFuzzer
 * calls, and the one way a harness reports a broken property (a message,
 * then abort(), which libFuzzer records as a crash with its input). A
 * harness returns 0 for every input, valid or not: refusing bad input with
 * a message is the behaviour under test, not a failure. */
#ifndef TL_FUZZ_H
#define TL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_FAIL(...)                                   \
  do {                                                   \
    fprintf(stderr, "fuzz: %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__);                        \
    fputc('\n', stderr);                                 \
    abort();                                             \
  } while (0)

#endif
