//! `labelSelector`: a comma-separated AND of requirements on `metadata.labels`.
//!
//! The lexer and the recursive-descent parser mirror apimachinery's `labels/selector.go`
//! token for token, so the same text means the same thing (and fails at the same place) here
//! as on a real API server: whitespace separates tokens and is otherwise ignored, `in`/`notin`
//! are keywords only where an operator may stand, `k=` selects the empty value, and `in ()`
//! selects the empty value rather than being an error.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::SelectorError;

/// Longest label name part and label value (a DNS label's length).
const MAX_NAME: usize = 63;
/// Longest label key prefix (a DNS subdomain's length).
const MAX_PREFIX: usize = 253;

/// A parsed `labelSelector`: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
/// `k>n`, `k<n`; comma = AND.
///
/// Keys are validated like Kubernetes (an optional DNS-1123 subdomain prefix and `/`, then a
/// name of at most 63 characters of `[A-Za-z0-9._-]` starting and ending alphanumeric); values
/// are at most 63 characters of the label-value charset, or empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// One AND-ed term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    test: Test,
}

/// What a requirement asks of its key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    /// `=`, `==`, `in`: the label exists and its value is one of these.
    In(BTreeSet<String>),
    /// `!=`, `notin`: the label is absent or its value is none of these.
    NotIn(BTreeSet<String>),
    /// `k`: the label exists.
    Exists,
    /// `!k`: the label does not exist.
    DoesNotExist,
    /// `k>n`: the label exists, is an integer, and is greater than `n`.
    GreaterThan(i64),
    /// `k<n`: the label exists, is an integer, and is less than `n`.
    LessThan(i64),
}

impl LabelSelector {
    /// Parses a selector; the empty (or all-whitespace) text selects everything.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Parser::new(text).selector()
    }

    /// Whether `labels` (an object's `metadata.labels`, absent = no labels) satisfies every
    /// requirement. Non-string label values never match anything: the API refuses them, so
    /// such an object can only come from a bug, and silently matching it would hide that.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            r.test.matches(value)
        })
    }

    /// Whether the selector selects everything (no requirements).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl Test {
    fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Self::In(values), Some(v)) => values.contains(v),
            (Self::NotIn(values), Some(v)) => !values.contains(v),
            (Self::NotIn(_), None) => true,
            (Self::Exists, v) => v.is_some(),
            (Self::DoesNotExist, v) => v.is_none(),
            (Self::GreaterThan(bound), Some(v)) => v.parse::<i64>().is_ok_and(|n| n > *bound),
            (Self::LessThan(bound), Some(v)) => v.parse::<i64>().is_ok_and(|n| n < *bound),
            (Self::In(_) | Self::GreaterThan(_) | Self::LessThan(_), None) => false,
        }
    }
}

/// Token kinds of apimachinery's label selector lexer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Identifier,
    In,
    NotIn,
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    Open,
    Close,
    Comma,
    End,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

impl Token<'_> {
    /// How an error message shows this token.
    fn shown(&self) -> String {
        if self.kind == Kind::End {
            "end of string".to_owned()
        } else {
            format!("'{}'", self.text)
        }
    }
}

/// Where the parser is: `in`/`notin` are operators only where an operator may stand, so
/// `k in (in)` and `in=notin` are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the selector into tokens, ending with one `End`.
fn lex(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        let start = pos;
        let Some(&first) = bytes.get(pos) else {
            tokens.push(Token {
                kind: Kind::End,
                text: "",
            });
            return tokens;
        };
        let kind = if is_special(first) {
            // Every special byte is a token alone; only `!=` and `==` are longer.
            let pair = (first, bytes.get(pos + 1).copied());
            pos += 1;
            match pair {
                (b'!', Some(b'=')) => {
                    pos += 1;
                    Kind::NotEquals
                }
                (b'=', Some(b'=')) => {
                    pos += 1;
                    Kind::DoubleEquals
                }
                (b'!', _) => Kind::Bang,
                (b'=', _) => Kind::Equals,
                (b'(', _) => Kind::Open,
                (b')', _) => Kind::Close,
                (b',', _) => Kind::Comma,
                (b'>', _) => Kind::GreaterThan,
                _ => Kind::LessThan,
            }
        } else {
            while pos < bytes.len() && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            match &text[start..pos] {
                "in" => Kind::In,
                "notin" => Kind::NotIn,
                _ => Kind::Identifier,
            }
        };
        // Token boundaries fall on ASCII bytes, so slicing cannot split a UTF-8 character.
        tokens.push(Token {
            kind,
            text: &text[start..pos],
        });
    }
}

struct Parser<'a> {
    selector: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(selector: &'a str) -> Self {
        Self {
            selector,
            tokens: lex(selector),
            pos: 0,
        }
    }

    fn peek(&self, context: Context) -> Token<'a> {
        let token = self.tokens.get(self.pos).copied().unwrap_or(Token {
            kind: Kind::End,
            text: "",
        });
        match (context, token.kind) {
            (Context::Values, Kind::In | Kind::NotIn) => Token {
                kind: Kind::Identifier,
                ..token
            },
            _ => token,
        }
    }

    fn next(&mut self, context: Context) -> Token<'a> {
        let token = self.peek(context);
        if token.kind != Kind::End {
            self.pos += 1;
        }
        token
    }

    fn syntax(&self, found: Token<'_>, expected: &'static str) -> SelectorError {
        SelectorError::LabelSyntax {
            selector: self.selector.to_owned(),
            found: found.shown(),
            expected,
        }
    }

    fn selector(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let token = self.peek(Context::Values);
            match token.kind {
                Kind::Identifier | Kind::Bang => {
                    requirements.push(self.requirement()?);
                    let after = self.next(Context::Values);
                    match after.kind {
                        Kind::End => return Ok(LabelSelector { requirements }),
                        Kind::Comma => {
                            let following = self.peek(Context::Values);
                            if !matches!(following.kind, Kind::Identifier | Kind::Bang) {
                                return Err(self.syntax(following, "identifier after ','"));
                            }
                        }
                        _ => return Err(self.syntax(after, "',' or 'end of string'")),
                    }
                }
                Kind::End => return Ok(LabelSelector { requirements }),
                _ => return Err(self.syntax(token, "!, identifier, or 'end of string'")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut token = self.next(Context::Values);
        let negated = token.kind == Kind::Bang;
        if negated {
            token = self.next(Context::Values);
        }
        if token.kind != Kind::Identifier {
            return Err(self.syntax(token, "identifier"));
        }
        let key = token.text.to_owned();
        if let Err(reason) = validate_key(&key) {
            return Err(SelectorError::LabelKey { key, reason });
        }
        // `!k` is complete by itself; anything after it fails in `selector` as "expected ','",
        // which is where apimachinery reports it too.
        let ends = matches!(self.peek(Context::Values).kind, Kind::End | Kind::Comma);
        if negated || ends {
            let test = if negated {
                Test::DoesNotExist
            } else {
                Test::Exists
            };
            return Ok(Requirement { key, test });
        }

        let operator = self.next(Context::KeyAndOperator);
        let values = match operator.kind {
            Kind::In | Kind::NotIn => self.value_set()?,
            Kind::Equals
            | Kind::DoubleEquals
            | Kind::NotEquals
            | Kind::GreaterThan
            | Kind::LessThan => BTreeSet::from([self.exact_value()?]),
            _ => return Err(self.syntax(operator, "in, notin, =, ==, !=, gt, lt")),
        };
        for value in &values {
            if let Err(reason) = validate_value(value) {
                return Err(SelectorError::LabelValue {
                    key,
                    value: value.clone(),
                    reason,
                });
            }
        }
        let test = match operator.kind {
            Kind::In | Kind::Equals | Kind::DoubleEquals => Test::In(values),
            Kind::NotIn | Kind::NotEquals => Test::NotIn(values),
            _ => {
                let value = values.into_iter().next().unwrap_or_default();
                let Ok(bound) = value.parse::<i64>() else {
                    return Err(SelectorError::LabelNotInteger { key, value });
                };
                if operator.kind == Kind::GreaterThan {
                    Test::GreaterThan(bound)
                } else {
                    Test::LessThan(bound)
                }
            }
        };
        Ok(Requirement { key, test })
    }

    /// `( … )` after `in`/`notin`. Empty entries (`()`, `(a,)`, `(,a)`, `(a,,b)`) stand for
    /// the empty value, as upstream.
    fn value_set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let open = self.next(Context::Values);
        if open.kind != Kind::Open {
            return Err(self.syntax(open, "'('"));
        }
        let first = self.peek(Context::Values);
        match first.kind {
            Kind::Close => {
                self.next(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            Kind::Identifier | Kind::Comma => {
                let values = self.value_list()?;
                let close = self.next(Context::Values);
                if close.kind != Kind::Close {
                    return Err(self.syntax(close, "')'"));
                }
                Ok(values)
            }
            _ => Err(self.syntax(first, "',', ')' or identifier")),
        }
    }

    /// The comma-separated list inside `( … )`; stops before the closing parenthesis.
    fn value_list(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let mut values = BTreeSet::new();
        loop {
            let token = self.next(Context::Values);
            match token.kind {
                Kind::Identifier => {
                    values.insert(token.text.to_owned());
                    let after = self.peek(Context::Values);
                    match after.kind {
                        Kind::Comma => {}
                        Kind::Close => return Ok(values),
                        _ => return Err(self.syntax(after, "',' or ')'")),
                    }
                }
                Kind::Comma => {
                    // A comma with nothing before it, or nothing after it, is an empty value.
                    // Like upstream, `,,` is swallowed whole, so `(a,,)` is an error.
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    match self.peek(Context::Values).kind {
                        Kind::Close => {
                            values.insert(String::new());
                            return Ok(values);
                        }
                        Kind::Comma => {
                            self.next(Context::Values);
                            values.insert(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(self.syntax(token, "',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing at all means the empty value.
    fn exact_value(&mut self) -> Result<String, SelectorError> {
        if matches!(self.peek(Context::Values).kind, Kind::End | Kind::Comma) {
            return Ok(String::new());
        }
        let token = self.next(Context::Values);
        if token.kind == Kind::Identifier {
            Ok(token.text.to_owned())
        } else {
            Err(self.syntax(token, "identifier"))
        }
    }
}

/// A label key: `[prefix/]name`, the prefix a DNS-1123 subdomain (Kubernetes' `IsQualifiedName`).
fn validate_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        None => key,
        Some((_, name)) if name.contains('/') => {
            return Err(
                "a label key may contain at most one '/' (an optional DNS subdomain prefix, e.g. 'example.com/name')",
            );
        }
        Some((prefix, name)) => {
            validate_prefix(prefix)?;
            name
        }
    };
    if name.is_empty() {
        return Err("name part must be non-empty");
    }
    if name.len() > MAX_NAME {
        return Err("name part must be no more than 63 characters");
    }
    if !is_label_token(name) {
        return Err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// A key prefix: a lowercase RFC 1123 subdomain of at most 253 characters.
fn validate_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Err("prefix part must be non-empty");
    }
    if prefix.len() > MAX_PREFIX {
        return Err("prefix part must be no more than 253 characters");
    }
    let part_ok = |part: &str| {
        let b = part.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|c| alnum(c) || *c == b'-')
    };
    if prefix.split('.').all(part_ok) {
        Ok(())
    } else {
        Err(
            "prefix part must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character",
        )
    }
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` starting and ending
/// alphanumeric.
fn validate_value(value: &str) -> Result<(), &'static str> {
    if value.len() > MAX_NAME {
        return Err("must be no more than 63 characters");
    }
    if !value.is_empty() && !is_label_token(value) {
        return Err(
            "a label value must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, the shape shared by key names and values.
fn is_label_token(text: &str) -> bool {
    let b = text.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter()
            .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    fn selects(selector: &str, value: Value) -> bool {
        let selector = LabelSelector::parse(selector).unwrap_or_else(|e| panic!("{e}"));
        selector.matches(Some(&labels(value)))
    }

    fn error(selector: &str) -> String {
        match LabelSelector::parse(selector) {
            Ok(parsed) => panic!("{selector:?} parsed as {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        for text in ["", "  ", "\t\n"] {
            let selector = LabelSelector::parse(text).expect("empty parses");
            assert!(selector.is_empty());
            assert!(selector.matches(None));
            assert!(selector.matches(Some(&labels(json!({"a": "b"})))));
        }
        assert!(!LabelSelector::parse("a").expect("parses").is_empty());
    }

    #[test]
    fn equality_operators() {
        for text in ["app=web", "app==web", " app = web ", "app ==web"] {
            assert!(selects(text, json!({"app": "web"})), "{text}");
            assert!(!selects(text, json!({"app": "db"})), "{text}");
            assert!(!selects(text, json!({})), "{text}");
        }
        assert!(selects("app!=web", json!({"app": "db"})));
        assert!(!selects("app!=web", json!({"app": "web"})));
        // A missing label is "not equal", as upstream.
        assert!(selects("app!=web", json!({})));
    }

    #[test]
    fn empty_values_select_the_empty_label() {
        assert!(selects("app=", json!({"app": ""})));
        assert!(!selects("app=", json!({"app": "web"})));
        assert!(!selects("app=", json!({})));
        assert!(selects("app=,tier=db", json!({"app": "", "tier": "db"})));
        assert!(selects("app!=", json!({"app": "web"})));
        assert!(selects("app in ()", json!({"app": ""})));
        assert!(!selects("app in ()", json!({"app": "x"})));
        assert!(selects("app in (a,)", json!({"app": ""})));
        assert!(selects("app in (,a)", json!({"app": ""})));
        assert!(selects("app in (a,,b)", json!({"app": ""})));
        assert!(!selects("app in (a,b)", json!({"app": ""})));
    }

    #[test]
    fn existence_operators() {
        assert!(selects("app", json!({"app": ""})));
        assert!(!selects("app", json!({"other": "x"})));
        assert!(selects("!app", json!({"other": "x"})));
        assert!(!selects("!app", json!({"app": "x"})));
        assert!(selects(" ! app ", json!({})));
        let selector = LabelSelector::parse("app").expect("parses");
        assert!(!selector.matches(None));
        let selector = LabelSelector::parse("!app").expect("parses");
        assert!(selector.matches(None));
    }

    #[test]
    fn set_operators() {
        let text = "env in (prod, staging)";
        assert!(selects(text, json!({"env": "prod"})));
        assert!(selects(text, json!({"env": "staging"})));
        assert!(!selects(text, json!({"env": "dev"})));
        assert!(!selects(text, json!({})));
        let text = "env notin (prod,staging)";
        assert!(selects(text, json!({"env": "dev"})));
        assert!(selects(text, json!({})));
        assert!(!selects(text, json!({"env": "prod"})));
        // Keywords are plain words where a value may stand.
        assert!(selects("in in (in, notin)", json!({"in": "notin"})));
        assert!(selects("notin=in", json!({"notin": "in"})));
    }

    #[test]
    fn integer_comparisons() {
        assert!(selects("gen>2", json!({"gen": "3"})));
        assert!(!selects("gen>2", json!({"gen": "2"})));
        assert!(!selects("gen>2", json!({"gen": "x"})));
        assert!(!selects("gen>2", json!({})));
        assert!(selects("gen<10", json!({"gen": "9"})));
        assert!(!selects("gen<10", json!({"gen": "10"})));
        assert!(error("gen>x").contains("must be an integer"));
    }

    #[test]
    fn requirements_are_anded() {
        let text = "serving.knative.dev/configuration=hello,env in (prod),!canary";
        let both = json!({"serving.knative.dev/configuration": "hello", "env": "prod"});
        assert!(selects(text, both));
        let canary =
            json!({"serving.knative.dev/configuration": "hello", "env": "prod", "canary": "y"});
        assert!(!selects(text, canary));
        assert!(!selects(text, json!({"env": "prod"})));
    }

    #[test]
    fn non_string_label_values_never_match() {
        assert!(!selects("a=1", json!({"a": 1})));
        assert!(!selects("a", json!({"a": true})));
        assert!(selects("!a", json!({"a": null})));
    }

    #[test]
    fn syntax_errors_echo_the_bad_token() {
        let cases = [
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            ("a,", "found end of string, expected: identifier after ','"),
            ("a,,b", "found ',', expected: identifier after ','"),
            ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, lt"),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a=(b)", "found '(', expected: identifier"),
            ("a in b", "found 'b', expected: '('"),
            ("a in (b", "found end of string, expected: ',' or ')'"),
            ("a in (b c)", "found 'c', expected: ',' or ')'"),
            ("a in (=)", "found '=', expected: ',', ')' or identifier"),
            ("a in (b,=)", "found '=', expected: ',', or identifier"),
            ("a in (b,,)", "found ')', expected: ',', or identifier"),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            ("!", "found end of string, expected: identifier"),
            ("a=b)", "found ')', expected: ',' or 'end of string'"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(got.contains(want), "{text:?}: {got}");
            assert!(got.contains(&format!("{text:?}")), "{text:?}: {got}");
        }
    }

    #[test]
    fn keys_are_qualified_names() {
        for good in [
            "a",
            "A.b_c-D9",
            "example.com/name",
            "serving.knative.dev/configurationGeneration",
            "node-role.kubernetes.io/control-plane",
        ] {
            assert!(LabelSelector::parse(good).is_ok(), "{good}");
        }
        let cases = [
            ("-a", "name part must consist"),
            ("a-", "name part must consist"),
            ("a/b/c", "at most one '/'"),
            ("/a", "prefix part must be non-empty"),
            ("a/", "name part must be non-empty"),
            (
                "Example.com/a",
                "prefix part must be a lowercase RFC 1123 subdomain",
            ),
            (
                "ex..com/a",
                "prefix part must be a lowercase RFC 1123 subdomain",
            ),
            ("ä", "name part must consist"),
        ];
        for (key, want) in cases {
            let got = error(key);
            assert!(got.contains(want), "{key:?}: {got}");
            assert!(got.contains(&format!("{key:?}")), "{key:?}: {got}");
        }
        let long = "a".repeat(64);
        assert!(error(&long).contains("no more than 63"));
        assert!(LabelSelector::parse(&"a".repeat(63)).is_ok());
        let long_prefix = format!("{}/a", "a".repeat(254));
        assert!(error(&long_prefix).contains("no more than 253"));
    }

    #[test]
    fn values_are_label_values() {
        assert!(LabelSelector::parse(&format!("a={}", "v".repeat(63))).is_ok());
        let got = error(&format!("a={}", "v".repeat(64)));
        assert!(got.contains("no more than 63"), "{got}");
        for bad in ["a=-x", "a=x-", "a in (ok, b@d)", "a!=x/y"] {
            let got = error(bad);
            assert!(
                got.contains("a label value must be empty or consist"),
                "{bad}: {got}"
            );
        }
    }
}
