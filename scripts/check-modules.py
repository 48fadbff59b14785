#!/usr/bin/env python3
"""check-modules.py - keeps tlaloc's module graph a DAG.

The graph is declared once, in scripts/modules.txt (its header says the
format). This script

  * checks the declaration: every dependency is a declared module, every
    module has its folder, and the graph has no cycle (the cycle is named);
  * checks the sources: every `#include "mod/..."` in a module's .c, .h and
    .def files must name the module itself or a module below it (declared
    dependencies, and theirs, transitively). A violation is reported as
    file:line with the allowed set. An include without a folder must be a
    file next to the includer or the public header in include/, and a path
    with `..` is refused: neither may reach around the graph;
  * prints the graph for people (--text, --dot) and for meson.build
    (--meson: the library modules bottom up, `name: deps` per line).

Exit status 0 when everything holds, 1 otherwise (messages on stderr), 2 on
bad usage. Python 3 standard library only: meson runs it at configure time.
"""

import argparse
import os
import re
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SOURCE_EXTS = ('.c', '.h', '.def')
LINE_RE = re.compile(r'^(program\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$')


class Graph:
    def __init__(self):
        self.order = []      # modules in declaration order
        self.deps = {}       # module -> declared dependencies, in order
        self.program = set() # modules that are programs, not library parts
        self.line = {}       # module -> line of its declaration


def parse(path, errors):
    g = Graph()
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        errors.append(f'{path}: {e.strerror}')
        return g
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        m = LINE_RE.match(line)
        if not m:
            errors.append(f'{path}:{no}: expected `MODULE: DEP...`, got {raw.strip()!r}')
            continue
        name, deps = m.group(2), m.group(3).split()
        if name in g.deps:
            errors.append(f'{path}:{no}: module {name} is declared twice '
                          f'(first at line {g.line[name]})')
            continue
        g.order.append(name)
        g.deps[name] = deps
        g.line[name] = no
        if m.group(1):
            g.program.add(name)
    for name in g.order:
        for d in g.deps[name]:
            if d not in g.deps:
                errors.append(f'{path}:{g.line[name]}: {name} depends on {d}, '
                              'which is not a declared module')
            elif d == name:
                errors.append(f'{path}:{g.line[name]}: {name} depends on itself')
            elif d in g.program:
                errors.append(f'{path}:{g.line[name]}: {name} depends on {d}, '
                              'a program: nothing may depend on a program')
    return g


def find_cycle(g):
    """A list of modules forming a cycle (first == last), or None."""
    state = {}  # absent: unvisited; 1: on the current path; 2: done
    path = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in g.deps.get(m, []):
            if d not in g.deps or d == m:
                continue
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        path.pop()
        state[m] = 2
        return None

    for m in g.order:
        if m not in state:
            c = visit(m)
            if c:
                return c
    return None


def below(g):
    """Module -> every module below it (its dependencies' closure)."""
    memo = {}

    def walk(m):
        if m not in memo:
            s = set()
            for d in g.deps[m]:
                if d in g.deps:
                    s.add(d)
                    s |= walk(d)
            memo[m] = s
        return memo[m]

    for m in g.order:
        walk(m)
    return memo


def topo(g):
    """Modules bottom up: declaration order, each after its dependencies."""
    out, done = [], set()

    def visit(m):
        if m in done:
            return
        done.add(m)
        for d in g.deps[m]:
            visit(d)
        out.append(m)

    for m in g.order:
        visit(m)
    return out


def sources(root, module):
    folder = os.path.join(root, module)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(SOURCE_EXTS):
                yield os.path.join(dirpath, name)


def check_includes(root, g, closure, errors):
    """Checks every quoted include of every module; returns the files read
    and the number of includes checked."""
    files, count = [], 0
    for module in g.order:
        allowed = {module} | closure[module]
        for path in sources(root, module):
            files.append(path)
            rel = os.path.relpath(path, root)
            try:
                with open(path, encoding='utf-8', errors='replace') as f:
                    lines = f.read().splitlines()
            except OSError as e:
                errors.append(f'{rel}: {e.strerror}')
                continue
            for no, text in enumerate(lines, 1):
                m = INCLUDE_RE.match(text)
                if not m:
                    continue
                count += 1
                inc = m.group(1)
                where = f'{rel}:{no}'
                if '..' in inc.split('/'):
                    errors.append(f'{where}: #include "{inc}": no `..` in includes; '
                                  'name the module ("mod/file.h")')
                    continue
                if '/' not in inc:
                    here = os.path.join(os.path.dirname(path), inc)
                    public = os.path.join(root, 'include', inc)
                    if not (os.path.exists(here) or os.path.exists(public)):
                        errors.append(f'{where}: #include "{inc}": not next to {rel} nor in '
                                      'include/; name the module ("mod/file.h")')
                    continue
                target = inc.split('/', 1)[0]
                if target not in g.deps:
                    errors.append(f'{where}: #include "{inc}": {target}/ is not a module '
                                  '(scripts/modules.txt)')
                elif target not in allowed:
                    ok = ' '.join(m for m in topo(g) if m in closure[module]) or 'none'
                    errors.append(f'{where}: #include "{inc}": module {module} may not include '
                                  f'{target} ({target} is not below {module} in '
                                  f'scripts/modules.txt; below {module}: {ok})')
    return files, count


def reduced_edges(g, closure):
    """Declared edges not implied by a longer path (the layering)."""
    edges = []
    for m in topo(g):
        for d in g.deps[m]:
            if not any(d in closure[o] for o in g.deps[m] if o != d):
                edges.append((m, d))
    return edges


def print_text(g, closure, out):
    rows = [('module', 'declares', 'may include (everything below)')]
    for m in topo(g):
        rows.append((m + (' (program)' if m in g.program else ''), ' '.join(g.deps[m]) or '-',
                     ' '.join(x for x in topo(g) if x in closure[m]) or '-'))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out.write('# tlaloc modules, bottom up (scripts/modules.txt)\n')
    for r in rows:
        out.write(f'{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}'.rstrip() + '\n')


def print_dot(g, closure, all_edges, out):
    out.write('digraph modules {\n')
    out.write('  // generated by scripts/check-modules.py --dot from scripts/modules.txt\n')
    if not all_edges:
        out.write('  // edges implied by a longer path are left out (--all shows them)\n')
    out.write('  rankdir=BT;\n  node [shape=box, fontname="monospace"];\n')
    for m in topo(g):
        style = ' [style=bold]' if m in g.program else ''
        out.write(f'  "{m}"{style};\n')
    edges = [(m, d) for m in topo(g) for d in g.deps[m]] if all_edges else reduced_edges(g, closure)
    for m, d in edges:
        out.write(f'  "{m}" -> "{d}";\n')
    out.write('}\n')


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description='Check and print tlaloc\'s module graph.')
    ap.add_argument('--root', default=os.path.dirname(here), help='the source tree (default: ..)')
    ap.add_argument('--modules', help='the declaration (default: ROOT/scripts/modules.txt)')
    what = ap.add_mutually_exclusive_group()
    what.add_argument('--text', action='store_true', help='print the graph as a table')
    what.add_argument('--dot', action='store_true', help='print the graph for Graphviz')
    what.add_argument('--meson', action='store_true',
                      help='print the library modules bottom up, "name: deps" per line')
    ap.add_argument('--all', action='store_true', help='--dot: every declared edge')
    ap.add_argument('--stamp', help='on success, write this file (a build-time check\'s output)')
    ap.add_argument('--depfile', help='with --stamp: a Makefile-style list of the files read')
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    modules_path = a.modules or os.path.join(root, 'scripts', 'modules.txt')

    errors = []
    g = parse(modules_path, errors)
    rel_decl = os.path.relpath(modules_path, root)
    if rel_decl.startswith('..'):
        rel_decl = modules_path
    for m in g.order:
        if not os.path.isdir(os.path.join(root, m)):
            errors.append(f'{rel_decl}:{g.line[m]}: module {m} has no folder {m}/')
    cycle = None if errors else find_cycle(g)
    if cycle:
        errors.append(f'{rel_decl}: the module graph has a cycle: ' + ' -> '.join(cycle))
    files, count = [], 0
    if not errors:
        closure = below(g)
        files, count = check_includes(root, g, closure, errors)
    if errors:
        for e in errors:
            sys.stderr.write(f'check-modules: {e}\n')
        sys.stderr.write(f'check-modules: {len(errors)} problem{"s" if len(errors) != 1 else ""}; '
                         f'the allowed graph is {rel_decl}\n')
        return 1

    if a.text:
        print_text(g, closure, sys.stdout)
    elif a.dot:
        print_dot(g, closure, a.all, sys.stdout)
    elif a.meson:
        for m in topo(g):
            if m not in g.program:
                sys.stdout.write(f'{m}: {" ".join(g.deps[m])}\n')
    else:
        sys.stdout.write(f'check-modules: {len(g.order)} modules, {count} includes in '
                         f'{len(files)} files, no back-edge, no cycle\n')
    if a.stamp:
        with open(a.stamp, 'w', encoding='utf-8') as f:
            f.write('module graph checked\n')
        if a.depfile:
            with open(a.depfile, 'w', encoding='utf-8') as f:
                deps = [modules_path] + files
                f.write(a.stamp.replace(' ', '\\ ') + ': ' +
                        ' \\\n  '.join(p.replace(' ', '\\ ') for p in deps) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
