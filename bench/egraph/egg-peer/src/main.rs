//! egg-peer: egg 0.9.5 running the math suite of
//! shared/bench/egg-math-suite.md, so that bench-egg-math can put egg's
//! figures beside tlaloc's measured on the same machine in the same run.
//!
//!   egg-peer [--runs N] [--trace]
//!
//! Prints one tab-separated line per (scheduler, expression):
//!   egg <sched> <index> <stop> <iters> <enodes> <eclasses> <memo>
//!       <wall_ms> <search_ms> <apply_ms> <rebuild_ms>
//! with every time the minimum over N runs in this process (the counts do
//! not change between runs; the program checks that). With --trace it also
//! prints, for the first run of each row, one line per iteration:
//!   iter <sched> <index> <i> <memo_before> <classes_before> <applied>
//! and the sizes after the last rebuild as iter ... <n> <memo> <classes> 0.
//!
//! The language, the ConstantFold analysis, the conditions and the 36 rules
//! follow the suite's description (the facts of egg's tests/math.rs); the
//! limits are the suite's: 100 000 nodes, 30 iterations, 20 s.
use egg::{rewrite as rw, *};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::time::Duration;

/// A float leaf: equal when the values are equal (so 0 and -0 are one
/// constant), hashed on the value with -0 folded into 0, never NaN.
#[derive(Debug, Clone, Copy)]
pub struct Num(f64);

impl PartialEq for Num {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Num {}
impl PartialOrd for Num {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Num {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.partial_cmp(&o.0).expect("no NaN constants")
    }
}
impl Hash for Num {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let v = if self.0 == 0.0 { 0.0f64 } else { self.0 };
        v.to_bits().hash(h)
    }
}
impl FromStr for Num {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.parse::<f64>() {
            Ok(v) if !v.is_nan() => Ok(Num(v)),
            _ => Err(()),
        }
    }
}
impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

define_language! {
    pub enum Math {
        "d" = Diff([Id; 2]),
        "i" = Integral([Id; 2]),
        "+" = Add([Id; 2]),
        "-" = Sub([Id; 2]),
        "*" = Mul([Id; 2]),
        "/" = Div([Id; 2]),
        "pow" = Pow([Id; 2]),
        "ln" = Ln(Id),
        "sqrt" = Sqrt(Id),
        "sin" = Sin(Id),
        "cos" = Cos(Id),
        Constant(Num),
        Symbol(Symbol),
    }
}

/// The suite's ConstantFold: a class's value when its terms fold to one.
#[derive(Default)]
pub struct ConstantFold;

type EG = EGraph<Math, ConstantFold>;

impl Analysis<Math> for ConstantFold {
    type Data = Option<Num>;

    fn make(g: &EG, n: &Math) -> Self::Data {
        let v = |i: &Id| g[*i].data.map(|c| c.0);
        let r = match n {
            Math::Constant(c) => c.0,
            Math::Add([a, b]) => v(a)? + v(b)?,
            Math::Sub([a, b]) => v(a)? - v(b)?,
            Math::Mul([a, b]) => v(a)? * v(b)?,
            Math::Div([a, b]) => {
                let d = v(b)?;
                if d == 0.0 {
                    return None;
                }
                v(a)? / d
            }
            _ => return None,
        };
        if r.is_nan() {
            None
        } else {
            Some(Num(r))
        }
    }

    fn merge(&mut self, to: &mut Self::Data, from: Self::Data) -> DidMerge {
        match (to.as_ref(), from) {
            (None, Some(_)) => {
                *to = from;
                DidMerge(true, false)
            }
            (None, None) => DidMerge(false, false),
            (Some(_), None) => DidMerge(false, true),
            (Some(a), Some(b)) => {
                assert_eq!(*a, b, "merged two different constants");
                DidMerge(false, false)
            }
        }
    }

    fn modify(g: &mut EG, id: Id) {
        if let Some(c) = g[id].data {
            let leaf = g.add(Math::Constant(c));
            g.union(id, leaf);
            // keep only the leaves: the class is that constant now
            g[id].nodes.retain(|n| n.is_leaf());
        }
    }
}

fn has_symbol(g: &EG, id: Id) -> bool {
    g[id].nodes.iter().any(|n| matches!(n, Math::Symbol(..)))
}

fn is_const_or_distinct_var(v: &str, w: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v: Var = v.parse().unwrap();
    let w: Var = w.parse().unwrap();
    move |g, _, s| {
        g.find(s[v]) != g.find(s[w]) && (g[s[v]].data.is_some() || has_symbol(g, s[v]))
    }
}

fn is_const(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v: Var = v.parse().unwrap();
    move |g, _, s| g[s[v]].data.is_some()
}

fn is_sym(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v: Var = v.parse().unwrap();
    move |g, _, s| has_symbol(g, s[v])
}

fn is_not_zero(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v: Var = v.parse().unwrap();
    move |g, _, s| g[s[v]].data != Some(Num(0.0))
}

/// The suite's 36 rules, in its order (the order egg searches and applies).
fn rules() -> Vec<Rewrite<Math, ConstantFold>> {
    vec![
        rw!("comm-add"; "(+ ?a ?b)" => "(+ ?b ?a)"),
        rw!("comm-mul"; "(* ?a ?b)" => "(* ?b ?a)"),
        rw!("assoc-add"; "(+ ?a (+ ?b ?c))" => "(+ (+ ?a ?b) ?c)"),
        rw!("assoc-mul"; "(* ?a (* ?b ?c))" => "(* (* ?a ?b) ?c)"),
        rw!("sub-canon"; "(- ?a ?b)" => "(+ ?a (* -1 ?b))"),
        rw!("div-canon"; "(/ ?a ?b)" => "(* ?a (pow ?b -1))" if is_not_zero("?b")),
        rw!("zero-add"; "(+ ?a 0)" => "?a"),
        rw!("zero-mul"; "(* ?a 0)" => "0"),
        rw!("one-mul"; "(* ?a 1)" => "?a"),
        rw!("add-zero"; "?a" => "(+ ?a 0)"),
        rw!("mul-one"; "?a" => "(* ?a 1)"),
        rw!("cancel-sub"; "(- ?a ?a)" => "0"),
        rw!("cancel-div"; "(/ ?a ?a)" => "1" if is_not_zero("?a")),
        rw!("distribute"; "(* ?a (+ ?b ?c))" => "(+ (* ?a ?b) (* ?a ?c))"),
        rw!("factor"; "(+ (* ?a ?b) (* ?a ?c))" => "(* ?a (+ ?b ?c))"),
        rw!("pow-mul"; "(* (pow ?a ?b) (pow ?a ?c))" => "(pow ?a (+ ?b ?c))"),
        rw!("pow0"; "(pow ?x 0)" => "1" if is_not_zero("?x")),
        rw!("pow1"; "(pow ?x 1)" => "?x"),
        rw!("pow2"; "(pow ?x 2)" => "(* ?x ?x)"),
        rw!("pow-recip"; "(pow ?x -1)" => "(/ 1 ?x)" if is_not_zero("?x")),
        rw!("recip-mul-div"; "(* ?x (/ 1 ?x))" => "1" if is_not_zero("?x")),
        rw!("d-variable"; "(d ?x ?x)" => "1" if is_sym("?x")),
        rw!("d-constant"; "(d ?x ?c)" => "0" if is_sym("?x") if is_const_or_distinct_var("?c", "?x")),
        rw!("d-add"; "(d ?x (+ ?a ?b))" => "(+ (d ?x ?a) (d ?x ?b))"),
        rw!("d-mul"; "(d ?x (* ?a ?b))" => "(+ (* ?a (d ?x ?b)) (* ?b (d ?x ?a)))"),
        rw!("d-sin"; "(d ?x (sin ?x))" => "(cos ?x)"),
        rw!("d-cos"; "(d ?x (cos ?x))" => "(* -1 (sin ?x))"),
        rw!("d-ln"; "(d ?x (ln ?x))" => "(/ 1 ?x)" if is_not_zero("?x")),
        rw!("d-power"; "(d ?x (pow ?f ?g))" =>
            "(* (pow ?f ?g) (+ (* (d ?x ?f) (/ ?g ?f)) (* (d ?x ?g) (ln ?f))))"
            if is_not_zero("?f") if is_not_zero("?g")),
        rw!("i-one"; "(i 1 ?x)" => "?x"),
        rw!("i-power-const"; "(i (pow ?x ?c) ?x)" => "(/ (pow ?x (+ ?c 1)) (+ ?c 1))" if is_const("?c")),
        rw!("i-cos"; "(i (cos ?x) ?x)" => "(sin ?x)"),
        rw!("i-sin"; "(i (sin ?x) ?x)" => "(* -1 (cos ?x))"),
        rw!("i-sum"; "(i (+ ?f ?g) ?x)" => "(+ (i ?f ?x) (i ?g ?x))"),
        rw!("i-dif"; "(i (- ?f ?g) ?x)" => "(- (i ?f ?x) (i ?g ?x))"),
        rw!("i-parts"; "(i (* ?a ?b) ?x)" => "(- (* ?a (i ?b ?x)) (i (* (d ?x ?a) (i ?b ?x)) ?x))"),
    ]
}

const EXPRS: [&str; 8] = [
    "(+ x (+ x (+ x x)))",
    "(* (+ a b) (+ c d))",
    "(/ 1 (- (/ (+ 1 (sqrt five)) 2) (/ (- 1 (sqrt five)) 2)))",
    "(d x (+ 1 (* 2 x)))",
    "(d x (- (pow x 3) (* 7 (pow x 2))))",
    "(+ (* y (+ x y)) (- (+ x 2) (+ x x)))",
    "(i (* (cos x) x) x)",
    "(+ a (+ b (+ c (+ d (+ e (+ f (+ g h)))))))",
];

fn stop_name(r: &Option<StopReason>) -> String {
    match r {
        Some(StopReason::Saturated) => "Saturated".into(),
        Some(StopReason::IterationLimit(n)) => format!("IterLimit({})", n),
        Some(StopReason::NodeLimit(n)) => format!("NodeLimit({})", n),
        Some(StopReason::TimeLimit(t)) => format!("TimeLimit({:.3})", t),
        Some(StopReason::Other(s)) => format!("Other({})", s),
        None => "None".into(),
    }
}

fn main() {
    let mut runs = 3usize;
    let mut trace = false;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--runs" if i + 1 < args.len() => {
                runs = args[i + 1].parse().expect("--runs N");
                i += 1;
            }
            "--trace" => trace = true,
            a => {
                eprintln!("egg-peer: unknown argument '{}' (usage: egg-peer [--runs N] [--trace])", a);
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let rules = rules();
    for sched in ["Backoff", "Simple"] {
        for (k, src) in EXPRS.iter().enumerate() {
            let expr: RecExpr<Math> = src.parse().unwrap();
            let mut best = [f64::INFINITY; 4];
            let mut counts: Option<(String, usize, usize, usize, usize)> = None;
            for run in 0..runs.max(1) {
                let r = Runner::<Math, ConstantFold, ()>::default()
                    .with_node_limit(100_000)
                    .with_iter_limit(30)
                    .with_time_limit(Duration::from_secs(20))
                    .with_expr(&expr);
                let r = if sched == "Simple" { r.with_scheduler(SimpleScheduler) } else { r };
                let t0 = std::time::Instant::now();
                let r = r.run(&rules);
                let wall = t0.elapsed().as_secs_f64() * 1e3;
                let (mut s, mut a, mut b) = (0.0, 0.0, 0.0);
                for it in &r.iterations {
                    s += it.search_time;
                    a += it.apply_time;
                    b += it.rebuild_time;
                }
                let t = [wall, s * 1e3, a * 1e3, b * 1e3];
                for j in 0..4 {
                    best[j] = best[j].min(t[j]);
                }
                let c = (
                    stop_name(&r.stop_reason),
                    r.iterations.len(),
                    r.egraph.total_number_of_nodes(),
                    r.egraph.number_of_classes(),
                    r.egraph.total_size(),
                );
                if let Some(prev) = &counts {
                    assert_eq!(*prev, c, "egg's counts changed between runs");
                }
                if run == 0 && trace {
                    for (n, it) in r.iterations.iter().enumerate() {
                        let applied: usize = it.applied.values().sum();
                        println!("iter\t{}\t{}\t{}\t{}\t{}\t{}", sched, k, n, it.egraph_nodes, it.egraph_classes, applied);
                        if std::env::var_os("EGG_PEER_RULES").is_some() {
                            for (name, c) in &it.applied {
                                println!("rule\t{}\t{}\t{}\t{}\t{}", sched, k, n, name, c);
                            }
                        }
                    }
                    println!("iter\t{}\t{}\t{}\t{}\t{}\t0", sched, k, r.iterations.len(), c.4, c.3);
                }
                counts = Some(c);
            }
            let c = counts.unwrap();
            println!(
                "egg\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{:.3}\t{:.3}\t{:.3}",
                sched, k, c.0, c.1, c.2, c.3, c.4, best[0], best[1], best[2], best[3]
            );
        }
    }
}
