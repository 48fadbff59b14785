#!/usr/bin/env python3
"""fpcore2tg.py - converts FPBench's FPCore benchmarks into tlaloc graphs.

    fpcore2tg.py FPBENCH_CHECKOUT OUTDIR

Run once; its output is kept in bench/accuracy/fpbench/ (see the README
there for the FPBench version). Every FPCore of FPBENCH_CHECKOUT/benchmarks/
*.fpcore whose body maps onto tlaloc's ops becomes OUTDIR/SUITE/NN-SLUG.tg:

    ; FPBench rump.fpcore #1: Rump's example, with pow
    ; pre: <the FPCore precondition, verbatim>
    ; where: (lt x y)           <- only for what no input range can say
    (graph rump_1
      (in a f64 [n] :range -1e3 1e3)
      (out y ...))

Inputs are f64 vectors [n] (one element per sample point). The parts of the
precondition that bound one variable by constants become the inputs'
`:range LO HI` (FPBench's preconditions are what the annotation is for);
the rest is kept as a tlaloc boolean expression on the `; where:` line,
which bench-accuracy's FPBench row uses to reject sample points. The
expression is written as FPBench wrote it: n-ary + and * fold to the left,
`let` becomes `let`, `if` becomes `where` (both sides are evaluated, and a
NaN in the side not taken does not matter), constants are the correctly
rounded f64 values. FPCores that use what tlaloc has no op for (fma, fmod,
exp2, log10, while loops, tensors, ...) or another precision than binary64
are skipped, and the reason is counted; the counts go to stdout.
"""
import math
import os
import re
import sys
from fractions import Fraction

UNARY = {'-': 'neg', 'sqrt': 'sqrt', 'cbrt': 'cbrt', 'exp': 'exp', 'expm1': 'expm1',
         'log': 'log', 'log1p': 'log1p', 'sin': 'sin', 'cos': 'cos', 'tan': 'tan',
         'asin': 'asin', 'acos': 'acos', 'atan': 'atan', 'sinh': 'sinh', 'cosh': 'cosh',
         'tanh': 'tanh', 'asinh': 'asinh', 'acosh': 'acosh', 'atanh': 'atanh',
         'fabs': 'abs', 'erf': 'erf', 'erfc': 'erfc', 'floor': 'floor', 'ceil': 'ceil',
         'not': 'not'}
BINARY = {'-': 'sub', '/': 'div', 'pow': 'pow', 'atan2': 'atan2', 'hypot': 'hypot',
          'fmax': 'maximum', 'fmin': 'minimum'}
NARY = {'+': 'add', '*': 'mul', 'and': 'and', 'or': 'or'}
CMP = {'<': 'lt', '>': 'gt', '<=': 'le', '>=': 'ge', '==': 'eq'}
CONST = {'PI': math.pi, 'E': math.e, 'LN2': math.log(2), 'LN10': math.log(10),
         'LOG2E': 1 / math.log(2), 'LOG10E': 1 / math.log(10), 'PI_2': math.pi / 2,
         'PI_4': math.pi / 4, 'M_1_PI': 1 / math.pi, 'M_2_PI': 2 / math.pi,
         'SQRT2': math.sqrt(2), 'SQRT1_2': math.sqrt(0.5), 'INFINITY': math.inf}
OPS_AND_KEYWORDS = None  # filled from `tlaloc ops` when available


class Skip(Exception):
    pass


def tokens(text):
    text = re.sub(r';[^\n]*', ' ', text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in '()[]':
            yield c
            i += 1
        elif c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            yield ('str', text[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()[]"':
                j += 1
            yield text[i:j]
            i = j


def parse(text):
    stack, top = [[]], None
    for t in tokens(text):
        if t in ('(', '['):
            stack.append([])
        elif t in (')', ']'):
            top = stack.pop()
            stack[-1].append(top)
        else:
            stack[-1].append(t)
    return stack[0]


def number(tok):
    """The f64 value of an FPCore number (decimal, rational, hex), or None."""
    if not isinstance(tok, str):
        return None
    try:
        if re.fullmatch(r'[-+]?\d+/\d+', tok):
            return float(Fraction(tok))
        if re.fullmatch(r'[-+]?0[xX][0-9a-fA-F.]+([pP][-+]?\d+)?', tok):
            return float.fromhex(tok)
        if re.fullmatch(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?', tok):
            return float(tok)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return None


def lit(v):
    if math.isinf(v):
        return 'inf' if v > 0 else '-inf'
    r = repr(float(v))
    return r


class Converter:
    def __init__(self, inputs):
        self.env = {v: v2 for v, v2 in inputs.items()}
        self.lets = []
        self.count = 0

    def fresh(self, name):
        self.count += 1
        return 't%d_%s' % (self.count, sanitize(name))

    def expr(self, e):
        if isinstance(e, tuple):
            raise Skip('string in an expression')
        if isinstance(e, str):
            v = number(e)
            if v is not None:
                return lit(v)
            if e in self.env:
                return self.env[e]
            if e in CONST:
                return lit(CONST[e])
            if e in ('TRUE', 'FALSE'):
                raise Skip('boolean constant')
            raise Skip('unknown name %s' % e)
        if not e:
            raise Skip('empty expression')
        head, args = e[0], e[1:]
        if head in ('let', 'let*'):
            saved = dict(self.env)
            new = {}
            for b in args[0]:
                name, val = b[0], b[1]
                x = self.expr(val)
                t = self.fresh(name)
                self.lets.append((t, x))
                (self.env if head == 'let*' else new)[name] = t
            self.env.update(new)
            out = self.expr(args[1])
            self.env = saved
            return out
        if head == 'if':
            return '(where %s %s %s)' % (self.expr(args[0]), self.expr(args[1]), self.expr(args[2]))
        if head == '!':
            props, body = args[:-1], args[-1]
            for k, v in zip(props[::2], props[1::2]):
                if k == ':precision' and v != 'binary64':
                    raise Skip('precision %s' % v)
            return self.expr(body)
        if head == 'digits':
            m, ex, b = (int(a) for a in args)
            return lit(float(Fraction(m) * Fraction(b) ** ex))
        if head in CMP or head == '!=':
            xs = intlits([self.expr(a) for a in args])
            if head == '!=':
                pairs = ['(ne %s %s)' % (xs[i], xs[j]) for i in range(len(xs)) for j in range(i + 1, len(xs))]
            else:
                pairs = ['(%s %s %s)' % (CMP[head], xs[i], xs[i + 1]) for i in range(len(xs) - 1)]
            return fold('and', pairs)
        if head in UNARY and len(args) == 1:
            return '(%s %s)' % (UNARY[head], self.expr(args[0]))
        if head in BINARY and len(args) == 2:
            a, b = intlits([self.expr(args[0]), self.expr(args[1])]) if head != 'pow' else \
                (self.expr(args[0]), self.expr(args[1]))
            if head == 'pow' and not LITERAL.match(a):
                b = intlits([a, b])[1] if not b.startswith('-') else b
            return '(%s %s %s)' % (BINARY[head], a, b)
        if head in NARY and len(args) >= 2:
            return fold(NARY[head], intlits([self.expr(a) for a in args]))
        raise Skip('no op for %s' % head)


LITERAL = re.compile(r'^-?(\d+\.\d*(e[-+]?\d+)?|inf)$')


def intlits(xs):
    """Integral literals next to a variable operand written as integers:
    the same value (the operand is f64, so the result is too), and the
    rules' patterns, which write 1 and 2, match them. Where every operand
    is a literal they stay floats (1 / 3 must not be integer arithmetic)."""
    if all(LITERAL.match(x) for x in xs):
        return xs
    out = []
    for x in xs:
        if LITERAL.match(x) and x not in ('inf', '-inf'):
            v = float(x)
            if v == int(v) and abs(v) < 2 ** 31:
                x = str(int(v))
        out.append(x)
    return out


def fold(op, xs):
    out = xs[0]
    for x in xs[1:]:
        out = '(%s %s %s)' % (op, out, x)
    return out


def sanitize(name):
    s = re.sub(r'[^A-Za-z0-9_]', '_', name)
    if not s or not s[0].isalpha():
        s = 'v' + s
    if OPS_AND_KEYWORDS and s in OPS_AND_KEYWORDS:
        s += '_'
    return s


def ranges(pre, names):
    """Splits a precondition into per-variable bounds and the rest."""
    lo = {v: -math.inf for v in names}
    hi = {v: math.inf for v in names}
    rest = []

    def bound(v, lower, c, strict):
        # a strict bound becomes the next float inside (the sample is drawn
        # from the closed range)
        if lower:
            c = math.nextafter(c, math.inf) if strict else c
            lo[v] = max(lo[v], c)
        else:
            c = math.nextafter(c, -math.inf) if strict else c
            hi[v] = min(hi[v], c)

    def conj(e):
        if isinstance(e, list) and e and e[0] == 'and':
            for a in e[1:]:
                conj(a)
            return
        if isinstance(e, list) and e and e[0] in ('<', '<=', '>', '>=') and len(e) >= 3:
            op, xs = e[0], e[1:]
            if op in ('>', '>='):
                xs = xs[::-1]
            strict = op in ('<', '>')
            ok = True
            for a, b in zip(xs, xs[1:]):
                na, nb = number(a) if not isinstance(a, list) else None, number(b) if not isinstance(b, list) else None
                if isinstance(b, str) and b in lo and na is not None:
                    bound(b, True, na, strict)
                elif isinstance(a, str) and a in lo and nb is not None:
                    bound(a, False, nb, strict)
                elif isinstance(b, str) and b in lo and isinstance(a, list) and a[:1] == ['-'] and len(a) == 2 \
                        and number(a[1]) is not None:
                    bound(b, True, -number(a[1]), strict)
                elif isinstance(a, str) and a in lo and isinstance(b, list) and b[:1] == ['-'] and len(b) == 2 \
                        and number(b[1]) is not None:
                    bound(a, False, -number(b[1]), strict)
                else:
                    ok = False
            if ok:
                return
        if e not in ('TRUE',):
            rest.append(e)

    if pre is not None:
        conj(pre)
    return lo, hi, rest


def write_fpcore(core, suite, index, outdir, counts):
    body = core[1:]
    if body and isinstance(body[0], str):
        body = body[1:]  # FPCore 2.0's optional identifier
    args, rest = body[0], body[1:]
    props = {}
    while len(rest) > 1 and isinstance(rest[0], str) and rest[0].startswith(':'):
        props[rest[0]] = rest[1]
        rest = rest[2:]
    expr = rest[0]
    name = props.get(':name', ('str', '%s-%d' % (suite, index)))
    name = name[1] if isinstance(name, tuple) else str(name)
    if props.get(':precision', 'binary64') != 'binary64':
        raise Skip('precision %s' % props[':precision'])
    inputs = {}
    for a in args:
        if isinstance(a, list):
            if a and a[0] == '!':
                ps, v = a[1:-1], a[-1]
                for k, val in zip(ps[::2], ps[1::2]):
                    if k == ':precision' and val != 'binary64':
                        raise Skip('precision %s' % val)
                a = v
            else:
                raise Skip('tensor argument')
        inputs[a] = sanitize(a)
    if not inputs:
        raise Skip('no inputs')
    cv = Converter(inputs)
    y = cv.expr(expr)
    lo, hi, where = ranges(props.get(':pre'), list(inputs))
    wherecv = Converter(inputs)
    wheres = [wherecv.expr(w) for w in where]
    if wherecv.lets:
        raise Skip('let in the precondition')
    slug = re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')[:48] or 'core'
    gname = sanitize('%s_%d' % (suite.replace('-', '_'), index))
    lines = ['; FPBench %s.fpcore #%d: %s' % (suite, index, name)]
    if ':pre' in props:
        lines.append('; pre: %s' % unparse(props[':pre']))
    if wheres:
        lines.append('; where: %s' % fold('and', wheres))
    lines.append('(graph %s' % gname)
    for a, v in inputs.items():
        r = ''
        if lo[a] != -math.inf or hi[a] != math.inf:
            if lo[a] > hi[a]:
                raise Skip('empty range')
            r = ' :range %s %s' % (lit(lo[a]), lit(hi[a]))
        lines.append('  (in %s f64 [n]%s)' % (v, r))
    for t, x in cv.lets:
        lines.append('  (let %s %s)' % (t, x))
    lines.append('  (out y %s))' % y)
    d = os.path.join(outdir, suite)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, '%02d-%s.tg' % (index, slug)), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    counts['converted'] = counts.get('converted', 0) + 1


def unparse(e):
    if isinstance(e, list):
        return '(' + ' '.join(unparse(a) for a in e) + ')'
    if isinstance(e, tuple):
        return '"%s"' % e[1]
    return e


def main():
    global OPS_AND_KEYWORDS
    src, outdir = sys.argv[1], sys.argv[2]
    OPS_AND_KEYWORDS = {'in', 'let', 'out', 'graph', 'y', 'n'} | set(UNARY.values()) | set(BINARY.values()) \
        | set(NARY.values()) | set(CMP.values()) | {'where', 'lit', 'fill', 'const', 'ne'}
    counts, skipped = {}, {}
    bdir = os.path.join(src, 'benchmarks')
    for fn in sorted(os.listdir(bdir)):
        if not fn.endswith('.fpcore'):
            continue
        suite = fn[:-len('.fpcore')]
        with open(os.path.join(bdir, fn)) as f:
            cores = [c for c in parse(f.read()) if isinstance(c, list) and c and c[0] == 'FPCore']
        for i, core in enumerate(cores, 1):
            try:
                write_fpcore(core, suite, i, outdir, counts)
            except Skip as s:
                why = re.sub(r' \S+$', '', str(s)) if str(s).startswith(('unknown name', 'precision')) else str(s)
                skipped[why] = skipped.get(why, 0) + 1
            except (IndexError, ValueError, TypeError) as ex:
                skipped['malformed (%s)' % type(ex).__name__] = skipped.get('malformed (%s)' % type(ex).__name__, 0) + 1
    print('converted %d FPCores' % counts.get('converted', 0))
    for k, v in sorted(skipped.items(), key=lambda kv: -kv[1]):
        print('skipped %4d: %s' % (v, k))


if __name__ == '__main__':
    main()
