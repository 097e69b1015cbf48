//! The JSONPath dialect of CRD `additionalPrinterColumns` (client-go's `util/jsonpath`), enough
//! to compute Table cells the way the CRD API server does: `.a.b`, `.a[0]`, `.a[-1]`, `.a[1:3]`,
//! `.a[*]`, `.*`, `..a`, `['key']` (with `\.` escaping a dot that belongs to the key),
//! `['a','b']`, `[0,2]` and filters `[?(@.type=='Ready')]` with `==`, `!=`, `<`, `<=`, `>`,
//! `>=` against string, number, boolean and null literals or other `@` paths, or a bare
//! `[?(@.x)]` for "has x". An optional `$` root and one surrounding `{…}` are accepted.
//!
//! As in client-go, a missing key or an out-of-range index yields no result rather than an
//! error, a field of an array yields nothing (there is no implicit mapping), and an unescaped
//! `.` inside a bracketed key separates fields (`['a.b']` is `.a.b` there too), which is why
//! label keys are written `['serving\.knative\.dev/configuration']`.
//!
//! Unlike client-go, a value reached twice is selected once (the first time): every selected
//! value is a node of the one document, so each step selects at most as many values as the
//! document has nodes. Repeating `..` or a union would otherwise select a node once per way of
//! reaching it — exponentially many, which the fuzzer found (`........*..*..*` took over 10 s
//! and 700 MB on a small object). A Table cell shows the first value, which is the same.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::str::FromStr;

use serde_json::{Number, Value};

/// A parsed JSONPath expression, evaluated with [`JsonPath::query`].
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath {path:?} at character {offset}: {reason}")]
pub struct JsonPathError {
    /// The expression as given.
    pub path: String,
    /// Character offset of the problem within `path`.
    pub offset: usize,
    /// What was wrong there.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` / `['name']`: the member of an object.
    Child(String),
    /// `.*` / `[*]`: every member of an object or element of an array.
    Wildcard,
    /// `..`: the value itself and everything below it, depth first.
    Descendants,
    /// `[n]`; negative counts from the end.
    Index(i64),
    /// `[start:end:step]` with Python semantics (step > 0).
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    },
    /// `['a','b']` / `[0,2]`: each alternative path, results concatenated.
    Union(Vec<Vec<Step>>),
    /// `[?(…)]`: the elements of an array that pass.
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    /// `None` is the existence test `[?(@.x)]`.
    test: Option<(Comparison, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@…`, relative to the element being tested.
    Current(Vec<Step>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl JsonPath {
    /// Parses an expression such as `.status.conditions[?(@.type=='Ready')].status`.
    pub fn parse(text: &str) -> Result<Self, JsonPathError> {
        let trimmed = text.trim_start();
        let mut base = text.chars().count() - trimmed.chars().count();
        let trimmed = trimmed.trim_end();
        let inner = match trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(inner) => {
                base += 1;
                inner
            }
            None => trimmed,
        };
        let mut parser = Parser {
            original: text,
            chars: inner.chars().collect(),
            pos: 0,
            base,
        };
        parser.skip_whitespace();
        parser.eat('$');
        let steps = parser.steps(false)?;
        parser.skip_whitespace();
        match parser.peek() {
            None => Ok(Self { steps }),
            Some(c) => Err(parser.error(format!("unexpected {c:?}"))),
        }
    }

    /// Every value the expression selects in `root`, in document order; empty if none.
    pub fn query<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        apply(&self.steps, vec![root])
    }

    /// The first value the expression selects, which is what a Table cell shows.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.query(root).into_iter().next()
    }
}

impl FromStr for JsonPath {
    type Err = JsonPathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

fn apply<'a>(steps: &[Step], mut values: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        if values.is_empty() {
            break;
        }
        values = distinct(step.apply(values));
    }
    values
}

/// The values in order, each kept the first time it appears. Identity is the node's address:
/// every value is a node of the one document being queried.
fn distinct(values: Vec<&Value>) -> Vec<&Value> {
    if values.len() < 2 {
        // The common case (a Table cell's path selects one value per step) allocates nothing.
        return values;
    }
    let mut seen = HashSet::with_capacity(values.len());
    values
        .into_iter()
        .filter(|value| seen.insert(std::ptr::from_ref::<Value>(value)))
        .collect()
}

impl Step {
    fn apply<'a>(&self, values: Vec<&'a Value>) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if let Self::Descendants = self {
            // One `seen` for the whole step, so a subtree reached from two values is walked once.
            let mut seen = HashSet::new();
            for value in values {
                descendants(value, &mut seen, &mut out);
            }
        } else {
            for value in values {
                self.apply_to(value, &mut out);
            }
        }
        out
    }

    /// This step on one value.
    fn apply_to<'a>(&self, value: &'a Value, out: &mut Vec<&'a Value>) {
        match self {
            Self::Child(key) => out.extend(value.get(key.as_str())),
            Self::Wildcard => match value {
                Value::Object(map) => out.extend(map.values()),
                Value::Array(items) => out.extend(items),
                _ => {}
            },
            Self::Descendants => descendants(value, &mut HashSet::new(), out),
            Self::Index(i) => {
                if let Value::Array(items) = value
                    && let Some(index) = resolve_index(*i, items.len())
                {
                    out.extend(items.get(index));
                }
            }
            Self::Slice { start, end, step } => {
                if let Value::Array(items) = value {
                    let len = items.len();
                    let from = start.map_or(0, |s| clamp_index(s, len));
                    let to = end.map_or(len, |e| clamp_index(e, len));
                    let step = usize::try_from(*step).unwrap_or(1).max(1);
                    out.extend(items.iter().take(to).skip(from).step_by(step));
                }
            }
            Self::Union(alternatives) => {
                for path in alternatives {
                    out.extend(apply(path, vec![value]));
                }
            }
            Self::Filter(filter) => {
                if let Value::Array(items) = value {
                    out.extend(items.iter().filter(|item| filter.passes(item)));
                }
            }
        }
    }
}

/// `value` and everything below it, depth first, skipping nodes already in `seen`: a node seen
/// before had its whole subtree added then, so each node is visited once per step.
fn descendants<'a>(value: &'a Value, seen: &mut HashSet<*const Value>, out: &mut Vec<&'a Value>) {
    if !seen.insert(std::ptr::from_ref(value)) {
        return;
    }
    out.push(value);
    match value {
        Value::Object(map) => map.values().for_each(|v| descendants(v, seen, out)),
        Value::Array(items) => items.iter().for_each(|v| descendants(v, seen, out)),
        _ => {}
    }
}

/// An index into `len` elements, negative counting from the end; `None` if out of range.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if index < 0 { index + len } else { index };
    usize::try_from(index).ok().filter(|_| index < len)
}

/// A slice bound, negative counting from the end, clamped to `0..=len`.
fn clamp_index(index: i64, len: usize) -> usize {
    let signed_len = i64::try_from(len).unwrap_or(i64::MAX);
    let index = if index < 0 { index + signed_len } else { index };
    usize::try_from(index.clamp(0, signed_len)).unwrap_or(len)
}

impl Filter {
    fn passes(&self, item: &Value) -> bool {
        let left = self.left.first(item);
        match (&self.test, left) {
            (None, left) => left.is_some(),
            (Some(_), None) => false,
            (Some((comparison, right)), Some(left)) => right
                .first(item)
                .is_some_and(|right| compare(left, right, *comparison)),
        }
    }
}

impl Operand {
    fn first<'a>(&'a self, item: &'a Value) -> Option<&'a Value> {
        match self {
            Self::Current(steps) => apply(steps, vec![item]).into_iter().next(),
            Self::Literal(value) => Some(value),
        }
    }
}

/// Compares like client-go's template functions: numbers by value, strings lexically,
/// booleans and nulls only for (in)equality; values of different types never pass.
fn compare(left: &Value, right: &Value, comparison: Comparison) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => {
            return match comparison {
                Comparison::Eq => a == b,
                Comparison::Ne => a != b,
                _ => false,
            };
        }
        (Value::Null, Value::Null) => {
            return comparison == Comparison::Eq;
        }
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match comparison {
        Comparison::Eq => ordering == Ordering::Equal,
        Comparison::Ne => ordering != Ordering::Equal,
        Comparison::Lt => ordering == Ordering::Less,
        Comparison::Le => ordering != Ordering::Greater,
        Comparison::Gt => ordering == Ordering::Greater,
        Comparison::Ge => ordering != Ordering::Less,
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

struct Parser<'a> {
    original: &'a str,
    chars: Vec<char>,
    pos: usize,
    /// Characters before `chars` in `original` (whitespace, `{`), for error offsets.
    base: usize,
}

/// Characters that end an unquoted field name (a backslash makes any of them literal).
fn ends_name(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | '['
                | ']'
                | '('
                | ')'
                | ','
                | '='
                | '!'
                | '<'
                | '>'
                | '{'
                | '}'
                | '\''
                | '"'
                | '@'
                | '$'
        )
}

impl Parser<'_> {
    fn error(&self, reason: impl Into<String>) -> JsonPathError {
        JsonPathError {
            path: self.original.to_owned(),
            offset: self.base + self.pos,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), JsonPathError> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self
                .peek()
                .map_or("the end".to_owned(), |f| format!("{f:?}"));
            Err(self.error(format!("expected {c:?}, found {found}")))
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// A sequence of `.x`, `..x`, `[…]` steps. Inside a filter operand it stops at anything
    /// else (an operator, `)`, whitespace); at top level the caller rejects leftovers.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, JsonPathError> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        steps.push(Step::Descendants);
                    }
                    if self.eat('*') {
                        steps.push(Step::Wildcard);
                    } else {
                        // An empty name (`.` alone, `.[0]`) is the current value, as upstream.
                        let name = self.name();
                        if !name.is_empty() {
                            steps.push(Step::Child(name));
                        }
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.extend(self.bracket()?);
                }
                Some(c) if !in_filter && !c.is_whitespace() => {
                    return Err(self.error(format!("unexpected {c:?}, expected '.' or '['")));
                }
                _ => return Ok(steps),
            }
        }
    }

    /// An unquoted field name, with `\x` standing for a literal `x`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                if let Some(escaped) = self.peek_at(1) {
                    name.push(escaped);
                    self.pos += 2;
                    continue;
                }
            } else if ends_name(c) {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// The inside of `[…]`, after the `[`, through the `]`.
    fn bracket(&mut self) -> Result<Vec<Step>, JsonPathError> {
        self.skip_whitespace();
        let steps = match self.peek() {
            Some('?') => {
                self.pos += 1;
                self.expect('(')?;
                let filter = self.filter()?;
                vec![Step::Filter(Box::new(filter))]
            }
            Some('*') => {
                self.pos += 1;
                vec![Step::Wildcard]
            }
            Some('\'' | '"') => {
                let mut alternatives = vec![self.quoted_key()?];
                self.skip_whitespace();
                while self.eat(',') {
                    self.skip_whitespace();
                    alternatives.push(self.quoted_key()?);
                    self.skip_whitespace();
                }
                if alternatives.len() == 1 {
                    alternatives.remove(0)
                } else {
                    vec![Step::Union(alternatives)]
                }
            }
            _ => vec![self.numeric()?],
        };
        self.skip_whitespace();
        self.expect(']')?;
        Ok(steps)
    }

    /// `'…'` or `"…"` as a key path: unescaped dots split it into fields, `\x` is a literal `x`.
    fn quoted_key(&mut self) -> Result<Vec<Step>, JsonPathError> {
        let start = self.pos;
        let quote = self.peek().unwrap_or('\'');
        self.pos += 1;
        let mut fields = Vec::new();
        let mut field = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.pos = start;
                return Err(self.error("unterminated quoted key"));
            };
            self.pos += 1;
            match c {
                _ if c == quote => break,
                '\\' => {
                    if let Some(escaped) = self.peek() {
                        self.pos += 1;
                        field.push(escaped);
                    }
                }
                '.' => fields.push(std::mem::take(&mut field)),
                _ => field.push(c),
            }
        }
        fields.push(field);
        Ok(fields.into_iter().map(Step::Child).collect())
    }

    /// `n`, `a:b`, `a:b:s` or `n,m,…` inside brackets.
    fn numeric(&mut self) -> Result<Step, JsonPathError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != ']') {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let number = |s: &str| -> Result<Option<i64>, JsonPathError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>().map(Some).map_err(|_| JsonPathError {
                path: self.original.to_owned(),
                offset: self.base + start,
                reason: format!("{text:?} is not an index, slice, quoted key, '*' or filter"),
            })
        };
        if text.contains(',') {
            let mut alternatives = Vec::new();
            for part in text.split(',') {
                match number(part)? {
                    Some(i) => alternatives.push(vec![Step::Index(i)]),
                    None => return Err(self.error("empty index in a union")),
                }
            }
            return Ok(Step::Union(alternatives));
        }
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [index] => match number(index)? {
                Some(i) => Ok(Step::Index(i)),
                None => Err(self.error("empty brackets")),
            },
            [start, end] => Ok(Step::Slice {
                start: number(start)?,
                end: number(end)?,
                step: 1,
            }),
            [start, end, step] => {
                let step = number(step)?.unwrap_or(1);
                if step <= 0 {
                    return Err(self.error("a slice step must be positive"));
                }
                Ok(Step::Slice {
                    start: number(start)?,
                    end: number(end)?,
                    step,
                })
            }
            _ => Err(self.error(format!("{text:?} has too many ':'"))),
        }
    }

    /// The inside of `?(…)`, after the `(`, through the `)`.
    fn filter(&mut self) -> Result<Filter, JsonPathError> {
        self.skip_whitespace();
        let left = self.operand()?;
        self.skip_whitespace();
        if self.eat(')') {
            return Ok(Filter { left, test: None });
        }
        let comparison = self.comparison()?;
        self.skip_whitespace();
        let right = self.operand()?;
        self.skip_whitespace();
        self.expect(')')?;
        Ok(Filter {
            left,
            test: Some((comparison, right)),
        })
    }

    fn comparison(&mut self) -> Result<Comparison, JsonPathError> {
        let two: String = self.chars.iter().skip(self.pos).take(2).collect();
        let (comparison, width) = match two.as_str() {
            "==" => (Comparison::Eq, 2),
            "!=" => (Comparison::Ne, 2),
            "<=" => (Comparison::Le, 2),
            ">=" => (Comparison::Ge, 2),
            _ if two.starts_with('<') => (Comparison::Lt, 1),
            _ if two.starts_with('>') => (Comparison::Gt, 1),
            _ => return Err(self.error("expected ')' or one of ==, !=, <, <=, >, >=")),
        };
        self.pos += width;
        Ok(comparison)
    }

    fn operand(&mut self) -> Result<Operand, JsonPathError> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.steps(true)?))
            }
            Some(quote @ ('\'' | '"')) => {
                let start = self.pos;
                self.pos += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        None => {
                            self.pos = start;
                            return Err(self.error("unterminated string"));
                        }
                        Some(c) if c == quote => {
                            self.pos += 1;
                            break;
                        }
                        Some('\\') => {
                            self.pos += 1;
                            if let Some(c) = self.peek() {
                                text.push(c);
                                self.pos += 1;
                            }
                        }
                        Some(c) => {
                            text.push(c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(Operand::Literal(Value::String(text)))
            }
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                let literal = match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => match serde_json::from_str::<Number>(&word) {
                        Ok(n) => Value::Number(n),
                        Err(_) => {
                            self.pos = start;
                            return Err(self.error(
                                "expected '@…', a quoted string, a number, true, false or null",
                            ));
                        }
                    },
                };
                Ok(Operand::Literal(literal))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn revision() -> Value {
        json!({
            "metadata": {
                "name": "hello-00001",
                "labels": {
                    "serving.knative.dev/configuration": "hello",
                    "serving.knative.dev/configurationGeneration": "1",
                    "app": "web",
                },
            },
            "status": {
                "actualReplicas": 2,
                "conditions": [
                    {"type": "Active", "status": "False", "reason": "NoTraffic"},
                    {"type": "Ready", "status": "True"},
                    {"type": "ResourcesAvailable", "status": "True", "priority": 3},
                ],
            },
            "items": [10, 20, 30, 40],
        })
    }

    fn query(path: &str) -> Vec<Value> {
        let doc = revision();
        let parsed = JsonPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
        parsed.query(&doc).into_iter().cloned().collect()
    }

    #[test]
    fn every_registry_path_parses() {
        for r in crate::registry::resources() {
            for c in r.columns {
                if let crate::registry::CellSource::JsonPath(p) = c.source {
                    assert!(JsonPath::parse(p).is_ok(), "{}: {p}", r.plural);
                }
            }
        }
    }

    #[test]
    fn fields_and_missing_keys() {
        assert_eq!(query(".metadata.name"), [json!("hello-00001")]);
        assert_eq!(query("$.metadata.name"), [json!("hello-00001")]);
        assert_eq!(query("{.metadata.name}"), [json!("hello-00001")]);
        assert_eq!(query(" { .status.actualReplicas } "), [json!(2)]);
        assert!(query(".status.desiredReplicas").is_empty());
        assert!(query(".metadata.name.deeper").is_empty());
        // No implicit mapping over arrays.
        assert!(query(".status.conditions.type").is_empty());
        assert_eq!(query("."), [revision()]);
    }

    #[test]
    fn bracketed_keys_with_escaped_dots() {
        assert_eq!(
            query(".metadata.labels['serving\\.knative\\.dev/configuration']"),
            [json!("hello")]
        );
        assert_eq!(
            query(".metadata.labels[\"serving\\.knative\\.dev/configurationGeneration\"]"),
            [json!("1")]
        );
        assert_eq!(
            query(".metadata.labels.serving\\.knative\\.dev/configuration"),
            [json!("hello")]
        );
        // An unescaped dot separates fields, as in client-go.
        assert!(query(".metadata.labels['serving.knative.dev/configuration']").is_empty());
        assert_eq!(query("['metadata.name']"), [json!("hello-00001")]);
        assert_eq!(
            query(".metadata.labels['app', 'missing', 'serving\\.knative\\.dev/configuration']"),
            [json!("web"), json!("hello")]
        );
    }

    #[test]
    fn indices_slices_and_wildcards() {
        assert_eq!(query(".items[0]"), [json!(10)]);
        assert_eq!(query(".items[-1]"), [json!(40)]);
        assert!(query(".items[4]").is_empty());
        assert!(query(".items[-5]").is_empty());
        assert_eq!(query(".items[1:3]"), [json!(20), json!(30)]);
        assert_eq!(query(".items[:2]"), [json!(10), json!(20)]);
        assert_eq!(query(".items[-2:]"), [json!(30), json!(40)]);
        assert_eq!(query(".items[::2]"), [json!(10), json!(30)]);
        assert_eq!(query(".items[0,3]"), [json!(10), json!(40)]);
        assert_eq!(query(".items[*]").len(), 4);
        assert_eq!(query(".status.conditions[*].type").len(), 3);
        assert_eq!(query(".status.conditions[1].status"), [json!("True")]);
        assert_eq!(query(".metadata.*").len(), 2);
        assert!(query(".metadata.name[0]").is_empty());
    }

    #[test]
    fn recursive_descent() {
        assert_eq!(
            query("..reason"),
            [json!("NoTraffic")],
            "every 'reason' anywhere"
        );
        assert_eq!(query("..type").len(), 3);
    }

    /// Found by the `jsonpath` fuzz target: each repeated `..` or duplicated union multiplied
    /// the selection, and `........*..*..*` ran for more than 10 s in 700 MB.
    #[test]
    fn a_node_reached_many_ways_is_selected_once() {
        fn count(value: &Value) -> usize {
            1 + match value {
                Value::Object(map) => map.values().map(count).sum(),
                Value::Array(items) => items.iter().map(count).sum(),
                _ => 0,
            }
        }
        let nodes = count(&revision());
        assert_eq!(query("..").len(), nodes, "every node, the root included");
        assert_eq!(query("........").len(), nodes);
        assert_eq!(query("..*").len(), nodes - 1, "all but the root");
        assert_eq!(query("..*..*").len(), query("..*.*").len());
        assert_eq!(query(".items[0,0,0][0]").len(), 0);
        assert_eq!(query(".items[0,0,0,1]"), [json!(10), json!(20)]);
        assert_eq!(query("..['type','type']").len(), 3);
        let fuzzed = "................................................................................................................................................................*..*..\u{e}*..*...........+.................................................................................*..*..*..*..\u{e}*..*..*..*.*..\u{0}*..\u{0}*.[?(@)].";
        if let Ok(path) = JsonPath::parse(fuzzed) {
            assert!(path.query(&revision()).len() <= nodes);
        }
    }

    #[test]
    fn filters() {
        assert_eq!(
            query(".status.conditions[?(@.type=='Ready')].status"),
            [json!("True")]
        );
        assert_eq!(
            query(".status.conditions[?(@.type==\"Active\")].reason"),
            [json!("NoTraffic")]
        );
        assert_eq!(
            query(".status.conditions[?( @.type != 'Ready' )].type"),
            [json!("Active"), json!("ResourcesAvailable")]
        );
        assert_eq!(
            query(".status.conditions[?(@.reason)].type"),
            [json!("Active")]
        );
        assert_eq!(
            query(".status.conditions[?(@.priority>=3)].type"),
            [json!("ResourcesAvailable")]
        );
        assert!(query(".status.conditions[?(@.priority<3)]").is_empty());
        assert!(query(".status.conditions[?(@.priority=='3')]").is_empty());
        assert!(query(".status.conditions[?(@.type=='Missing')].status").is_empty());
        // A filter on a non-array selects nothing.
        assert!(query(".metadata[?(@.name)]").is_empty());
        let doc = json!({"a": [{"x": 1.5, "y": true}, {"x": 2, "y": false}, {"x": null}]});
        let run = |p: &str| JsonPath::parse(p).expect(p).query(&doc).len();
        assert_eq!(run(".a[?(@.x>1)]"), 2);
        assert_eq!(run(".a[?(@.x==2.0)]"), 1);
        assert_eq!(run(".a[?(@.y==true)]"), 1);
        assert_eq!(run(".a[?(@.y!=true)]"), 1);
        assert_eq!(run(".a[?(@.x==null)]"), 1);
        assert_eq!(run(".a[?(@.x==@.x)]"), 3);
    }

    #[test]
    fn first_is_the_first_match() {
        let doc = revision();
        let path: JsonPath = ".status.conditions[*].status".parse().expect("parses");
        assert_eq!(path.first(&doc), Some(&json!("False")));
        let path: JsonPath = ".nope".parse().expect("parses");
        assert_eq!(path.first(&doc), None);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("status", 0, "unexpected 's'"),
            (".a[", 3, "empty brackets"),
            (".a[x]", 3, "is not an index"),
            (".a[1", 4, "expected ']'"),
            (".a['b", 3, "unterminated quoted key"),
            (".a[?(@.b=='c')", 14, "expected ']'"),
            (".a[?(@.b ~ 'c')]", 9, "expected ')' or one of"),
            (".a[?(@.b==c)]", 10, "expected '@…'"),
            (".a[::0]", 6, "step must be positive"),
            (".a[1:2:3:4]", 10, "too many ':'"),
            (".a x", 3, "unexpected 'x'"),
            ("{.a} x", 0, "unexpected '{'"),
        ];
        for (path, offset, want) in cases {
            let error = JsonPath::parse(path).expect_err(path);
            assert!(error.reason.contains(want), "{path}: {error}");
            assert_eq!(error.offset, offset, "{path}: {error}");
            assert!(error.to_string().contains(&format!("{path:?}")));
        }
    }
}
