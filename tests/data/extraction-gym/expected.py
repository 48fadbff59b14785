#!/usr/bin/python3
"""The expected results of the extraction-gym samples in this folder,
computed from the definitions (extract/extract.h, "Semantics") without any
of tlaloc's code, and written to expected.tsv, which test_extract.c reads.

    /usr/bin/python3 tests/data/extraction-gym/expected.py   # rewrites expected.tsv

Per file: the optimal tree cost (the least fixpoint of
cost(c) = min over c's nodes n of cost(n) + sum of cost(child class)),
summed over the roots; and the optimal DAG cost, found by branch and bound
over the choices of the classes reachable from the roots (every reachable
class gets one node, the chosen graph must be acyclic, each chosen node is
paid once). The bound is the cost so far plus the cheapest node of each
class already known to be needed, so the costs must be >= 0 (the samples
are chosen so). A file whose root names a class without nodes is listed as
"malformed".
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path):
    d = json.load(open(path))
    nodes = d["nodes"]
    cls = {}
    for nid, n in nodes.items():
        cls.setdefault(n["eclass"], []).append(nid)
    for r in d["root_eclasses"]:
        if r not in cls:
            return None
    names = sorted(cls)
    index = {c: i for i, c in enumerate(names)}
    nodes_of, cost, kids = [], [], []
    for c in names:
        ids = []
        for nid in cls[c]:
            n = nodes[nid]
            ids.append(len(cost))
            cost.append(float(n.get("cost", 1.0)))
            kids.append(sorted({index[nodes[k]["eclass"]] for k in n["children"]}))
        nodes_of.append(ids)
    roots = sorted({index[r] for r in d["root_eclasses"]})
    return nodes_of, cost, kids, roots, [list(nodes[k]["children"]) for c in names for k in cls[c]]


def tree_opt(nodes_of, cost, kids_multi, index_of_child, roots):
    """Least fixpoint of the tree cost (children counted with multiplicity)."""
    best = [math.inf] * len(nodes_of)
    changed = True
    while changed:
        changed = False
        for c, ids in enumerate(nodes_of):
            for n in ids:
                v = cost[n] + sum(best[index_of_child(k)] for k in kids_multi[n])
                if v < best[c]:
                    best[c] = v
                    changed = True
    return sum(best[r] for r in roots)


def dag_opt(nodes_of, cost, kids, roots):
    assert min(cost) >= 0, "the bound needs costs >= 0"
    cheapest = [min(cost[n] for n in ids) for ids in nodes_of]
    choice = {}
    best = [math.inf]
    sys.setrecursionlimit(10000)

    def reaches(start, target):
        stack, seen = list(start), set()
        while stack:
            c = stack.pop()
            if c == target:
                return True
            if c in seen or c not in choice:
                continue
            seen.add(c)
            stack.extend(kids[choice[c]])
        return False

    def search(pending, so_far):
        if so_far + sum(cheapest[c] for c in pending) >= best[0]:
            return
        if not pending:
            best[0] = so_far
            return
        c = min(pending, key=lambda k: (len(nodes_of[k]), k))
        rest = pending - {c}
        for n in sorted(nodes_of[c], key=lambda m: cost[m]):
            if reaches(kids[n], c):
                continue
            choice[c] = n
            search(rest | {k for k in kids[n] if k not in choice}, so_far + cost[n])
            del choice[c]

    search(frozenset(roots), 0.0)
    return best[0]


def main():
    rows = []
    for dirpath, _, files in sorted(os.walk(HERE)):
        for f in sorted(files):
            if not f.endswith(".json"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, HERE)
            g = load(path)
            if g is None:
                rows.append((rel, "malformed", "-", "-"))
                continue
            nodes_of, cost, kids, roots, kids_multi = g
            d = json.load(open(path))
            names = sorted({n["eclass"] for n in d["nodes"].values()})
            index = {c: i for i, c in enumerate(names)}

            def child_class(k, nodes=d["nodes"], index=index):
                return index[nodes[k]["eclass"]]

            t = tree_opt(nodes_of, cost, kids_multi, child_class, roots)
            dag = dag_opt(nodes_of, cost, kids, roots)
            rows.append((rel, "ok", repr(t), repr(dag)))
            print(rel, t, dag, file=sys.stderr)
    with open(os.path.join(HERE, "expected.tsv"), "w") as out:
        out.write("# file\tstatus\toptimal tree cost\toptimal DAG cost  (written by expected.py)\n")
        for r in rows:
            out.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
