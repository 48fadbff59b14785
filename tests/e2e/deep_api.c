/* deep_api.c - for deep.sh: the C API path on a long graph. Reads the .tg
 * file named by argv[1] (one input x: f64[4]), tlaloc_parse, tlaloc_print,
 * tlaloc_run with x = 0 1 2 3, and prints the output's four values. Exit
 * status 0, or 1 with the errors. */
#include "tlaloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: deep-api G.tg\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *src = malloc((size_t)n + 1);
  if (!src || fread(src, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "%s: cannot read\n", argv[1]);
    return 1;
  }
  fclose(f);
  tlaloc_graph *g;
  char *errors = NULL;
  if (tlaloc_parse(src, (size_t)n, argv[1], &g, &errors) != TLALOC_OK) {
    fputs(errors, stderr);
    return 1;
  }
  char *text = tlaloc_print(g);
  printf("printed %zu bytes\n", strlen(text));
  tlaloc_free(text);
  double x[4] = {0, 1, 2, 3};
  tlaloc_tensor in = {TLALOC_F64, 1, {4}, x}, out;
  memset(&out, 0, sizeof out);
  if (tlaloc_run(g, &in, 1, &out, 1, &errors) != TLALOC_OK) {
    fputs(errors, stderr);
    return 1;
  }
  const double *y = out.data;
  printf("y = %.17g %.17g %.17g %.17g\n", y[0], y[1], y[2], y[3]);
  tlaloc_free(out.data);
  tlaloc_graph_free(g);
  free(src);
  return 0;
}
