//! YAML read the way Kubernetes reads it, with the place of every node kept.
//!
//! `kubectl` turns a manifest into JSON with `sigs.k8s.io/yaml`, which decodes with
//! `go-yaml` v2: YAML 1.1 scalars. So `0444` is the octal 292, `yes`/`no`/`on`/`off`/`y`/`n`
//! are booleans, `1_000` is 1000, `0b101` is 5, a timestamp stays a string, and a quoted
//! scalar is always a string. Map keys become strings (`true`, `292`), and the JSON the API
//! server finally sees holds integers only up to `i64` (larger ones arrive as floats).
//!
//! Why hand-written: the maintained Rust YAML crates resolve scalars by YAML 1.2 (serde_yaml,
//! its forks, saphyr) or by a YAML 1.1 approximation that differs from go-yaml on `y`/`n`,
//! `0X1F`, `08` and friends (serde-saphyr's options). A manifest judged differently from
//! how the cluster stores it is a wrong verdict, so this module takes only the syntax from a
//! maintained, pure-Rust parser (`saphyr-parser`: events with their spans) and resolves
//! scalars itself, rule by rule after go-yaml's `resolve.go`. `tests/e2e` compares the result
//! with `kubectl create --dry-run=client -o json` on a corpus of tricky scalars.
//!
//! Each document comes with [`Marks`], a tree shaped like the value that says where each
//! node starts in the source, so an error found later in the JSON (a field that does not
//! fit its type) can still name the line of the original file. No I/O: the engine's policy
//! loader uses it too.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};

/// A YAML error with its place in the source (line and column from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct Error {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What a key written twice in one mapping does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// The last one wins, as `kubectl` reads manifests.
    LastWins,
    /// An error naming the key and its line (the policy file, where a repeated key is a
    /// mistake worth stopping for).
    Refuse,
}

/// One document of a stream: its value as JSON and where each node sits in the source.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub marks: Marks,
}

/// Where a node starts (line and column from 1), with the marks of its children: a tree
/// shaped like the document's value. A mapping entry is marked at its key, the line a
/// reader looks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    pub line: usize,
    pub column: usize,
    children: Children,
}

#[derive(Debug, Clone, Default, PartialEq)]
enum Children {
    #[default]
    Leaf,
    Map(BTreeMap<String, Marks>),
    Seq(Vec<Marks>),
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl Marks {
    fn at(span: &Span) -> Marks {
        Marks {
            line: span.start.line(),
            column: span.start.col() + 1,
            children: Children::Leaf,
        }
    }

    /// The marks of a mapping entry.
    pub fn key(&self, key: &str) -> Option<&Marks> {
        match &self.children {
            Children::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The marks of a sequence item.
    pub fn index(&self, i: usize) -> Option<&Marks> {
        match &self.children {
            Children::Seq(s) => s.get(i),
            _ => None,
        }
    }

    /// The deepest node along `path` that the source has: for a path the document does not
    /// hold to its end (a missing field), the closest parent that it does.
    pub fn locate<'m>(&'m self, path: &[Step]) -> &'m Marks {
        let mut here = self;
        for step in path {
            let next = match step {
                Step::Key(k) => here.key(k),
                Step::Index(i) => here.index(*i),
            };
            match next {
                Some(n) => here = n,
                None => break,
            }
        }
        here
    }

    /// [`Marks::locate`] for a path written as the engine writes them:
    /// `spec.containers[0].securityContext`.
    pub fn locate_dotted(&self, path: &str) -> &Marks {
        self.locate(&parse_dotted(path))
    }
}

/// `spec.containers[0].env[1]` as steps. Keys with dots cannot be told apart from nesting
/// here; the engine's paths name none.
pub fn parse_dotted(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                steps.push(Step::Key(rest[..open].to_string()));
            }
            rest = &rest[open..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(close) = inner.find(']') else { break };
                if let Ok(i) = inner[..close].parse() {
                    steps.push(Step::Index(i));
                }
                rest = &inner[close + 1..];
            }
        } else {
            steps.push(Step::Key(rest.to_string()));
        }
    }
    steps
}

/// Every document of a YAML stream, in order. Empty documents come back as `null`.
pub fn read_stream(text: &str, duplicates: Duplicates) -> Result<Vec<Document>, Error> {
    let mut reader = Reader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        expanded: 0,
        duplicates,
    };
    let mut docs = Vec::new();
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => return Ok(docs),
            Event::DocumentStart(_) => {
                // Anchors belong to their document.
                reader.anchors.clear();
                let (event, span) = reader.next()?;
                let node = reader.node(event, span, 0)?;
                docs.push(Document {
                    value: node.value,
                    marks: node.marks,
                });
            }
            other => {
                return Err(error_at(&span, format!("unexpected {}", describe(&other))));
            }
        }
    }
}

/// Deserializes a document into `T`, naming the path and the line of a field that does
/// not fit (`checks.tokn`, line 3).
pub fn from_document<T: DeserializeOwned>(doc: &Document) -> Result<T, Error> {
    serde_path_to_error::deserialize(&doc.value).map_err(|e| {
        let steps = path_steps(e.path());
        let at = doc.marks.locate(&steps);
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        Error {
            line: at.line,
            column: at.column,
            message: if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            },
        }
    })
}

/// The steps of a `serde_path_to_error` path, to look up in [`Marks`].
pub fn path_steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { variant } => Some(Step::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Nesting deeper than this is refused rather than risking the stack: a debug build on a
/// 2 MiB thread stack (a test thread's) overflowed at 512 levels. Real manifests, CRD
/// schemas included, stay far below.
const MAX_DEPTH: usize = 200;
/// Nodes that aliases may add by copying their anchors: enough for any real manifest,
/// far too few for a "billion laughs" document.
const MAX_EXPANDED: usize = 1_000_000;

struct Reader<'a> {
    parser: Parser<'a, StrInput<'a>>,
    /// Finished anchored nodes of the current document, by the parser's anchor id.
    anchors: HashMap<usize, Node>,
    expanded: usize,
    duplicates: Duplicates,
}

#[derive(Clone)]
struct Node {
    value: Value,
    marks: Marks,
    /// Number of nodes, for the alias budget.
    size: usize,
    /// For a scalar key: its text resolved as a key (`yes` -> `true`, `0444` -> `292`).
    key: Option<Result<String, String>>,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Error> {
        match self.parser.next_event() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => Err(scan_error(&e)),
            None => Err(Error {
                line: 0,
                column: 0,
                message: "unexpected end of the stream".into(),
            }),
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node, Error> {
        if depth > MAX_DEPTH {
            return Err(error_at(
                &span,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let scalar =
                    resolve(&text, style, tag.as_deref()).map_err(|m| error_at(&span, m))?;
                let node = Node {
                    value: scalar.to_json().map_err(|m| error_at(&span, m))?,
                    marks: Marks::at(&span),
                    size: 1,
                    key: Some(scalar.to_key()),
                };
                (node, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let mut marks = Vec::new();
                let mut size = 1;
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item = self.node(event, span, depth + 1)?;
                    size += item.size;
                    items.push(item.value);
                    marks.push(item.marks);
                }
                let mut m = Marks::at(&span);
                m.children = Children::Seq(marks);
                let node = Node {
                    value: Value::Array(items),
                    marks: m,
                    size,
                    key: None,
                };
                (node, anchor)
            }
            Event::MappingStart(anchor, _) => (self.mapping(span, depth)?, anchor),
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id) else {
                    return Err(error_at(
                        &span,
                        "alias to an anchor that is not defined before it (or contains the alias itself)".into(),
                    ));
                };
                self.expanded += node.size;
                if self.expanded > MAX_EXPANDED {
                    return Err(error_at(
                        &span,
                        format!("aliases expand to more than {MAX_EXPANDED} nodes"),
                    ));
                }
                return Ok(node.clone());
            }
            other => {
                return Err(error_at(&span, format!("unexpected {}", describe(&other))));
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, span: Span, depth: usize) -> Result<Node, Error> {
        let mut map = Map::new();
        let mut marks = BTreeMap::new();
        let mut size = 1;
        loop {
            let (event, key_span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let merge = matches!(&event, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<")
                || matches!(&event, Event::Scalar(t, _, _, Some(tag)) if t == "<<" && core_tag(tag) == Some("merge"));
            let key = self.node(event, key_span, depth + 1)?;
            let (event, value_span) = self.next()?;
            let value = self.node(event, value_span, depth + 1)?;
            size += key.size + value.size;
            if merge {
                merge_into(&mut map, &mut marks, value, &key_span)?;
                continue;
            }
            let name = match key.key {
                Some(Ok(name)) => name,
                Some(Err(m)) => return Err(error_at(&key_span, m)),
                None => {
                    return Err(error_at(
                        &key_span,
                        "a mapping key must be a scalar, not a mapping or sequence".into(),
                    ));
                }
            };
            if self.duplicates == Duplicates::Refuse && map.contains_key(&name) {
                return Err(error_at(&key_span, format!("duplicate key {name:?}")));
            }
            let mut m = value.marks;
            // The entry is marked at its key: `env:` rather than the first item below it.
            m.line = key.marks.line;
            m.column = key.marks.column;
            marks.insert(name.clone(), m);
            map.insert(name, value.value);
        }
        let mut m = Marks::at(&span);
        m.children = Children::Map(marks);
        Ok(Node {
            value: Value::Object(map),
            marks: m,
            size,
            key: None,
        })
    }
}

/// `<<: *base` or `<<: [*a, *b]`: the entries of the merged mappings, written in place (a
/// later key overrides them, and among several mappings the first wins), as go-yaml v2 does.
fn merge_into(
    map: &mut Map<String, Value>,
    marks: &mut BTreeMap<String, Marks>,
    node: Node,
    span: &Span,
) -> Result<(), Error> {
    let wrong = || {
        error_at(
            span,
            "a merge key (<<) takes a mapping or a sequence of mappings".into(),
        )
    };
    let mut merge_one = |value: Value, m: Option<&Marks>| -> Result<(), Error> {
        let Value::Object(entries) = value else {
            return Err(wrong());
        };
        for (k, v) in entries {
            if let Some(km) = m.and_then(|m| m.key(&k)) {
                marks.insert(k.clone(), km.clone());
            }
            map.insert(k, v);
        }
        Ok(())
    };
    match node.value {
        Value::Object(_) => merge_one(node.value, Some(&node.marks)),
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate().rev() {
                merge_one(item, node.marks.index(i))?;
            }
            Ok(())
        }
        _ => Err(wrong()),
    }
}

/// A scalar after resolution.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// Fits `u64` but not `i64`.
    Uint(u64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The JSON the API server receives for this scalar (after kubectl's round trip through
    /// Go's `encoding/json` and its number handling).
    fn to_json(&self) -> Result<Value, String> {
        Ok(match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::from(*i),
            Scalar::Uint(u) => float_json(*u as f64)?,
            Scalar::Float(f) => float_json(*f)?,
            Scalar::Str(s) => Value::String(s.clone()),
        })
    }

    /// The string a map key becomes (`sigs.k8s.io/yaml`'s rules).
    fn to_key(&self) -> Result<String, String> {
        match self {
            Scalar::Str(s) => Ok(s.clone()),
            Scalar::Bool(b) => Ok(b.to_string()),
            Scalar::Int(i) => Ok(i.to_string()),
            Scalar::Float(f) => Ok(go_float_key(*f)),
            Scalar::Null => Err("a mapping key must not be null".into()),
            Scalar::Uint(_) => {
                Err("a mapping key must not be an integer beyond the signed 64-bit range".into())
            }
        }
    }
}

/// A float as the API server reads it. Go's `encoding/json` writes a float below 1e21 in
/// plain notation, its shortest digits padded with zeros (2^63 becomes
/// `9223372036854775808`, and -2^63-1 `-9223372036854776000`), and Kubernetes' JSON
/// decoding keeps it a float, which kubectl writes the same way again. So the API server
/// receives that digit string, which JSON readers (serde_json included) take as an integer
/// when it fits 64 bits.
fn float_json(f: f64) -> Result<Value, String> {
    if !f.is_finite() {
        return Err("infinity and NaN cannot be written as JSON".into());
    }
    if f.fract() == 0.0
        && f.abs() < 1e21
        && let Some(i) = go_plain_integer(f)
    {
        if let Ok(i) = i64::try_from(i) {
            return Ok(Value::from(i));
        }
        if let Ok(u) = u64::try_from(i) {
            return Ok(Value::from(u));
        }
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "a number JSON cannot hold".into())
}

/// The integer Go's plain notation of an integral `f` spells.
fn go_plain_integer(f: f64) -> Option<i128> {
    // `{:e}` gives the shortest digits that read back as `f`, as Go's formatting uses.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e')?;
    let exp: usize = exp.parse().ok()?;
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if digits.len() > exp + 1 {
        return None;
    }
    let text = format!(
        "{}{digits}{}",
        if negative { "-" } else { "" },
        "0".repeat(exp + 1 - digits.len())
    );
    text.parse().ok()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, which `sigs.k8s.io/yaml` uses for float keys.
fn go_float_key(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    // Shortest digits that give the same f32 back, as Go's `-1` precision with 32 bits.
    let e = format!("{:e}", f as f32);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp < 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point - digits.len()));
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// `!!str` -> `str` for tags of the YAML core schema.
fn core_tag(tag: &Tag) -> Option<&str> {
    tag.is_yaml_core_schema().then_some(tag.suffix.as_str())
}

/// go-yaml v2's `resolve` for one scalar, with its tag and style.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Scalar, String> {
    let Some(tag) = tag else {
        return Ok(if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Scalar::Str(text.to_string())
        });
    };
    let wanted = match core_tag(tag) {
        Some(t @ ("bool" | "int" | "float" | "null")) => t,
        // `!!timestamp` values reach JSON as their text, like untagged ones.
        Some("str" | "timestamp") => return Ok(Scalar::Str(text.to_string())),
        Some("binary") => {
            return Err("!!binary scalars are not supported; write the text itself".into());
        }
        // Tags go-yaml cannot resolve (`!custom`, `!!set` on a scalar) leave the text as is.
        _ => return Ok(Scalar::Str(text.to_string())),
    };
    let resolved = resolve_plain(text);
    let fits = match (&resolved, wanted) {
        (Scalar::Bool(_), "bool") | (Scalar::Null, "null") => true,
        (Scalar::Int(_) | Scalar::Uint(_), "int") | (Scalar::Float(_), "float") => true,
        (Scalar::Int(i), "float") => return Ok(Scalar::Float(*i as f64)),
        _ => false,
    };
    if fits {
        Ok(resolved)
    } else {
        Err(format!("cannot read {text:?} as !!{wanted}"))
    }
}

/// A plain (unquoted, untagged) scalar, as go-yaml v2 resolves it.
fn resolve_plain(text: &str) -> Scalar {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Scalar::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Scalar::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let string = || Scalar::Str(text.to_string());
    match text.as_bytes()[0] {
        // Not in the table above, so maybe a float such as `.5`.
        b'.' => match go_parse_float(text) {
            Some(f) => Scalar::Float(f),
            None => string(),
        },
        b'0'..=b'9' | b'+' | b'-' => {
            // A timestamp (`2001-12-14`) would be tried here; go-yaml hands it to an
            // untyped target as its text, which is what falls out below anyway.
            let plain: String = text.chars().filter(|c| *c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return match i64::try_from(i) {
                    Ok(i) => Scalar::Int(i),
                    Err(_) if i > 0 && !plain.starts_with('+') => match u64::try_from(i) {
                        Ok(u) => Scalar::Uint(u),
                        Err(_) => string(),
                    },
                    Err(_) => float_or_string(&plain, text),
                };
            }
            float_or_string(&plain, text)
        }
        _ => string(),
    }
}

/// After the integer forms: a YAML-style float, else a `0b` form with a sign inside
/// (go-yaml tries those last), else the text.
fn float_or_string(plain: &str, text: &str) -> Scalar {
    if is_yaml_style_float(plain)
        && let Some(f) = go_parse_float(plain)
    {
        return Scalar::Float(f);
    }
    if let Some(rest) = plain.strip_prefix("0b")
        && let Some(i) = parse_signed_radix(rest, 2)
        && let Ok(i) = i64::try_from(i)
    {
        return Scalar::Int(i);
    }
    Scalar::Str(text.to_string())
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms reaching it here; an overflow is
/// an error in Go, so it gives `None`.
fn go_parse_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    // Rust also reads `inf`, `nan` and `infinity`; Go's forms reaching here never are.
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, go-yaml's float shape.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseInt(s, 0, 64)` widened: sign, then `0x`/`0o`/`0b` or a leading `0`
/// for octal, else decimal. The caller decides what fits.
fn go_parse_int(s: &str) -> Option<i128> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    let magnitude = parse_unsigned_radix(digits, radix)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Digits only (no sign), at most what `u64` holds.
fn parse_unsigned_radix(digits: &str, radix: u32) -> Option<i128> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().map(i128::from)
}

/// A sign allowed in front of the digits (`strconv.ParseInt(s, 2, 64)`).
fn parse_signed_radix(s: &str, radix: u32) -> Option<i128> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let m = parse_unsigned_radix(digits, radix)?;
    Some(if negative { -m } else { m })
}

fn error_at(span: &Span, message: String) -> Error {
    Error {
        line: span.start.line(),
        column: span.start.col() + 1,
        message,
    }
}

fn scan_error(e: &ScanError) -> Error {
    Error {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

fn describe(event: &Event<'_>) -> &'static str {
    match event {
        Event::SequenceEnd => "end of a sequence",
        Event::MappingEnd => "end of a mapping",
        Event::DocumentStart(_) => "document start",
        Event::DocumentEnd => "document end",
        Event::StreamEnd => "end of the stream",
        _ => "event",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let mut docs = read_stream(text, Duplicates::LastWins).unwrap();
        assert_eq!(docs.len(), 1, "{text}");
        docs.remove(0).value
    }

    fn scalar(text: &str) -> Value {
        one(&format!("v: {text}\n"))["v"].clone()
    }

    #[test]
    fn octal_with_a_leading_zero_is_read_as_kubernetes_does() {
        assert_eq!(scalar("0444"), json!(292));
        assert_eq!(scalar("0o444"), json!(292));
        assert_eq!(scalar("0644"), json!(420));
        assert_eq!(scalar("\"0444\""), json!("0444"));
        assert_eq!(scalar("'0444'"), json!("0444"));
        // Not octal, but Go's float parser reads it.
        assert_eq!(scalar("08"), json!(8));
    }

    #[test]
    fn yaml_1_1_booleans_are_booleans_unless_quoted() {
        for t in [
            "yes", "Yes", "YES", "on", "On", "ON", "y", "Y", "true", "True",
        ] {
            assert_eq!(scalar(t), json!(true), "{t}");
        }
        for f in [
            "no", "No", "NO", "off", "Off", "OFF", "n", "N", "false", "FALSE",
        ] {
            assert_eq!(scalar(f), json!(false), "{f}");
        }
        assert_eq!(scalar("\"no\""), json!("no"));
        assert_eq!(scalar("yES"), json!("yES"));
    }

    #[test]
    fn numbers_follow_go_yaml() {
        assert_eq!(scalar("1_000"), json!(1000));
        assert_eq!(scalar("0x1F"), json!(31));
        assert_eq!(scalar("0X1F"), json!(31));
        assert_eq!(scalar("0b101"), json!(5));
        assert_eq!(scalar("-0b11"), json!(-3));
        assert_eq!(scalar("+12"), json!(12));
        assert_eq!(scalar("1e3"), json!(1000));
        assert_eq!(scalar("1.0"), json!(1));
        assert_eq!(scalar("1.5"), json!(1.5));
        assert_eq!(scalar(".5"), json!(0.5));
        assert_eq!(scalar("-0.0"), json!(0));
        assert_eq!(scalar("9223372036854775807"), json!(i64::MAX));
        // Go writes 2^64-1 read as a float as 18446744073709552000: beyond u64.
        assert_eq!(
            scalar("18446744073709551615"),
            json!(18446744073709551615u64 as f64)
        );
        assert_eq!(scalar("1e999"), json!("1e999"));
        // Go writes -2^63-1 read as a float as -9223372036854776000, beyond i64.
        assert_eq!(
            scalar("-9223372036854775809"),
            json!(-9223372036854775809f64)
        );
        assert_eq!(scalar("9223372036854775808"), json!(9223372036854776000u64));
        assert_eq!(scalar("-9223372036854775808"), json!(i64::MIN));
        assert_eq!(scalar("123456789012345678.0"), json!(123456789012345680i64));
        assert_eq!(scalar("12:30"), json!("12:30"));
        assert_eq!(scalar("2001-12-14"), json!("2001-12-14"));
        assert_eq!(scalar("0x"), json!("0x"));
        assert_eq!(scalar("1.e2"), json!(100));
    }

    #[test]
    fn nulls_and_tags() {
        assert_eq!(scalar("~"), json!(null));
        assert_eq!(scalar(""), json!(null));
        assert_eq!(scalar("Null"), json!(null));
        assert_eq!(scalar("!!str 0444"), json!("0444"));
        assert_eq!(scalar("!!int \"12\""), json!(12));
        assert_eq!(scalar("!!float 1"), json!(1));
        assert_eq!(scalar("!custom yes"), json!("yes"));
        let err = read_stream("v: !!int abc\n", Duplicates::LastWins).unwrap_err();
        assert_eq!((err.line, err.column), (1, 4), "{err}");
    }

    #[test]
    fn keys_become_strings_as_sigs_k8s_io_yaml_writes_them() {
        let v = one("yes: a\n0444: b\n1.5: c\n1e6: d\n~x: e\n");
        assert_eq!(
            v,
            json!({"true": "a", "292": "b", "1.5": "c", "1e+06": "d", "~x": "e"})
        );
        assert!(read_stream("~: a\n", Duplicates::LastWins).is_err());
    }

    #[test]
    fn float_keys_use_go_g_format() {
        assert_eq!(go_float_key(1000.0), "1000");
        assert_eq!(go_float_key(123456.0), "123456");
        assert_eq!(go_float_key(1234567.0), "1.234567e+06");
        assert_eq!(go_float_key(0.0001), "0.0001");
        assert_eq!(go_float_key(0.00001), "1e-05");
        assert_eq!(go_float_key(-2.5), "-2.5");
        assert_eq!(go_float_key(0.1), "0.1");
    }

    #[test]
    fn infinity_cannot_reach_json() {
        let err = read_stream("a: 1\nb: .inf\n", Duplicates::LastWins).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = one("base: &b {x: 1, z: 2}\nuse:\n  <<: *b\n  z: 3\nlist: [*b]\n");
        assert_eq!(v["use"], json!({"x": 1, "z": 3}));
        assert_eq!(v["list"], json!([{"x": 1, "z": 2}]));
        // `y` is a YAML 1.1 boolean, as a key too.
        assert_eq!(one("y: 1\n"), json!({"true": 1}));
        // Among several merged mappings the first wins.
        let v = one("a: &a {k: 1}\nb: &b {k: 2}\nc:\n  <<: [*a, *b]\n");
        assert_eq!(v["c"], json!({"k": 1}));
        assert!(read_stream("a: &a [*a]\n", Duplicates::LastWins).is_err());
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = read_stream(&text, Duplicates::LastWins).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{err}");
    }

    #[test]
    fn duplicate_keys_last_wins_or_refused() {
        assert_eq!(one("a: 1\na: 2\n"), json!({"a": 2}));
        let err = read_stream("a: 1\nb:\n  c: 1\n  c: 2\n", Duplicates::Refuse).unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        assert!(err.message.contains("duplicate key \"c\""), "{err}");
    }

    #[test]
    fn documents_and_their_marks() {
        let docs = read_stream(
            "# head\n---\na: 1\n---\n---\nkind: Pod\nspec:\n  containers:\n  - name: x\n    env:\n    - {name: A, value: 1}\n",
            Duplicates::LastWins,
        )
        .unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].marks.line, 3);
        assert_eq!(docs[1].value, Value::Null);
        let m = &docs[2].marks;
        assert_eq!(m.line, 6);
        let value = m.locate_dotted("spec.containers[0].env[0].value");
        assert_eq!((value.line, value.column), (11, 17));
        assert_eq!(m.locate_dotted("spec.containers[0].env").line, 10);
        // A path beyond what the document holds stops at the closest parent.
        assert_eq!(
            m.locate_dotted("spec.containers[0].securityContext").line,
            9
        );
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = read_stream("a: 1\nb: [\n", Duplicates::LastWins).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = read_stream("a: 1\n  b: 2\n", Duplicates::LastWins).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn typed_errors_point_at_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            count: i32,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Inner>,
        }
        let docs = read_stream("items:\n- count: 1\n- count: x\n", Duplicates::Refuse).unwrap();
        let err = from_document::<Outer>(&docs[0]).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(
            err.message.starts_with("items[1].count: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn dotted_paths_parse_into_steps() {
        assert_eq!(
            parse_dotted("spec.containers[0].env[12]"),
            vec![
                Step::Key("spec".into()),
                Step::Key("containers".into()),
                Step::Index(0),
                Step::Key("env".into()),
                Step::Index(12)
            ]
        );
    }

    #[test]
    fn byte_order_mark_and_crlf_line_ends_are_read_as_usual() {
        let docs = read_stream(
            "\u{feff}kind: Pod\r\nmetadata:\r\n  name: x\r\n---\r\nmode: 0444\r\n",
            Duplicates::LastWins,
        )
        .unwrap();
        assert_eq!(
            docs[0].value,
            json!({"kind": "Pod", "metadata": {"name": "x"}})
        );
        assert_eq!(docs[1].value, json!({"mode": 292}));
        assert_eq!(docs[1].marks.line, 5);
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let text = format!("a: {}", "[".repeat(100_000));
        // The parser's own limit or ours, whichever comes first: an error with its place.
        let err = read_stream(&text, Duplicates::LastWins).unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        let text = "- ".repeat(2_000) + "x";
        assert!(read_stream(&text, Duplicates::LastWins).is_err());
    }
}
