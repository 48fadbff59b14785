/* cli/cli.h - the subcommands of the `tlaloc` program that live outside
 * main.c, one file per area (cmd_compile.c, cmd_check.c, cmd_extract.c,
 * cmd_measure.c). Each parses its arguments, calls the library, prints, and
 * returns the program's exit status; only the program exits. argv[0] is the
 * command's name.
 *
 * Exit status: util/error.h's tl_status, number for number: 0 success,
 * 1 a check said no, 2 bad input (the message on stderr says where), 3 out
 * of memory, 4 an internal error (a bug of tlaloc), 5 LLVM, the GPU driver
 * or the ILP solver failed. */
#ifndef TL_CLI_H
#define TL_CLI_H

#define CLI_EXIT_CHECK 1
#define CLI_EXIT_BAD 2
#define CLI_EXIT_OOM 3 /* out of memory: everything allocated was freed */
#define CLI_EXIT_INTERNAL 4
#define CLI_EXIT_BACKEND 5

/* tlaloc compile G.tg -o G.o [--header G.h] [--name NAME] [-O1|-O2|-O3] */
int cli_cmd_compile(int argc, char **argv);
/* tlaloc check-rules [--seed N] [--trials N] [--known NAME]... [-v] F.rw...;
 * 1 when a rule has a counter-example that is not known. */
int cli_cmd_check_rules(int argc, char **argv);
/* tlaloc grad G.tg [--wrt IN,...] [--of OUT,...] [--vjp | --jvp] [--with-outputs]
 * [--rules PATH]... [-o OUT.tg]: the derivative graph (docs/grad.md). */
int cli_cmd_grad(int argc, char **argv);
/* tlaloc extract E.json [--extract tree|dag|exact] [--time-limit S] [--json] */
int cli_cmd_extract(int argc, char **argv);
/* tlaloc calibrate [--quick] [-o PATH] */
int cli_cmd_calibrate(int argc, char **argv);
/* tlaloc cost-report G.tg [--dim SYM=SIZE]... [--runs N] */
int cli_cmd_cost_report(int argc, char **argv);

#endif
