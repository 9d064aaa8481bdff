//! Template and expression trees printed back as minijinja source, with the
//! comparisons that need our rule (`compare.rs`) turned into calls of
//! [`compare::FUNCTION`]. Only templates with such comparisons are printed;
//! everything else compiles from the text as written.
//!
//! The printer adds parentheses only where precedence needs them (minijinja's
//! parser allows 150 nested levels), prints every test with its parentheses
//! (`x is defined()`: without them, a following `- 1` would be read as the
//! test's argument), and prints literal text that could be mistaken for a
//! delimiter, or that ends a template with a newline minijinja would drop, as
//! a string expression. `tests/unparse.rs` (in this module's tests) checks that
//! printing then parsing prints the same again and renders as the original.

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt, UnaryOpKind};
use minijinja::value::ValueKind;
use minijinja::Value;

use super::compare::{self, Op};

/// `expr` as source text.
pub(crate) fn expression(expr: &Expr<'_>) -> String {
    let mut printer = Printer::default();
    printer.expr(expr, Prec::If);
    printer.out
}

/// `stmt` (a whole template) as source text.
pub(crate) fn template(stmt: &Stmt<'_>) -> String {
    let mut printer = Printer::default();
    printer.stmt(stmt);
    printer.out
}

/// Whether `expr` holds a comparison that needs the rule.
pub(crate) fn expression_needs_rule(expr: &Expr<'_>) -> bool {
    let mut found = false;
    super::check::visit_expressions_of_expr(expr, &mut |e| found |= rewritten(e).is_some());
    found
}

/// Whether the template `stmt` holds a comparison that needs the rule.
pub(crate) fn template_needs_rule(stmt: &Stmt<'_>) -> bool {
    let mut found = false;
    super::check::visit_expressions_of_stmt(stmt, &mut |e| found |= rewritten(e).is_some());
    found
}

/// Binding strength, weakest first, as in minijinja's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    If,
    Or,
    And,
    Not,
    Compare,
    Math1,
    Concat,
    Math2,
    Pow,
    Unary,
    Postfix,
    Primary,
}

impl Prec {
    /// The next stronger level: what the right side of a left-associative
    /// operator (and either side of a comparison) must bind at least as
    /// strongly as.
    fn next(self) -> Prec {
        match self {
            Prec::If => Prec::Or,
            Prec::Or => Prec::And,
            Prec::And => Prec::Not,
            Prec::Not => Prec::Compare,
            Prec::Compare => Prec::Math1,
            Prec::Math1 => Prec::Concat,
            Prec::Concat => Prec::Math2,
            Prec::Math2 => Prec::Pow,
            Prec::Pow => Prec::Unary,
            Prec::Unary => Prec::Postfix,
            Prec::Postfix | Prec::Primary => Prec::Primary,
        }
    }
}

/// The operands and operators of a comparison that needs the rule.
type Chain<'e, 'a> = (&'e Expr<'a>, Vec<(Op, &'e Expr<'a>)>);

/// The comparison `expr` is, when it needs the rule.
fn rewritten<'e, 'a>(expr: &'e Expr<'a>) -> Option<Chain<'e, 'a>> {
    match expr {
        Expr::BinOp(b) => {
            let op = Op::of_binop(b.op)?;
            compare::needs_rule(op, &b.left, &b.right).then(|| (&b.left, vec![(op, &b.right)]))
        }
        Expr::Compare(c) => {
            let ops: Vec<(Op, &Expr<'a>)> = c
                .ops
                .iter()
                .map(|o| (Op::of_compare(o.op), &o.expr))
                .collect();
            let mut left = &c.expr;
            let mut needed = false;
            for (op, right) in &ops {
                needed |= compare::needs_rule(*op, left, right);
                left = right;
            }
            needed.then_some((&c.expr, ops))
        }
        _ => None,
    }
}

fn binop(op: BinOpKind) -> (Prec, &'static str) {
    match op {
        BinOpKind::ScOr => (Prec::Or, "or"),
        BinOpKind::ScAnd => (Prec::And, "and"),
        BinOpKind::Eq => (Prec::Compare, "=="),
        BinOpKind::Ne => (Prec::Compare, "!="),
        BinOpKind::Lt => (Prec::Compare, "<"),
        BinOpKind::Lte => (Prec::Compare, "<="),
        BinOpKind::Gt => (Prec::Compare, ">"),
        BinOpKind::Gte => (Prec::Compare, ">="),
        BinOpKind::In => (Prec::Compare, "in"),
        BinOpKind::Add => (Prec::Math1, "+"),
        BinOpKind::Sub => (Prec::Math1, "-"),
        BinOpKind::Concat => (Prec::Concat, "~"),
        BinOpKind::Mul => (Prec::Math2, "*"),
        BinOpKind::Div => (Prec::Math2, "/"),
        BinOpKind::FloorDiv => (Prec::Math2, "//"),
        BinOpKind::Rem => (Prec::Math2, "%"),
        BinOpKind::Pow => (Prec::Pow, "**"),
    }
}

fn prec(expr: &Expr<'_>) -> Prec {
    if rewritten(expr).is_some() {
        return Prec::Postfix;
    }
    match expr {
        Expr::Var(_) | Expr::List(_) | Expr::Tuple(_) | Expr::Map(_) => Prec::Primary,
        Expr::Const(c) if is_negative(&c.value) => Prec::Unary,
        Expr::Const(_) => Prec::Primary,
        Expr::Slice(_) | Expr::GetAttr(_) | Expr::GetItem(_) | Expr::Call(_) => Prec::Postfix,
        Expr::UnaryOp(u) => match u.op {
            UnaryOpKind::Not => Prec::Not,
            UnaryOpKind::Neg => Prec::Unary,
        },
        Expr::BinOp(b) => binop(b.op).0,
        Expr::Compare(_) => Prec::Compare,
        Expr::IfExpr(_) => Prec::If,
        Expr::Filter(_) | Expr::Test(_) => Prec::Unary,
    }
}

/// Whether the innermost receiver of `expr` is a variable named `not`, which
/// minijinja only reads as the argument of a test written without brackets.
fn root_is_not(expr: &Expr<'_>) -> bool {
    match expr {
        Expr::Var(v) => v.id == "not",
        Expr::GetAttr(g) => root_is_not(&g.expr),
        Expr::GetItem(g) => root_is_not(&g.expr),
        Expr::Slice(s) => root_is_not(&s.expr),
        Expr::Call(c) => root_is_not(&c.expr),
        _ => false,
    }
}

fn is_negative(value: &Value) -> bool {
    value.kind() == ValueKind::Number
        && f64::try_from(value.clone()).is_ok_and(|f| f.is_sign_negative())
}

#[derive(Default)]
struct Printer {
    out: String,
}

impl Printer {
    fn push(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// `expr`, in parentheses when it binds more weakly than `min`.
    fn expr(&mut self, expr: &Expr<'_>, min: Prec) {
        if prec(expr) < min {
            self.push("(");
            self.bare(expr);
            self.push(")");
        } else {
            self.bare(expr);
        }
    }

    /// The receiver of `.name`, `[…]` or `(…)`: a number literal takes
    /// parentheses so that `1.a` is not read as a number.
    fn receiver(&mut self, expr: &Expr<'_>) {
        if matches!(expr, Expr::Const(c) if c.value.kind() == ValueKind::Number) {
            self.push("(");
            self.bare(expr);
            self.push(")");
        } else {
            self.expr(expr, Prec::Postfix);
        }
    }

    fn bare(&mut self, expr: &Expr<'_>) {
        if let Some((first, rest)) = rewritten(expr) {
            self.push(compare::FUNCTION);
            self.push("(");
            self.expr(first, Prec::If);
            for (op, operand) in rest {
                self.push(", ");
                self.push(&literal_text(op.text()));
                self.push(", ");
                self.expr(operand, Prec::If);
            }
            self.push(")");
            return;
        }
        match expr {
            Expr::Var(v) => self.push(v.id),
            Expr::Const(c) => self.push(&literal(&c.value)),
            Expr::Slice(s) => {
                self.receiver(&s.expr);
                self.push("[");
                self.optional(&s.start);
                self.push(":");
                self.optional(&s.stop);
                if let Some(step) = &s.step {
                    self.push(":");
                    self.expr(step, Prec::If);
                }
                self.push("]");
            }
            Expr::UnaryOp(u) => match u.op {
                UnaryOpKind::Not => {
                    self.push("not ");
                    self.expr(&u.expr, Prec::Not);
                }
                UnaryOpKind::Neg => {
                    self.push("-");
                    self.expr(&u.expr, Prec::Postfix);
                }
            },
            Expr::BinOp(b) => {
                let (level, text) = binop(b.op);
                let left = if level == Prec::Compare {
                    level.next()
                } else {
                    level
                };
                self.expr(&b.left, left);
                self.push(" ");
                self.push(text);
                self.push(" ");
                self.expr(&b.right, level.next());
            }
            Expr::Compare(c) => {
                self.expr(&c.expr, Prec::Math1);
                for op in &c.ops {
                    self.push(" ");
                    self.push(Op::of_compare(op.op).text());
                    self.push(" ");
                    self.expr(&op.expr, Prec::Math1);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.true_expr, Prec::Or);
                self.push(" if ");
                self.expr(&i.test_expr, Prec::Or);
                if let Some(otherwise) = &i.false_expr {
                    self.push(" else ");
                    self.expr(otherwise, Prec::If);
                }
            }
            Expr::Filter(f) => self.filter(f),
            Expr::Test(t) => {
                self.expr(&t.expr, Prec::Unary);
                self.push(" is ");
                self.push(t.name);
                match t.args.as_slice() {
                    // `x is defined not in y` reads `not` as the test's
                    // argument; only that form can say it again.
                    [CallArg::Pos(arg)] if root_is_not(arg) => {
                        self.push(" ");
                        self.expr(arg, Prec::Postfix);
                    }
                    args => {
                        self.push("(");
                        self.args(args);
                        self.push(")");
                    }
                }
            }
            Expr::GetAttr(g) => {
                self.receiver(&g.expr);
                self.push(".");
                self.push(g.name);
            }
            Expr::GetItem(g) => {
                self.receiver(&g.expr);
                self.push("[");
                self.expr(&g.subscript_expr, Prec::If);
                self.push("]");
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => {
                self.push("[");
                self.items(&l.items);
                self.push("]");
            }
            Expr::Tuple(t) => {
                self.push("(");
                self.items(&t.items);
                if t.items.len() == 1 {
                    self.push(",");
                }
                self.push(")");
            }
            Expr::Map(m) => {
                // Spaces inside the braces: `}}` would end a `{{ }}` block.
                self.push("{ ");
                for (i, (key, value)) in m.keys.iter().zip(&m.values).enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.expr(key, Prec::If);
                    self.push(": ");
                    self.expr(value, Prec::If);
                }
                self.push(" }");
            }
        }
    }

    fn optional(&mut self, expr: &Option<Expr<'_>>) {
        if let Some(expr) = expr {
            self.expr(expr, Prec::If);
        }
    }

    /// A filter, or a chain of them; the innermost of a `{% filter %}` or
    /// `{% set … | … %}` chain has no operand.
    fn filter(&mut self, f: &ast::Filter<'_>) {
        if let Some(operand) = &f.expr {
            self.expr(operand, Prec::Unary);
            self.push("|");
        }
        self.push(f.name);
        if !f.args.is_empty() {
            self.push("(");
            self.args(&f.args);
            self.push(")");
        }
    }

    fn call(&mut self, c: &ast::Call<'_>) {
        self.receiver(&c.expr);
        self.push("(");
        self.args(&c.args);
        self.push(")");
    }

    fn items(&mut self, items: &[Expr<'_>]) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.expr(item, Prec::If);
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            match arg {
                CallArg::Pos(e) => self.expr(e, Prec::If),
                CallArg::Kwarg(name, e) => {
                    self.push(name);
                    self.push("=");
                    self.expr(e, Prec::If);
                }
                CallArg::PosSplat(e) => {
                    self.push("*");
                    self.expr(e, Prec::If);
                }
                CallArg::KwargSplat(e) => {
                    self.push("**");
                    self.expr(e, Prec::If);
                }
            }
        }
    }

    /// An assignment target: a name, `ns.attr`, or several (a list node).
    fn target(&mut self, target: &Expr<'_>, nested: bool) {
        match target {
            Expr::List(l) => {
                if nested {
                    self.push("(");
                }
                for (i, item) in l.items.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.target(item, true);
                }
                if l.items.len() == 1 {
                    self.push(",");
                }
                if nested {
                    self.push(")");
                }
            }
            other => self.expr(other, Prec::Postfix),
        }
    }

    fn body(&mut self, body: &[Stmt<'_>]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) {
        match stmt {
            Stmt::Template(t) => self.body(&t.children),
            Stmt::EmitExpr(e) => {
                self.push("{{ ");
                self.expr(&e.expr, Prec::If);
                self.push(" }}");
            }
            Stmt::EmitRaw(r) => self.raw(r.raw),
            Stmt::ForLoop(f) => {
                self.push("{% for ");
                self.target(&f.target, false);
                self.push(" in ");
                self.expr(&f.iter, Prec::Or);
                if let Some(filter) = &f.filter_expr {
                    self.push(" if ");
                    self.expr(filter, Prec::If);
                }
                if f.recursive {
                    self.push(" recursive");
                }
                self.push(" %}");
                self.body(&f.body);
                if !f.else_body.is_empty() {
                    self.push("{% else %}");
                    self.body(&f.else_body);
                }
                self.push("{% endfor %}");
            }
            Stmt::IfCond(i) => {
                self.push("{% if ");
                self.expr(&i.expr, Prec::Or);
                self.push(" %}");
                self.body(&i.true_body);
                if !i.false_body.is_empty() {
                    self.push("{% else %}");
                    self.body(&i.false_body);
                }
                self.push("{% endif %}");
            }
            Stmt::WithBlock(w) => {
                self.push("{% with ");
                for (i, (target, value)) in w.assignments.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.target(target, true);
                    self.push(" = ");
                    self.expr(value, Prec::If);
                }
                self.push(" %}");
                self.body(&w.body);
                self.push("{% endwith %}");
            }
            Stmt::Set(s) => {
                self.push("{% set ");
                self.target(&s.target, false);
                self.push(" = ");
                self.expr(&s.expr, Prec::If);
                self.push(" %}");
            }
            Stmt::SetBlock(s) => {
                self.push("{% set ");
                self.target(&s.target, false);
                if let Some(Expr::Filter(f)) = &s.filter {
                    self.push(" | ");
                    self.filter(f);
                }
                self.push(" %}");
                self.body(&s.body);
                self.push("{% endset %}");
            }
            Stmt::AutoEscape(a) => {
                self.push("{% autoescape ");
                self.expr(&a.enabled, Prec::If);
                self.push(" %}");
                self.body(&a.body);
                self.push("{% endautoescape %}");
            }
            Stmt::FilterBlock(f) => {
                self.push("{% filter ");
                if let Expr::Filter(chain) = &f.filter {
                    self.filter(chain);
                }
                self.push(" %}");
                self.body(&f.body);
                self.push("{% endfilter %}");
            }
            Stmt::Do(d) => {
                self.push("{% do ");
                self.call(&d.call);
                self.push(" %}");
            }
        }
    }

    /// Literal template text: as it is, unless a brace could join a delimiter
    /// or a final newline would be dropped; then as a string expression.
    fn raw(&mut self, text: &str) {
        if text.contains(['{', '}']) || text.ends_with('\n') {
            self.push("{{ ");
            self.push(&literal_text(text));
            self.push(" }}");
        } else {
            self.push(text);
        }
    }
}

/// A constant as a literal.
fn literal(value: &Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "none".to_owned(),
        ValueKind::Bool => if value.is_true() { "true" } else { "false" }.to_owned(),
        ValueKind::String => literal_text(value.as_str().unwrap_or_default()),
        ValueKind::Number => match i128::try_from(value.clone()) {
            Ok(i) => i.to_string(),
            Err(_) => match f64::try_from(value.clone()) {
                // `{:?}` keeps a `.0` or an exponent, so it reads back as a float.
                Ok(f) if f.is_finite() => format!("{f:?}"),
                Ok(f) if f > 0.0 => "1e999".to_owned(),
                Ok(f) if f < 0.0 => "-1e999".to_owned(),
                _ => "none".to_owned(),
            },
        },
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .map(|items| items.map(|v| literal(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        // The parser makes constants of literals only: none of these occur.
        _ => literal_text(&value.to_string()),
    }
}

/// Text as a double-quoted string literal.
fn literal_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
