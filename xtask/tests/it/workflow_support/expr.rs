//! GitHub Actions expressions: the language inside `${{ … }}` and of bare `if:` conditions.
//!
//! What GitHub documents ("Evaluate expressions in workflows and actions") and nothing more:
//!
//! - literals: `null`, `true`, `false`, numbers (`42`, `-1.5`, `0xff`, `2e3`), and
//!   `'single-quoted strings'` where `''` is a quote;
//! - context paths: `github.event.pull_request.number`, `inputs.refresh-baseline` (names may hold
//!   `-`, there is no arithmetic), `a['x-y']`, `a[0]`;
//! - operators, loosest first: `||`, `&&`, `==` `!=`, `<` `<=` `>` `>=`, `!`, then `.` and `[]`;
//! - functions: `always()`, `success()`, `failure()`, `cancelled()`, `hashFiles(…)`,
//!   `format()`, `contains()`, `startsWith()`, `endsWith()`, `join()`, `toJSON()`,
//!   `fromJSON()`.
//!
//! Semantics that bite: `a || b` is the first *truthy operand itself*, not a boolean (so
//! `inputs.suites || 'all'` is the default idiom), `a && b` the first falsy one or the last;
//! `null`, `false`, `0`, `NaN` and `''` are falsy; `==` compares strings ignoring case and
//! coerces mixed types to numbers (`'' == 0`, `null == false`); a missing property is `null`,
//! but an unknown context name is an error, as it is on GitHub.
//!
//! Anything this module does not know (a function, an operator, `*` filters) is an error with
//! the expression in the message, never a silent guess.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

/// What the status functions say: for a step, about the steps before it; for a job, about
/// the jobs it needs (a skipped need is neither a success nor a failure).
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// `success()`: nothing before failed (every needed job succeeded).
    pub success: bool,
    /// `failure()`: something before failed.
    pub failure: bool,
}

impl Status {
    /// Nothing has failed yet.
    pub const OK: Status = Status { success: true, failure: false };
}

/// What an expression can see: the contexts available where it is written, and the status.
pub struct Scope<'a> {
    pub contexts: &'a Map<String, Value>,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(Value),
    Ident(String),
    Dot,
    Star,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Not,
    Op(BinOp),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Value),
    /// A top-level name: `github`, `inputs`, `steps`…
    Context(String),
    /// `a.b` or `a['b']` or `a[0]`: the key is itself an expression.
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

const STATUS_FUNCTIONS: &[&str] = &["always", "success", "failure", "cancelled"];
const FUNCTIONS: &[&str] = &[
    "always",
    "success",
    "failure",
    "cancelled",
    "hashfiles",
    "format",
    "contains",
    "startswith",
    "endswith",
    "join",
    "tojson",
    "fromjson",
];

/// The fixed value of `hashFiles(…)`: the harness restores no cache, so any stable hash will do.
pub const FAKE_HASH: &str = "4a1c0ffee0ddba11a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";

// ---------------------------------------------------------------------------------------------
// Lexing

fn lex(src: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let (token, len) = match c {
            _ if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '\'' => lex_string(&chars[i..])?,
            _ if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit() || n == '.')) => lex_number(&chars[i..])?,
            _ if c.is_ascii_alphabetic() || c == '_' => lex_word(&chars[i..]),
            '.' => (Token::Dot, 1),
            '*' => (Token::Star, 1),
            '[' => (Token::LBracket, 1),
            ']' => (Token::RBracket, 1),
            '(' => (Token::LParen, 1),
            ')' => (Token::RParen, 1),
            ',' => (Token::Comma, 1),
            '!' if next == Some('=') => (Token::Op(BinOp::Ne), 2),
            '!' => (Token::Not, 1),
            '=' if next == Some('=') => (Token::Op(BinOp::Eq), 2),
            '<' if next == Some('=') => (Token::Op(BinOp::Le), 2),
            '<' => (Token::Op(BinOp::Lt), 1),
            '>' if next == Some('=') => (Token::Op(BinOp::Ge), 2),
            '>' => (Token::Op(BinOp::Gt), 1),
            '&' if next == Some('&') => (Token::Op(BinOp::And), 2),
            '|' if next == Some('|') => (Token::Op(BinOp::Or), 2),
            _ => bail!("unexpected character `{c}` at offset {i}"),
        };
        out.push(token);
        i += len;
    }
    Ok(out)
}

/// `'it''s'` → `it's`.
fn lex_string(chars: &[char]) -> Result<(Token, usize)> {
    let mut text = String::new();
    let mut i = 1;
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (Some('\''), Some('\'')) => {
                text.push('\'');
                i += 2;
            }
            (Some('\''), _) => return Ok((Token::Literal(Value::String(text)), i + 1)),
            (Some(c), _) => {
                text.push(*c);
                i += 1;
            }
            (None, _) => bail!("unterminated string literal"),
        }
    }
}

/// A number: an optional `-`, then digits, letters (hex, exponent) and dots, with a sign only
/// right after an exponent's `e`.
fn lex_number(chars: &[char]) -> Result<(Token, usize)> {
    let mut len = usize::from(chars[0] == '-');
    while let Some(&c) = chars.get(len) {
        let exponent_sign = (c == '-' || c == '+') && matches!(chars[len - 1], 'e' | 'E');
        if !(c.is_ascii_alphanumeric() || c == '.' || exponent_sign) {
            break;
        }
        len += 1;
    }
    let text: String = chars[..len].iter().collect();
    let number = parse_number(&text).ok_or_else(|| anyhow!("`{text}` is not a number"))?;
    Ok((Token::Literal(number_value(number)), len))
}

/// An identifier: letters, digits, `_` and `-` (GitHub has no subtraction).
fn lex_word(chars: &[char]) -> (Token, usize) {
    let len = chars.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '-').count();
    let word: String = chars[..len].iter().collect();
    let token = match word.as_str() {
        "true" => Token::Literal(Value::Bool(true)),
        "false" => Token::Literal(Value::Bool(false)),
        "null" => Token::Literal(Value::Null),
        _ => Token::Ident(word),
    };
    (token, len)
}

// ---------------------------------------------------------------------------------------------
// Parsing: one function per precedence level.

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Parses an expression (the text between `${{` and `}}`, or a bare `if:`).
pub fn parse(src: &str) -> Result<Expr> {
    let tokens = lex(src).with_context(|| format!("expression `{src}`"))?;
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.or().with_context(|| format!("expression `{src}`"))?;
    if let Some(t) = parser.peek() {
        bail!("expression `{src}`: unexpected {t:?} after a complete expression");
    }
    Ok(expr)
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Token) -> Result<()> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            other => bail!("expected {want:?}, found {other:?}"),
        }
    }

    /// Left-associative binary level: `next_level (op next_level)*`.
    fn binary(&mut self, ops: &[BinOp], next_level: fn(&mut Parser) -> Result<Expr>) -> Result<Expr> {
        let mut left = next_level(self)?;
        while let Some(Token::Op(op)) = self.peek().cloned()
            && ops.contains(&op)
        {
            self.pos += 1;
            let right = next_level(self)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr> {
        self.binary(&[BinOp::Or], Parser::and)
    }

    fn and(&mut self) -> Result<Expr> {
        self.binary(&[BinOp::And], Parser::equality)
    }

    fn equality(&mut self) -> Result<Expr> {
        self.binary(&[BinOp::Eq, BinOp::Ne], Parser::comparison)
    }

    fn comparison(&mut self) -> Result<Expr> {
        self.binary(&[BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge], Parser::unary)
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr> {
        let mut expr = self.primary()?;
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Token::Ident(name)) => expr = Expr::Index(Box::new(expr), Box::new(Expr::Literal(Value::String(name)))),
                        // `true`, `null`… are fine property names after a dot.
                        Some(Token::Literal(v @ (Value::Bool(_) | Value::Null))) => {
                            expr = Expr::Index(Box::new(expr), Box::new(Expr::Literal(Value::String(v.to_string()))))
                        }
                        Some(Token::Star) => bail!("object filters (`.*`) are not supported by the harness"),
                        other => bail!("expected a property name after `.`, found {other:?}"),
                    }
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    if self.peek() == Some(&Token::Star) {
                        bail!("object filters (`[*]`) are not supported by the harness");
                    }
                    let key = self.or()?;
                    self.expect(Token::RBracket)?;
                    expr = Expr::Index(Box::new(expr), Box::new(key));
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        match self.next() {
            Some(Token::Literal(v)) => Ok(Expr::Literal(v)),
            Some(Token::LParen) => {
                let inner = self.or()?;
                self.expect(Token::RParen)?;
                Ok(inner)
            }
            Some(Token::Ident(name)) if self.peek() == Some(&Token::LParen) => {
                self.pos += 1;
                let lower = name.to_ascii_lowercase();
                if !FUNCTIONS.contains(&lower.as_str()) {
                    bail!("unknown function `{name}()`");
                }
                let mut args = Vec::new();
                if self.peek() != Some(&Token::RParen) {
                    args.push(self.or()?);
                    while self.peek() == Some(&Token::Comma) {
                        self.pos += 1;
                        args.push(self.or()?);
                    }
                }
                self.expect(Token::RParen)?;
                Ok(Expr::Call(lower, args))
            }
            Some(Token::Ident(name)) if name.contains('-') => bail!("`{name}` is not a context name"),
            Some(Token::Ident(name)) => Ok(Expr::Context(name)),
            other => bail!("expected a value, found {other:?}"),
        }
    }
}

impl Expr {
    /// True when the expression calls `success()`, `failure()`, `always()` or `cancelled()`:
    /// otherwise GitHub evaluates `success() && (expr)`.
    pub fn has_status_function(&self) -> bool {
        match self {
            Expr::Call(name, args) => STATUS_FUNCTIONS.contains(&name.as_str()) || args.iter().any(Expr::has_status_function),
            Expr::Index(a, b) | Expr::Binary(_, a, b) => a.has_status_function() || b.has_status_function(),
            Expr::Not(a) => a.has_status_function(),
            Expr::Literal(_) | Expr::Context(_) => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Evaluates a parsed expression.
pub fn eval(expr: &Expr, scope: &Scope<'_>) -> Result<Value> {
    Ok(match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Context(name) => lookup(scope.contexts, name)
            .ok_or_else(|| anyhow!("unrecognized named-value `{name}` (available here: {})", names(scope.contexts)))?
            .clone(),
        Expr::Index(target, key) => index(&eval(target, scope)?, &eval(key, scope)?),
        Expr::Not(inner) => Value::Bool(!truthy(&eval(inner, scope)?)),
        Expr::Binary(BinOp::And, a, b) => {
            let left = eval(a, scope)?;
            if truthy(&left) { eval(b, scope)? } else { left }
        }
        Expr::Binary(BinOp::Or, a, b) => {
            let left = eval(a, scope)?;
            if truthy(&left) { left } else { eval(b, scope)? }
        }
        Expr::Binary(op, a, b) => Value::Bool(compare(*op, &eval(a, scope)?, &eval(b, scope)?)),
        Expr::Call(name, args) => {
            let values = args.iter().map(|a| eval(a, scope)).collect::<Result<Vec<_>>>()?;
            call(name, &values, scope.status)?
        }
    })
}

/// Parses and evaluates `src`.
pub fn evaluate(src: &str, scope: &Scope<'_>) -> Result<Value> {
    let expr = parse(src)?;
    eval(&expr, scope).with_context(|| format!("expression `{src}`"))
}

fn names(contexts: &Map<String, Value>) -> String {
    contexts.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Property names are case-insensitive on GitHub.
fn lookup<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// `a[key]`: a property of an object, an element of an array; anything else is `null`.
fn index(target: &Value, key: &Value) -> Value {
    match (target, key) {
        (Value::Object(map), _) => lookup(map, &to_text(key)).cloned().unwrap_or(Value::Null),
        (Value::Array(items), _) => {
            let n = to_number(key);
            if n >= 0.0 && n.fract() == 0.0 { items.get(n as usize).cloned().unwrap_or(Value::Null) } else { Value::Null }
        }
        _ => Value::Null,
    }
}

/// GitHub's truthiness: `null`, `false`, `0`, `-0`, `NaN` and `''` are falsy.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A value as text, the way `${{ }}` interpolates it: `null` is empty, numbers without `.0`,
/// objects and arrays as JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => serde_json::to_string_pretty(v).unwrap_or_default(),
    }
}

/// GitHub's number coercion for mixed-type comparisons.
fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => parse_number(s.trim()).unwrap_or(f64::NAN),
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

fn parse_number(text: &str) -> Option<f64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok()? as f64,
        None if digits.chars().all(|c| c.is_ascii_digit() || "eE.+-".contains(c)) => digits.parse::<f64>().ok()?,
        None => return None,
    };
    Some(if negative { -value } else { value })
}

/// A JSON number, integral when it can be (so that `3` prints as `3`).
pub fn number_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn compare(op: BinOp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => None,
        _ => to_number(a).partial_cmp(&to_number(b)),
    };
    match op {
        BinOp::Eq => ordering == Some(Ordering::Equal),
        BinOp::Ne => ordering != Some(Ordering::Equal),
        BinOp::Lt => ordering == Some(Ordering::Less),
        BinOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        BinOp::Gt => ordering == Some(Ordering::Greater),
        BinOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        BinOp::And | BinOp::Or => unreachable!("short-circuit operators are evaluated in eval"),
    }
}

fn call(name: &str, args: &[Value], status: Status) -> Result<Value> {
    let arity = |range: std::ops::RangeInclusive<usize>| -> Result<()> {
        if range.contains(&args.len()) { Ok(()) } else { bail!("{name}() takes {range:?} arguments, got {}", args.len()) }
    };
    let text = |i: usize| to_text(&args[i]).to_lowercase();
    Ok(match name {
        "always" => {
            arity(0..=0)?;
            Value::Bool(true)
        }
        "success" => {
            arity(0..=0)?;
            Value::Bool(status.success)
        }
        "failure" => {
            arity(0..=0)?;
            Value::Bool(status.failure)
        }
        "cancelled" => {
            arity(0..=0)?;
            Value::Bool(false)
        }
        "hashfiles" => {
            arity(1..=usize::MAX)?;
            if let Some(bad) = args.iter().find(|a| !a.is_string()) {
                bail!("hashFiles() takes string patterns, got {bad}");
            }
            Value::String(FAKE_HASH.into())
        }
        "format" => {
            arity(1..=usize::MAX)?;
            Value::String(format_string(&to_text(&args[0]), &args[1..])?)
        }
        "contains" => {
            arity(2..=2)?;
            Value::Bool(match &args[0] {
                Value::Array(items) => items.iter().any(|item| compare(BinOp::Eq, item, &args[1])),
                _ => text(0).contains(&text(1)),
            })
        }
        "startswith" => {
            arity(2..=2)?;
            Value::Bool(text(0).starts_with(&text(1)))
        }
        "endswith" => {
            arity(2..=2)?;
            Value::Bool(text(0).ends_with(&text(1)))
        }
        "join" => {
            arity(1..=2)?;
            let separator = args.get(1).map_or_else(|| ",".to_string(), to_text);
            match &args[0] {
                Value::Array(items) => Value::String(items.iter().map(to_text).collect::<Vec<_>>().join(&separator)),
                other => Value::String(to_text(other)),
            }
        }
        "tojson" => {
            arity(1..=1)?;
            Value::String(serde_json::to_string_pretty(&args[0])?)
        }
        "fromjson" => {
            arity(1..=1)?;
            serde_json::from_str(&to_text(&args[0])).with_context(|| format!("fromJSON({})", args[0]))?
        }
        _ => bail!("unknown function `{name}()`"),
    })
}

/// `format('{0} and {{literal}}', x)`.
fn format_string(template: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                out.push(c);
                chars.next();
            }
            ('{', _) => {
                let digits: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let i: usize = digits.parse().map_err(|_| anyhow!("format(): `{{{digits}}}` is not an argument index"))?;
                let arg = args.get(i).ok_or_else(|| anyhow!("format(): no argument {i}"))?;
                out.push_str(&to_text(arg));
            }
            ('}', _) => bail!("format(): a lone `}}` in `{template}`"),
            _ => out.push(c),
        }
    }
    Ok(out)
}
