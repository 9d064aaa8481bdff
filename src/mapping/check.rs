//! What can be known about a template without reading any data, checked when
//! it is compiled: every filter, test and function it names exists, methods
//! are not called on attributes (they have none), and literal arguments of
//! text filters are valid (a `regex_replace` pattern compiles, `replace` gets
//! its two texts). The whole tree is walked, so a branch that no record takes
//! is checked too; minijinja itself would only fail when it runs.

use std::collections::HashSet;

use minijinja::machinery::ast::{CallArg, Expr, Filter, Stmt};
use minijinja::{ErrorKind, State, Value};

use super::template::{describe_short, shared};
use super::{compare, filters};
use crate::suggest::edit_distance;

/// A problem found in a template: where (a byte offset into the text checked)
/// and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

/// The problems of a parsed template.
pub(crate) fn template(stmt: &Stmt<'_>) -> Vec<Problem> {
    let mut assigned = HashSet::new();
    assigned_names(stmt, &mut assigned);
    let mut checker = Checker::new(assigned);
    visit_expressions_of_stmt(stmt, &mut |e| checker.check(e));
    recursive_loops(stmt, &mut checker.problems);
    checker.problems
}

/// Recursive loops (`{% for … recursive %}`): the one construct that makes a
/// render recurse, and so nest values without a bound the compile-time check
/// could see. A map template has no tree to walk.
fn recursive_loops(stmt: &Stmt<'_>, problems: &mut Vec<Problem>) {
    let bodies: Vec<&[Stmt<'_>]> = match stmt {
        Stmt::Template(t) => vec![&t.children],
        Stmt::ForLoop(f) => {
            if f.recursive {
                problems.push(Problem {
                    offset: f.span().start_offset as usize,
                    message: "recursive loops are not supported in map templates".to_owned(),
                });
            }
            vec![&f.body, &f.else_body]
        }
        Stmt::IfCond(i) => vec![&i.true_body, &i.false_body],
        Stmt::WithBlock(w) => vec![&w.body],
        Stmt::SetBlock(s) => vec![&s.body],
        Stmt::AutoEscape(a) => vec![&a.body],
        Stmt::FilterBlock(f) => vec![&f.body],
        Stmt::EmitExpr(_) | Stmt::EmitRaw(_) | Stmt::Set(_) | Stmt::Do(_) => vec![],
    };
    for body in bodies {
        body.iter().for_each(|s| recursive_loops(s, problems));
    }
}

/// The problems of a parsed expression (`when:`).
pub(crate) fn expression(expr: &Expr<'_>) -> Vec<Problem> {
    let mut checker = Checker::new(HashSet::new());
    visit_expressions_of_expr(expr, &mut |e| checker.check(e));
    checker.problems
}

/// Filters minijinja 3 and we define, offered as "did you mean" (only those
/// that exist in the environment are offered).
const FILTER_NAMES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "regex_replace",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "slug",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "trim",
    "unique",
    "upper",
    "zip",
];

/// Tests minijinja 3 defines, offered as "did you mean".
const TEST_NAMES: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Filters that take text and whose literal arguments can be tried on empty
/// text: an error then can only come from the arguments.
const TEXT_FILTERS: &[&str] = &[
    "capitalize",
    "d",
    "default",
    "indent",
    "lines",
    "lower",
    "regex_replace",
    "replace",
    "slug",
    "split",
    "title",
    "trim",
    "upper",
];

struct Checker {
    state: State<'static, 'static>,
    globals: Vec<String>,
    assigned: HashSet<String>,
    problems: Vec<Problem>,
}

impl Checker {
    fn new(assigned: HashSet<String>) -> Self {
        Checker {
            state: shared().empty_state(),
            globals: shared()
                .globals()
                .map(|(name, _)| name.to_owned())
                .filter(|name| name != compare::FUNCTION)
                .collect(),
            assigned,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, offset: u32, message: String) {
        self.problems.push(Problem {
            offset: offset as usize,
            message,
        });
    }

    fn check(&mut self, expr: &Expr<'_>) {
        match expr {
            Expr::Filter(f) => self.filter(f, f.span().start_offset),
            Expr::Test(t) if !self.test_exists(t.name) => {
                let message = format!(
                    "unknown test {:?}{}",
                    t.name,
                    self.suggestion(t.name, TEST_NAMES, Kind::Test)
                );
                self.problem(t.span().start_offset, message);
            }
            Expr::Call(c) => self.call(&c.expr, c.expr.span().start_offset),
            _ => {}
        }
    }

    fn filter(&mut self, f: &Filter<'_>, offset: u32) {
        if !self.filter_exists(f.name) {
            let message = format!(
                "unknown filter {:?}{}",
                f.name,
                self.suggestion(f.name, FILTER_NAMES, Kind::Filter)
            );
            self.problem(offset, message);
            return;
        }
        if f.name == "regex_replace" {
            if let Some(CallArg::Pos(Expr::Const(pattern))) = f.args.first() {
                if let Some(Err(e)) = pattern.value.as_str().map(filters::compiled) {
                    self.problem(pattern.span().start_offset, describe_short(&e));
                    return;
                }
            }
        }
        if TEXT_FILTERS.contains(&f.name) {
            self.try_literal_arguments(f, offset);
        }
    }

    /// Applies a text filter whose arguments are all literals to empty text.
    fn try_literal_arguments(&mut self, f: &Filter<'_>, offset: u32) {
        let mut args = vec![Value::from("")];
        for arg in &f.args {
            match arg {
                CallArg::Pos(Expr::Const(c)) => args.push(c.value.clone()),
                _ => return,
            }
        }
        if let Err(e) = self.state.apply_filter(f.name, &args) {
            self.problem(offset, format!("{}: {}", f.name, describe_short(&e)));
        }
    }

    fn call(&mut self, callee: &Expr<'_>, offset: u32) {
        match callee {
            Expr::Var(v) if !self.is_callable_name(v.id) => {
                let message = format!(
                    "unknown function {:?}{}",
                    v.id,
                    self.suggestion(v.id, &[], Kind::Function)
                );
                self.problem(offset, message);
            }
            Expr::GetAttr(method) => {
                let root = match &method.expr {
                    Expr::Var(v) => v.id,
                    _ => return,
                };
                if root == "loop" || self.is_callable_name(root) {
                    return;
                }
                let hint = if self.filter_exists(method.name) {
                    format!("; use the filter instead: {root} | {}", method.name)
                } else {
                    String::new()
                };
                let message = format!(
                    "{root}.{}(): attributes are text or lists, which have no methods{hint}",
                    method.name
                );
                self.problem(offset, message);
            }
            _ => {}
        }
    }

    /// A function, or a variable the template sets (which may hold one).
    fn is_callable_name(&self, name: &str) -> bool {
        self.assigned.contains(name) || self.globals.iter().any(|g| g == name)
    }

    fn filter_exists(&mut self, name: &str) -> bool {
        !matches!(self.state.apply_filter(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownFilter)
    }

    fn test_exists(&mut self, name: &str) -> bool {
        !matches!(self.state.perform_test(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownTest)
    }

    /// `; did you mean "lower"?` when a known name of `kind` is close to `name`.
    fn suggestion(&mut self, name: &str, candidates: &[&str], kind: Kind) -> String {
        let known: Vec<String> = match kind {
            Kind::Function => self.globals.clone(),
            Kind::Filter => candidates
                .iter()
                .filter(|c| self.filter_exists(c))
                .map(|c| (*c).to_owned())
                .collect(),
            Kind::Test => candidates
                .iter()
                .filter(|c| self.test_exists(c))
                .map(|c| (*c).to_owned())
                .collect(),
        };
        match nearest(name, &known) {
            Some(near) => format!("; did you mean {near:?}?"),
            None => String::new(),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Filter,
    Test,
    Function,
}

/// The known name closest to `name` by edit distance, if close enough to be a
/// typo (as the config's "did you mean" for keys), or else one that `name`
/// starts with (`lowercase` → `lower`).
fn nearest<'k>(name: &str, known: &'k [String]) -> Option<&'k str> {
    let typo = known
        .iter()
        .map(|k| (edit_distance(name, k), k.as_str()))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    typo.or_else(|| {
        known
            .iter()
            .filter(|k| k.len() >= 3 && name.starts_with(k.as_str()))
            .max_by_key(|k| k.len())
            .map(String::as_str)
    })
}

/// Every name a template assigns (`set`, `for`, `with` targets), wherever.
fn assigned_names(stmt: &Stmt<'_>, out: &mut HashSet<String>) {
    fn target(expr: &Expr<'_>, out: &mut HashSet<String>) {
        match expr {
            Expr::Var(v) => {
                out.insert(v.id.to_owned());
            }
            Expr::List(l) => l.items.iter().for_each(|i| target(i, out)),
            Expr::Tuple(t) => t.items.iter().for_each(|i| target(i, out)),
            _ => {}
        }
    }
    let body = |body: &[Stmt<'_>], out: &mut HashSet<String>| {
        body.iter().for_each(|s| assigned_names(s, out));
    };
    match stmt {
        Stmt::Template(t) => body(&t.children, out),
        Stmt::ForLoop(f) => {
            target(&f.target, out);
            body(&f.body, out);
            body(&f.else_body, out);
        }
        Stmt::IfCond(i) => {
            body(&i.true_body, out);
            body(&i.false_body, out);
        }
        Stmt::WithBlock(w) => {
            w.assignments.iter().for_each(|(t, _)| target(t, out));
            body(&w.body, out);
        }
        Stmt::Set(s) => target(&s.target, out),
        Stmt::SetBlock(s) => {
            target(&s.target, out);
            body(&s.body, out);
        }
        Stmt::AutoEscape(a) => body(&a.body, out),
        Stmt::FilterBlock(f) => body(&f.body, out),
        Stmt::EmitExpr(_) | Stmt::EmitRaw(_) | Stmt::Do(_) => {}
    }
}

/// Calls `f` on every expression node of a template, outermost first
/// (assignment targets excepted).
pub(crate) fn visit_expressions_of_stmt<'a>(stmt: &Stmt<'a>, f: &mut dyn FnMut(&Expr<'a>)) {
    let body = |body: &[Stmt<'a>], f: &mut dyn FnMut(&Expr<'a>)| {
        body.iter().for_each(|s| visit_expressions_of_stmt(s, f));
    };
    match stmt {
        Stmt::Template(t) => body(&t.children, f),
        Stmt::EmitExpr(e) => visit_expressions_of_expr(&e.expr, f),
        Stmt::EmitRaw(_) => {}
        Stmt::ForLoop(l) => {
            visit_expressions_of_expr(&l.iter, f);
            if let Some(filter) = &l.filter_expr {
                visit_expressions_of_expr(filter, f);
            }
            body(&l.body, f);
            body(&l.else_body, f);
        }
        Stmt::IfCond(i) => {
            visit_expressions_of_expr(&i.expr, f);
            body(&i.true_body, f);
            body(&i.false_body, f);
        }
        Stmt::WithBlock(w) => {
            for (_, value) in &w.assignments {
                visit_expressions_of_expr(value, f);
            }
            body(&w.body, f);
        }
        Stmt::Set(s) => visit_expressions_of_expr(&s.expr, f),
        Stmt::SetBlock(s) => {
            if let Some(filter) = &s.filter {
                visit_expressions_of_expr(filter, f);
            }
            body(&s.body, f);
        }
        Stmt::AutoEscape(a) => {
            visit_expressions_of_expr(&a.enabled, f);
            body(&a.body, f);
        }
        Stmt::FilterBlock(b) => {
            visit_expressions_of_expr(&b.filter, f);
            body(&b.body, f);
        }
        Stmt::Do(d) => {
            visit_expressions_of_expr(&d.call.expr, f);
            visit_args(&d.call.args, f);
        }
    }
}

/// Calls `f` on `expr` and every expression inside it, outermost first.
pub(crate) fn visit_expressions_of_expr<'a>(expr: &Expr<'a>, f: &mut dyn FnMut(&Expr<'a>)) {
    f(expr);
    let visit = |e: &Expr<'a>, f: &mut dyn FnMut(&Expr<'a>)| visit_expressions_of_expr(e, f);
    match expr {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(s) => {
            visit(&s.expr, f);
            for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                visit(part, f);
            }
        }
        Expr::UnaryOp(u) => visit(&u.expr, f),
        Expr::BinOp(b) => {
            visit(&b.left, f);
            visit(&b.right, f);
        }
        Expr::Compare(c) => {
            visit(&c.expr, f);
            c.ops.iter().for_each(|op| visit(&op.expr, f));
        }
        Expr::IfExpr(i) => {
            visit(&i.test_expr, f);
            visit(&i.true_expr, f);
            if let Some(otherwise) = &i.false_expr {
                visit(otherwise, f);
            }
        }
        Expr::Filter(filter) => {
            if let Some(operand) = &filter.expr {
                visit(operand, f);
            }
            visit_args(&filter.args, f);
        }
        Expr::Test(t) => {
            visit(&t.expr, f);
            visit_args(&t.args, f);
        }
        Expr::GetAttr(g) => visit(&g.expr, f),
        Expr::GetItem(g) => {
            visit(&g.expr, f);
            visit(&g.subscript_expr, f);
        }
        Expr::Call(c) => {
            visit(&c.expr, f);
            visit_args(&c.args, f);
        }
        Expr::List(l) => l.items.iter().for_each(|i| visit(i, f)),
        Expr::Tuple(t) => t.items.iter().for_each(|i| visit(i, f)),
        Expr::Map(m) => m.keys.iter().chain(&m.values).for_each(|i| visit(i, f)),
    }
}

fn visit_args<'a>(args: &[CallArg<'a>], f: &mut dyn FnMut(&Expr<'a>)) {
    for arg in args {
        match arg {
            CallArg::Pos(e)
            | CallArg::Kwarg(_, e)
            | CallArg::PosSplat(e)
            | CallArg::KwargSplat(e) => visit_expressions_of_expr(e, f),
        }
    }
}
