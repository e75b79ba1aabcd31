//! `no-plaintext-credentials` (high): no env var, command or argument carries a literal
//! credential, where anyone who can read the pod (or its workload, or an audit log) would
//! see it. An env var is flagged by its name (a credential-like name, matched without regard
//! to case, with a literal value that is not a file path) or by its value's shape (a
//! provider key prefix, a JWT, a PEM private key, a URL or DSN with a password in it, a
//! `password=...` pair). `command` and `args` are judged by shape only: each word, and the
//! value of each `--flag=value`, `--flag value` or `NAME=value` whose name is
//! credential-like, and `Authorization: Bearer ...` headers. Messages name the variable or
//! argument and its container; the value is never copied anywhere.
//!
//! Texts are read as the container will hold them: `$(VAR)` references are expanded by the
//! kubelet's rules (`crate::engine::expansion`), and each text is read a second time with
//! the references of unknown value removed, so `"$(EMPTY)ghp_..."` is the key it becomes.
//! Lifecycle hooks and probes are read too: an `exec` command as `args`, an `httpGet`
//! header as a name and a value. Credentials do not belong in ConfigMaps (anyone with `get`
//! on ConfigMaps reads them): an env var drawn from a ConfigMap under a credential-like name
//! is flagged, and so is an `envFrom` ConfigMap with a key of such a name (the view knows a
//! ConfigMap's key names, never its values).

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::containers::{ContainerRef, containers};
use crate::engine::expansion::{EnvValues, has_reference, without_references};
use crate::engine::policy::{
    CredentialSettings, glob_match_flag_ignore_ascii_case, glob_match_ignore_ascii_case,
};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "no-plaintext-credentials";
const TIER: Tier = Tier::High;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::ConfigMaps],
    applies: always,
};

/// Keys shorter than this are too short to be real, so a bare `sk-` is not flagged.
const MIN_KEY_LEN: usize = 16;
/// Characters after a provider prefix needed before the value counts as a key.
const MIN_AFTER_PREFIX: usize = 8;
/// A bearer or basic token shorter than this is a placeholder (`Bearer xxx`).
const MIN_HEADER_TOKEN: usize = 8;

fn token_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'+' | b'='))
}

fn base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
}

fn looks_like_jwt(v: &str) -> bool {
    if !v.starts_with("eyJ") {
        return false;
    }
    let mut parts = v.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !header.is_empty()
        && !payload.is_empty()
        && [header, payload, signature].iter().all(|p| base64url(p))
}

/// `-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ]PRIVATE KEY-----`, also when the newlines were
/// flattened into one line.
fn looks_like_pem_private_key(v: &str) -> bool {
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = v;
    while let Some(i) = find(rest, BEGIN) {
        rest = &rest[i + BEGIN.len()..];
        if rest
            .split("-----")
            .next()
            .is_some_and(|label| label.ends_with("PRIVATE KEY"))
        {
            return true;
        }
    }
    false
}

/// Where `needle` (starting with an ASCII byte) first starts in `hay`. Every env value and
/// argument is searched a few times: on such short text a scan for the first byte costs
/// less than the two-way searcher `str::find` builds on each call.
fn find(hay: &str, needle: &'static str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let first = *n.first()?;
    let mut from = 0;
    while let Some(at) = h[from..].iter().position(|&b| b == first) {
        let i = from + at;
        if h[i..].starts_with(n) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

fn has_provider_prefix(v: &str, prefixes: &[String]) -> bool {
    // The first byte first: nearly every value starts unlike every prefix, and a byte
    // compare costs less than the call `starts_with` makes.
    let first = v.as_bytes().first();
    v.len() >= MIN_KEY_LEN
        && prefixes.iter().any(|p| {
            p.as_bytes().first().is_some_and(|b| Some(b) == first)
                && v.len() >= p.len() + MIN_AFTER_PREFIX
                && v.starts_with(p.as_str())
        })
        && token_chars(v)
}

/// A value that is only a `$(OTHER_VAR)` reference holds no credential itself.
fn is_reference(v: &str) -> bool {
    v.starts_with("$(") && v.ends_with(')') && !v[2..v.len() - 1].contains(['(', ')'])
}

/// Text filled in later, not a credential: the whole value is one `$(VAR)` (the kubelet
/// expands it), `$VAR` or `${VAR}` (a shell does), or `{{ .Values.x }}` (a template not yet
/// rendered). Only the whole value: text around a reference is literal (`$(EMPTY)ghp_...`).
fn is_placeholder(v: &str) -> bool {
    let ident = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if let Some(inner) = v.strip_prefix("{{") {
        return inner.ends_with("}}") && !inner[..inner.len() - 2].contains("}}");
    }
    let Some(rest) = v.strip_prefix('$') else {
        return false;
    };
    if let Some(inner) = rest.strip_prefix('(') {
        return inner.ends_with(')') && !inner[..inner.len() - 1].contains([')', '(', '$']);
    }
    if let Some(inner) = rest.strip_prefix('{') {
        return inner.ends_with('}') && !inner[..inner.len() - 1].contains(['}', '{', '$']);
    }
    ident(rest)
}

/// `/var/run/secrets/key.json`, `./token`, `~/.netrc`: where a credential is, not one.
fn is_file_path(v: &str) -> bool {
    (v.starts_with('/') || v.starts_with("./") || v.starts_with("../") || v.starts_with("~/"))
        && !v.contains(char::is_whitespace)
        && !v.contains(':')
}

/// The policy's credential settings for one review, the name patterns indexed.
struct Settings<'s> {
    value_prefixes: &'s [String],
    names: Patterns<'s>,
    exceptions: Patterns<'s>,
}

impl<'s> Settings<'s> {
    fn new(s: &'s CredentialSettings) -> Self {
        Settings {
            value_prefixes: &s.value_prefixes,
            names: Patterns::new(&s.name_patterns),
            exceptions: Patterns::new(&s.name_exceptions),
        }
    }
}

/// A list of name patterns, indexed by the byte a name must end in to match each one.
///
/// Every env var name and flag of a review is matched against every pattern; with the
/// twenty-odd default patterns that was a sixth of the checks' time for the bench pod,
/// though most names end in a byte that no pattern ends in (`HOME`, `NODE_ENV`, `--port`).
/// A pattern ending in a literal byte can only match names ending in it (case aside), so
/// a name is tried only against those patterns and the ones ending in `*`, in the policy's
/// order. Lists longer than 64 patterns (one bit each) are tried whole.
///
/// The table is built for each review from the policy in force, not cached beside the
/// policy, so that it can never disagree with the patterns it stands for. It is kept small
/// (64 buckets of 64 bits, the byte's upper case folded to its low six bits) so that
/// building it costs little: bytes sharing a bucket only mean a pattern is tried for a name
/// it cannot match, which the matcher rejects at the last byte.
struct Patterns<'s> {
    list: &'s [String],
    /// Bit `i` of entry `bucket(b)`: pattern `i` ends in a byte of that bucket. `None` for
    /// lists longer than 64.
    by_last: Option<[u64; 64]>,
    /// The patterns ending in `*` (or empty, which matches only the empty name): tried for
    /// every name.
    any: u64,
}

fn bucket(b: u8) -> usize {
    usize::from(b.to_ascii_uppercase() & 63)
}

impl<'s> Patterns<'s> {
    fn new(list: &'s [String]) -> Self {
        if list.len() > 64 {
            return Patterns {
                list,
                by_last: None,
                any: 0,
            };
        }
        let mut t = [0u64; 64];
        let mut any = 0;
        for (i, p) in list.iter().enumerate() {
            let bit = 1u64 << i;
            match p.as_bytes().last() {
                None | Some(b'*') => any |= bit,
                Some(&b) => t[bucket(b)] |= bit,
            }
        }
        Patterns {
            list,
            by_last: Some(t),
            any,
        }
    }

    /// The first pattern, in the policy's order, that `matches` says yes to, among those
    /// that can match a name ending in `last` (all of them when `last` is `None`).
    fn first(&self, last: Option<u8>, matches: impl Fn(&str) -> bool) -> Option<&'s str> {
        let list = self.list;
        match (&self.by_last, last) {
            (Some(t), Some(b)) => {
                let mut bits = t[bucket(b)] | self.any;
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if matches(&list[i]) {
                        return Some(&list[i]);
                    }
                }
                None
            }
            _ => list.iter().find(|p| matches(p)).map(String::as_str),
        }
    }
}

/// A name the policy calls credential-like, case aside (`github_token` as `GITHUB_TOKEN`).
/// The exceptions are looked at only for a name a pattern matches: most names match none.
fn credential_name<'s>(name: &str, s: &Settings<'s>) -> Option<&'s str> {
    let last = name.as_bytes().last().copied();
    first_pattern(s, last, |p| glob_match_ignore_ascii_case(p, name))
}

/// [`credential_name`] for a flag's name, its dashes read as underscores (`api-key`).
fn credential_flag<'s>(key: &str, s: &Settings<'s>) -> Option<&'s str> {
    let name = flag_name(key);
    let last = name
        .as_bytes()
        .last()
        .map(|&b| if b == b'-' { b'_' } else { b });
    first_pattern(s, last, |p| glob_match_flag_ignore_ascii_case(p, name))
}

fn first_pattern<'s>(
    s: &Settings<'s>,
    last: Option<u8>,
    matches: impl Fn(&str) -> bool,
) -> Option<&'s str> {
    let pattern = s.names.first(last, &matches)?;
    s.exceptions
        .first(last, &matches)
        .is_none()
        .then_some(pattern)
}

/// `scheme://user:password@host`: the password part, when there is one.
fn url_password(v: &str) -> Option<&str> {
    let rest = &v[find(v, "://")? + 3..];
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

/// `user:password@tcp(db:3306)/app`, the DSN form of Go's MySQL driver (no scheme).
fn dsn_password(v: &str) -> Option<&str> {
    let (userinfo, _) = v.split_once('@')?;
    if userinfo.contains(['/', ' ']) {
        return None;
    }
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

fn literal(v: &str) -> bool {
    !v.is_empty() && !is_placeholder(v)
}

/// Why a value looks like a credential whatever its name, in words that never quote it.
fn value_shape(value: &str, s: &Settings<'_>) -> Option<String> {
    if has_provider_prefix(value, s.value_prefixes) {
        return Some("its value has the shape of a provider API key".into());
    }
    if looks_like_jwt(value) {
        return Some("its value is a JWT".into());
    }
    if looks_like_pem_private_key(value) {
        return Some("its value is a PEM private key".into());
    }
    if url_password(value).is_some_and(literal) {
        return Some("its value is a URL with a password in it".into());
    }
    if let Some(why) = header_token(value) {
        return Some(why);
    }
    words(value).find_map(|w| word_shape(w, s, false))
}

/// `Authorization: Bearer <token>` (or `Basic`), as in a curl command line.
fn header_token(v: &str) -> Option<String> {
    if !v.contains(' ') {
        return None; // the common case, found by one scan
    }
    for scheme in ["bearer ", "basic "] {
        for i in ascii_case_insensitive_indices(v, scheme) {
            let preceded = v[..i].trim_end().ends_with(':') || i == 0;
            let token: String = v[i + scheme.len()..]
                .trim_start()
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\''))
                .collect();
            if preceded && token.len() >= MIN_HEADER_TOKEN && literal(&token) {
                return Some(format!(
                    "it carries an Authorization header with a {} token",
                    scheme.trim_end()
                ));
            }
        }
    }
    None
}

/// Where `needle` (ASCII, not empty) starts in `hay`, case aside; every index is a char boundary, since
/// a match starts with an ASCII byte. Scanned in place: this runs on every env value.
fn ascii_case_insensitive_indices<'h>(
    hay: &'h str,
    needle: &'static str,
) -> impl Iterator<Item = usize> + 'h {
    hay.as_bytes()
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| w.eq_ignore_ascii_case(needle.as_bytes()))
        .map(|(i, _)| i)
}

/// The words of a command line: split on white space, quotes and `;` stripped.
fn words(v: &str) -> impl Iterator<Item = &str> {
    // Most arguments and values are one ASCII word (`--port`, `18789`): found by one byte
    // scan, without the Unicode-aware splitter. U+000B is white space to Unicode, not to
    // `is_ascii_whitespace`.
    let one = !v
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == 0x0b || b >= 0x80);
    let (whole, split) = if one {
        (Some(v), None)
    } else {
        (None, Some(v.split_whitespace()))
    };
    whole
        .into_iter()
        .chain(split.into_iter().flatten())
        .map(|w| w.trim_matches(|c| matches!(c, '"' | '\'' | ';' | ',' | '`')))
        .filter(|w| !w.is_empty())
}

/// The name of a flag or assignment, as [`credential_flag`] matches it (dashes read as
/// underscores, case aside): `--api-key` -> `api-key` (`API_KEY`), `-Ddb.password` ->
/// `password`, `export TOKEN` -> `TOKEN`.
fn flag_name(key: &str) -> &str {
    let key = key.trim_start_matches('-');
    key.rsplit('.').next().unwrap_or(key)
}

/// One word: a provider key, a JWT, or `name=value` / `--name=value` with a credential-like
/// name and a literal value. `in_args` also judges a whole word by its shape (env values
/// were judged whole already).
fn word_shape(w: &str, s: &Settings<'_>, in_args: bool) -> Option<String> {
    if in_args {
        if has_provider_prefix(w, s.value_prefixes) {
            return Some("it has the shape of a provider API key".into());
        }
        if looks_like_jwt(w) {
            return Some("it is a JWT".into());
        }
        if url_password(w).is_some_and(literal) {
            return Some("it is a URL with a password in it".into());
        }
    }
    let eq = w.bytes().position(|b| b == b'=')?;
    let (key, value) = (&w[..eq], &w[eq + 1..]);
    let value = value.trim_matches(|c| matches!(c, '"' | '\''));
    if key.is_empty() || !literal(value) || is_file_path(value) {
        return None;
    }
    if let Some(p) = credential_flag(key, s) {
        return Some(format!("{} (name matches {p})", shown_key(key)));
    }
    if has_provider_prefix(value, s.value_prefixes) {
        return Some(format!(
            "{} with the shape of a provider API key",
            shown_key(key)
        ));
    }
    if looks_like_jwt(value) {
        return Some(format!("{} that is a JWT", shown_key(key)));
    }
    None
}

/// `the value of --api-key`, or only `a name=value pair` when the name part is not a plain
/// identifier (it could itself hold part of a secret, as in a URL).
fn shown_key(key: &str) -> String {
    let plain = key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        format!("the value of {key}")
    } else {
        "a name=value pair".into()
    }
}

/// Why a literal env var looks like a credential, in words that never quote the value: one
/// reading of a value (`value`, its references expanded or removed)
/// whose text as written, its references removed, is `written`. A credential-like name
/// flags what the manifest itself writes: `$(EMPTY)ghp_...` writes a key, while
/// `$(USER):$(PASSWORD)` writes only a colon between values drawn from elsewhere.
fn reason_written(name: &str, value: &str, written: &str, s: &Settings<'_>) -> Option<String> {
    if value.is_empty() || is_reference(value) {
        return None;
    }
    if let Some(p) = credential_name(name, s)
        && !is_file_path(written)
        && !is_placeholder(written)
        && written
            .bytes()
            .any(|b| b.is_ascii_alphanumeric() || b >= 0x80)
    {
        return Some(format!("its name matches {p}"));
    }
    let dsn_name =
        name.len() >= 4 && name.as_bytes()[name.len() - 4..].eq_ignore_ascii_case(b"_DSN");
    if dsn_name && dsn_password(value).is_some_and(literal) {
        return Some("its value is a DSN with a password in it".into());
    }
    value_shape(value, s)
}

/// Why one of `command`/`args` carries a credential. A flag whose name is credential-like
/// followed by its value as the next argument (`--api-key`, `sk-...`) counts too.
fn arg_reason<S: AsRef<str>>(list: &[S], i: usize, s: &Settings<'_>) -> Option<String> {
    let arg = list[i].as_ref();
    if looks_like_pem_private_key(arg) {
        return Some("it is a PEM private key".into());
    }
    if let Some(why) = header_token(arg) {
        return Some(why);
    }
    if let Some(why) = words(arg).find_map(|w| word_shape(w, s, true)) {
        return Some(why);
    }
    let previous = i.checked_sub(1).map(|p| list[p].as_ref())?;
    if previous.starts_with('-')
        && !previous.contains('=')
        && literal(arg)
        && !arg.starts_with('-')
        && !is_file_path(arg)
        && let Some(p) = credential_flag(previous, s)
    {
        return Some(format!("{} (name matches {p})", shown_key(previous)));
    }
    None
}

/// `args` (an exec's command, say) with every argument the detectors above flag replaced
/// by `<redacted: why>`, so that a record of the command never carries the credential: the
/// reasons never quote a value. Arguments nothing flags are kept as they are.
pub fn redacted(args: &[String], settings: &CredentialSettings) -> Vec<String> {
    let s = Settings::new(settings);
    (0..args.len())
        .map(|i| match arg_reason(args, i, &s) {
            Some(why) => format!("<redacted: {why}>"),
            None => args[i].clone(),
        })
        .collect()
}

/// Said of a finding made only once `$(VAR)` references were expanded or removed.
const EXPANDED: &str = ", once its $(VAR) references are expanded";

/// Why a header sent by a probe or hook carries a credential: an `Authorization` header with
/// a literal value, a credential-like header name (`X-Api-Key`) with a literal value, or a
/// value of a credential's shape.
fn header_reason(name: &str, value: &str, s: &Settings<'_>) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || is_placeholder(value) {
        return None;
    }
    if let Some(why) = header_token(value) {
        return Some(why);
    }
    let authorization = name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization");
    if authorization && value.len() >= MIN_HEADER_TOKEN {
        return Some("it is an Authorization header with a literal value".into());
    }
    if let Some(p) = credential_flag(name, s)
        && !is_file_path(value)
    {
        return Some(format!("its name matches {p}"));
    }
    value_shape(value, s)
}

/// A text's reason: as written when it holds no reference; else in each reading (its
/// references expanded, then those of unknown value removed), said to be after expansion
/// where the reading differs from the text as written.
fn first_reason<'t>(
    written: Option<&'t str>,
    readings: impl IntoIterator<Item = Option<&'t str>>,
    why: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let written = written?;
    if !has_reference(written) {
        return why(written);
    }
    readings.into_iter().flatten().find_map(|r| {
        let w = why(r)?;
        Some(if r == written {
            w
        } else {
            format!("{w}{EXPANDED}")
        })
    })
}

/// Findings in one list of words (`command`, `args`, an `exec` hook or probe): each word as
/// written, then in each reading of the list (`readings`, built only when some word holds a
/// reference).
fn judge_words<'w>(
    list: &'w [String],
    readings: impl FnOnce() -> [Vec<std::borrow::Cow<'w, str>>; 2],
    s: &Settings<'_>,
    mut found: impl FnMut(usize, String),
) {
    let expanded = list.iter().any(|w| has_reference(w)).then(readings);
    for i in 0..list.len() {
        if let Some(why) = arg_reason(list, i, s) {
            found(i, why);
            continue;
        }
        let Some(lists) = &expanded else { continue };
        if let Some(why) = lists
            .iter()
            .filter(|l| l[i] != list[i])
            .find_map(|l| arg_reason(l, i, s))
        {
            found(i, format!("{why}{EXPANDED}"));
        }
    }
}

/// One hook or probe: its JSON path below the container, what it runs or sends, and
/// whether it is a probe (the kubelet expands a probe's `exec` command with the env values
/// as written; a hook's not at all).
type Handler<'a> = (
    &'static str,
    Option<&'a k8s_openapi::api::core::v1::ExecAction>,
    Option<&'a crate::engine::pod::HTTPGetAction>,
    bool,
);

/// The hooks and probes of a container (absent ones with nothing to run or send).
fn handlers<'a>(c: &ContainerRef<'a>) -> [Handler<'a>; 5] {
    let hook = |h: Option<&'a crate::engine::pod::LifecycleHandler>| {
        (
            h.and_then(|h| h.exec.as_ref()),
            h.and_then(|h| h.http_get.as_ref()),
        )
    };
    let (post_exec, post_http) = hook(c.lifecycle().and_then(|l| l.post_start.as_ref()));
    let (pre_exec, pre_http) = hook(c.lifecycle().and_then(|l| l.pre_stop.as_ref()));
    let probe = |i: usize| {
        let (field, p) = c.probes()[i];
        (
            field,
            p.and_then(|p| p.exec.as_ref()),
            p.and_then(|p| p.http_get.as_ref()),
            true,
        )
    };
    [
        ("lifecycle.postStart", post_exec, post_http, false),
        ("lifecycle.preStop", pre_exec, pre_http, false),
        probe(0),
        probe(1),
        probe(2),
    ]
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let settings = &Settings::new(&input.policy.checks.credentials);
    let mut out = Vec::new();
    let fix =
        "store it in a Secret (or the Secrets Store CSI volume) and use valueFrom.secretKeyRef";
    let arg_fix = "pass it in an env var from a Secret (valueFrom.secretKeyRef) and refer to it as $(VAR) or from a mounted file";
    for c in containers(t.spec, t.spec_path) {
        let values = EnvValues::new(c.env());
        for (field, list) in [("command", c.command()), ("args", c.args())] {
            judge_words(
                list,
                || values.command_readings(list),
                settings,
                |i, why| {
                    out.push(Violation::new(
                        ID,
                        TIER,
                        format!("{}.{field}[{i}]", c.path),
                        format!(
                            "{field}[{i}] of container {} holds a literal credential ({why})",
                            c.name()
                        ),
                        arg_fix,
                    ));
                },
            );
        }
        for (i, e) in c.env().iter().enumerate() {
            if let Some(from) = &e.value_from {
                if let Some(r) = &from.config_map_key_ref
                    && let Some(p) = credential_name(&e.name, settings)
                        .or_else(|| credential_name(&r.key, settings))
                {
                    out.push(Violation::new(
                        ID,
                        TIER,
                        format!("{}.env[{i}].valueFrom.configMapKeyRef", c.path),
                        format!(
                            "env var {} of container {} is drawn from ConfigMap {} (name matches {p}): a credential in a ConfigMap is readable by anyone who can read ConfigMaps",
                            e.name, c.name(), r.name
                        ),
                        fix,
                    ));
                }
                continue;
            }
            let raw = e.value.as_deref();
            let literal = match raw {
                Some(v) if has_reference(v) => without_references(v),
                v => v.unwrap_or("").into(),
            };
            let readings = [values.expanded(i), values.unknowns_removed(i)];
            let Some(why) = first_reason(raw, readings, |v| {
                reason_written(&e.name, v, &literal, settings)
            }) else {
                continue;
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.env[{i}]", c.path),
                format!(
                    "env var {} of container {} holds a literal credential ({why})",
                    e.name,
                    c.name()
                ),
                fix,
            ));
        }
        for (k, from) in c.env_from().iter().enumerate() {
            let Some(r) = &from.config_map_ref else {
                continue;
            };
            let Some(keys) = input.view.config_map_keys(t.namespace, &r.name) else {
                continue;
            };
            let prefix = from.prefix.as_deref().unwrap_or("");
            let named: Vec<String> = keys
                .iter()
                .map(|k| format!("{prefix}{k}"))
                .filter(|n| credential_name(n, settings).is_some())
                .collect();
            if named.is_empty() {
                continue;
            }
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.envFrom[{k}].configMapRef", c.path),
                format!(
                    "container {} takes env var(s) {} from ConfigMap {}: credential-like names, and a credential in a ConfigMap is readable by anyone who can read ConfigMaps",
                    c.name(),
                    named.join(", "),
                    r.name
                ),
                "move those keys to a Secret and use envFrom.secretRef (or valueFrom.secretKeyRef)",
            ));
        }
        for (at, exec, http, probe) in handlers(&c) {
            if let Some(list) = exec.and_then(|x| x.command.as_deref()) {
                let readings = || {
                    if probe {
                        values.static_command_readings(list)
                    } else {
                        // Hooks are not expanded; a shell running one may still drop an
                        // unknown `$(...)` as an empty command substitution.
                        let removed: Vec<_> = list.iter().map(|w| without_references(w)).collect();
                        [list.iter().map(|w| w.as_str().into()).collect(), removed]
                    }
                };
                judge_words(list, readings, settings, |i, why| {
                    out.push(Violation::new(
                        ID,
                        TIER,
                        format!("{}.{at}.exec.command[{i}]", c.path),
                        format!("{at}.exec.command[{i}] of container {} holds a literal credential ({why})", c.name()),
                        "read the credential from a file mounted from a Secret, or from an env var drawn from one",
                    ));
                });
            }
            let headers = http.and_then(|h| h.http_headers.as_deref()).unwrap_or(&[]);
            for (j, h) in headers.iter().enumerate() {
                let removed = has_reference(&h.value).then(|| without_references(&h.value));
                let Some(why) = first_reason(
                    Some(h.value.as_str()),
                    [Some(h.value.as_str()), removed.as_deref()],
                    |v| header_reason(&h.name, v, settings),
                ) else {
                    continue;
                };
                out.push(Violation::new(
                    ID,
                    TIER,
                    format!("{}.{at}.httpGet.httpHeaders[{j}].value", c.path),
                    format!(
                        "header {} that {at} of container {} sends holds a literal credential ({why})",
                        shown_header(&h.name),
                        c.name()
                    ),
                    "use an exec or grpc probe that reads the credential from a mounted Secret, or an endpoint that needs none",
                ));
            }
        }
    }
    out
}

/// A header's name for a message, when it is a plain token (a name is not secret, but a
/// hostile one could be made of one).
fn shown_header(name: &str) -> &str {
    let plain = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if plain { name } else { "(unusual name)" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;
    use serde_json::json;

    const ANTHROPIC_KEY: &str = "sk-ant-api03-Zx9qW2mP4kL8vN1bT6yR3cF5hJ7dG0sA";

    /// Names and patterns from the bytes that matter to the index: both cases, `-` and `_`
    /// (a flag's dash reads as an underscore), `*`, `.` (flag prefixes), a non-ASCII
    /// letter, and bytes that share a bucket with others (`é` ends in 0xA9, which shares
    /// one with `)`; `` ` `` shares one with a space).
    fn word() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    "a", "A", "k", "K", "_", "-", "*", ".", "é", "--", ")", "`", " ",
                ][..],
            ),
            0..6,
        )
        .prop_map(|v| v.concat())
    }

    proptest::proptest! {
        /// The first-byte scan finds what `str::find` finds, in any text.
        #[test]
        fn find_agrees_with_str_find(pieces in proptest::collection::vec(
            proptest::sample::select(&["://", "-----BEGIN ", "----", "-", ":/", "é", "a", " "][..]),
            0..8,
        )) {
            let hay = pieces.concat();
            for needle in ["://", "-----BEGIN "] {
                proptest::prop_assert_eq!(find(&hay, needle), hay.find(needle));
            }
        }

        /// The one-word shortcut splits as the Unicode-aware splitter does.
        #[test]
        fn words_split_as_unicode_white_space_does(pieces in proptest::collection::vec(
            proptest::sample::select(
                &["a", "k=v", " ", "\t", "\u{0b}", "\u{0c}", "\u{a0}", "\u{2003}", "é", "\"", ";", "`"][..],
            ),
            0..8,
        )) {
            let v = pieces.concat();
            let plain: Vec<&str> = v
                .split_whitespace()
                .map(|w| w.trim_matches(|c| matches!(c, '"' | '\'' | ';' | ',' | '`')))
                .filter(|w| !w.is_empty())
                .collect();
            proptest::prop_assert_eq!(words(&v).collect::<Vec<_>>(), plain);
        }

        /// The index by last byte changes nothing: a name or flag gets the pattern that
        /// trying every pattern in order gives, with exceptions, for lists of any length
        /// (past 64 patterns the list is tried whole).
        #[test]
        fn indexed_patterns_agree_with_trying_each(
            names in proptest::collection::vec(word(), 0..80),
            exceptions in proptest::collection::vec(word(), 0..4),
            name in word(),
        ) {
            let settings = CredentialSettings {
                name_patterns: names,
                name_exceptions: exceptions,
                value_prefixes: Vec::new(),
            };
            let indexed = Settings::new(&settings);
            let linear = |matches: &dyn Fn(&str) -> bool| {
                let p = settings.name_patterns.iter().find(|p| matches(p))?;
                (!settings.name_exceptions.iter().any(|p| matches(p))).then_some(p.as_str())
            };
            proptest::prop_assert_eq!(
                credential_name(&name, &indexed),
                linear(&|p| glob_match_ignore_ascii_case(p, &name))
            );
            let flag = flag_name(&name);
            proptest::prop_assert_eq!(
                credential_flag(&name, &indexed),
                linear(&|p| glob_match_flag_ignore_ascii_case(p, flag))
            );
        }
    }

    /// Every way a violation is shown: its Debug, its Display and its JSON.
    fn shown(v: &[Violation]) -> String {
        let mut out = format!("{v:?} {}", serde_json::to_string(v).unwrap());
        for x in v {
            out.push_str(&x.to_string());
        }
        out
    }

    fn assert_absent(v: &[Violation], planted: &[&str]) {
        let text = shown(v);
        for p in planted {
            assert!(!text.contains(p), "{p} shown in {text}");
        }
    }

    fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    const GITHUB_KEY: &str = "ghp_PLANTED0123456789abcdefABCDEF0123";

    #[test]
    fn references_are_expanded_before_matching_as_the_kubelet_does() {
        let p = hardened()
            .with_container("agent")
            .env("EMPTY", "")
            .env("GITHUB_TOKEN", &format!("$(EMPTY){GITHUB_KEY}"))
            .env("LLM_CONFIG", &format!("$(EMPTY){ANTHROPIC_KEY}"))
            // `$$` makes the literal text `$(NOT_A_VAR)`: no credential.
            .env("API_TOKEN", "$$(NOT_A_VAR)")
            .args(&[
                &format!("--api-key=$(EMPTY){ANTHROPIC_KEY}"),
                "--port=$(PORT)",
            ])
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].args[0]",
                "spec.containers[0].env[2]",
                "spec.containers[0].env[3]"
            ],
            "{v:?}"
        );
        assert!(
            v[2].message
                .contains("once its $(VAR) references are expanded"),
            "{}",
            v[2].message
        );
        assert_absent(&v, &[GITHUB_KEY, ANTHROPIC_KEY, "Zx9qW2mP4kL8", "PLANTED"]);
    }

    #[test]
    fn a_reference_of_unknown_value_is_read_both_kept_and_removed() {
        let p = hardened()
            .with_container("agent")
            // Defined after its use: the kubelet leaves `$(LATE)` as written, and a
            // ConfigMap or Secret from envFrom may define it as empty.
            .env("LLM_CONFIG", &format!("$(LATE){ANTHROPIC_KEY}"))
            .env("LATE", "")
            .env_secret("DB_PASSWORD", "db", "password")
            .env("DB_USER", "agent")
            // References only, with punctuation between: nothing literal.
            .env("API_TOKEN", "$(DB_USER):$(DB_PASSWORD)")
            .env("PROXY_TOKEN", "$(DB_PASSWORD)")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.containers[0].env[1]"], "{v:?}");
        assert_absent(&v, &[ANTHROPIC_KEY, "Zx9qW2mP4kL8"]);
    }

    #[test]
    fn text_around_a_reference_is_literal_under_a_credential_name() {
        let p = hardened()
            .with_container("agent")
            .env_secret("PART", "s", "k")
            .env("SERVICE_TOKEN", "hunter2PLANTED$(PART)")
            .env("SHELL_TOKEN", "${SERVICE_TOKEN}")
            .env("TEMPLATE_TOKEN", "{{ .Values.token }}")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.containers[0].env[2]"], "{v:?}");
        assert_absent(&v, &["hunter2PLANTED"]);
    }

    #[test]
    fn a_config_map_under_a_credential_name_is_a_finding() {
        let p = hardened()
            .with_container("agent")
            .edit(|c| {
                let env = c.env.get_or_insert_with(Vec::new);
                env.push(from_json(json!({"name": "OPENAI_API_KEY",
                    "valueFrom": {"configMapKeyRef": {"name": "agent-config", "key": "openai"}}})));
                env.push(from_json(json!({"name": "SETTING",
                    "valueFrom": {"configMapKeyRef": {"name": "agent-config", "key": "github_token"}}})));
                env.push(from_json(json!({"name": "LOG_LEVEL",
                    "valueFrom": {"configMapKeyRef": {"name": "agent-config", "key": "log"}}})));
            })
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].env[1].valueFrom.configMapKeyRef",
                "spec.containers[0].env[2].valueFrom.configMapKeyRef"
            ]
        );
        assert!(v[0].message.contains("OPENAI_API_KEY") && v[0].message.contains("agent-config"));
        assert!(v[0].fix.contains("Secret"));
    }

    #[test]
    fn env_from_a_config_map_is_judged_by_its_key_names_without_its_values() {
        let planted = "sk-proj-PLANTEDinTheConfigMap0123";
        let mut view = hardened_view();
        for (name, data) in [
            (
                "leaky",
                json!({"OPENAI_API_KEY": planted, "LOG_LEVEL": "info"}),
            ),
            ("prefixed", json!({"TOKEN": planted})),
            (
                "clean",
                json!({"LOG_LEVEL": "debug", "TOKEN_URL": "https://x"}),
            ),
        ] {
            view.add(
                &json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": NS}, "data": data}),
                NS,
            )
            .unwrap();
        }
        let p = hardened()
            .with_container("agent")
            .edit(|c| {
                c.env_from = Some(vec![
                    from_json(json!({"configMapRef": {"name": "leaky"}})),
                    from_json(json!({"configMapRef": {"name": "prefixed"}, "prefix": "GITHUB_"})),
                    from_json(json!({"configMapRef": {"name": "clean"}})),
                    from_json(json!({"configMapRef": {"name": "not-known"}})),
                ])
            })
            .build();
        let v = run(&CHECK, &p, &Policy::default(), &view);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].envFrom[0].configMapRef",
                "spec.containers[0].envFrom[1].configMapRef"
            ]
        );
        assert!(v[0].message.contains("OPENAI_API_KEY") && !v[0].message.contains("LOG_LEVEL"));
        assert!(v[1].message.contains("GITHUB_TOKEN"), "{}", v[1].message);
        assert_absent(&v, &[planted, "PLANTED"]);
    }

    #[test]
    fn hooks_and_probes_are_read_like_args_and_env() {
        let bearer = "PLANTEDbearer0123456789";
        let p = hardened()
            .with_container("agent")
            .env("EMPTY", "")
            .edit(|c| {
                c.lifecycle = Some(Box::new(from_json(json!({
                    "postStart": {"exec": {"command": ["sh", "-c",
                        format!("curl -H 'Authorization: Bearer {bearer}' http://hook")]}},
                    "preStop": {"httpGet": {"port": 80, "httpHeaders": [
                        {"name": "X-Api-Key", "value": "hunter2PLANTED"},
                        {"name": "Accept", "value": "application/json"}]}}
                }))));
                c.liveness_probe = Some(Box::new(from_json(json!({
                    "httpGet": {"port": 80, "httpHeaders": [
                        {"name": "Authorization", "value": format!("Bearer {bearer}")}]}}))));
                c.readiness_probe = Some(Box::new(from_json(json!({
                    "exec": {"command": ["check", format!("--token=$(EMPTY){GITHUB_KEY}")]}}))));
                c.startup_probe = Some(Box::new(from_json(json!({
                    "exec": {"command": ["check", "--token=$(SOME_TOKEN)"]}}))));
            })
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].lifecycle.postStart.exec.command[2]",
                "spec.containers[0].lifecycle.preStop.httpGet.httpHeaders[0].value",
                "spec.containers[0].livenessProbe.httpGet.httpHeaders[0].value",
                "spec.containers[0].readinessProbe.exec.command[1]"
            ],
            "{v:?}"
        );
        assert!(v[1].message.contains("X-Api-Key"), "{}", v[1].message);
        assert_absent(&v, &[bearer, "hunter2PLANTED", GITHUB_KEY, "PLANTED"]);
    }

    #[test]
    fn placeholders_are_whole_references_only() {
        for v in ["$(A)", "$A", "${A}", "${A_1}", "{{ .Values.x }}", "$_x"] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in [
            "$(A)x", "$A x", "${A}${B}", "{{ a }}b", "$1abc", "$(A)$(B)", "$",
        ] {
            assert!(!is_placeholder(v), "{v}");
        }
    }

    #[test]
    fn passes_hardened_pod_with_secret_ref_and_harmless_values() {
        let p = hardened()
            .with_container("agent")
            .env("LOG_LEVEL", "debug")
            .env("OAUTH_TOKEN_URL", "https://auth.example.com/token")
            .env("GITHUB_TOKEN", "")
            .env("API_TOKEN", "$(GITHUB_TOKEN)")
            .env("PREFIX", "sk-")
            .env("NOTE", "sk-learn is a library")
            .build();
        assert!(
            run_default(&CHECK, &p).is_empty(),
            "{:?}",
            run_default(&CHECK, &p)
        );
    }

    #[test]
    fn rejects_literal_value_under_credential_name() {
        let p = hardened()
            .with_container("agent")
            .env("LOG_LEVEL", "info")
            .env("DB_PASSWORD", "hunter2hunter2")
            .build();
        let v = run_default(&CHECK, &p);
        // hardened() puts one env var (the secretKeyRef) first.
        assert_eq!(paths(&v), ["spec.containers[0].env[2]"]);
        assert_eq!(v[0].tier, Tier::High);
        assert!(v[0].message.contains("DB_PASSWORD") && v[0].message.contains("agent"));
    }

    #[test]
    fn rejects_provider_key_under_harmless_name_and_never_repeats_it() {
        let p = hardened()
            .with_container("agent")
            .env("LLM_CONFIG", ANTHROPIC_KEY)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.containers[0].env[1]"]);
        let shown = format!("{v:?} {} {}", v[0], serde_json::to_string(&v).unwrap());
        assert!(!shown.contains(ANTHROPIC_KEY));
        assert!(!shown.contains("Zx9qW2mP4kL8"));
    }

    #[test]
    fn value_never_appears_for_a_name_match() {
        let secret = "correct-horse-battery-staple";
        let p = hardened()
            .with_container("agent")
            .env("OPENAI_API_KEY", secret)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(v.len(), 1);
        assert!(!format!("{v:?} {}", v[0]).contains(secret));
    }

    #[test]
    fn rejects_jwt_and_pem_private_key_values() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlX2J5dGVz";
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        let flat =
            "-----BEGIN OPENSSH PRIVATE KEY-----b3BlbnNzaC1rZXk=-----END OPENSSH PRIVATE KEY-----";
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmg\n-----END CERTIFICATE-----";
        let p = hardened()
            .with_container("agent")
            .env("SESSION", jwt)
            .env("TLS_MATERIAL", pem)
            .env("SSH_MATERIAL", flat)
            .env("CA_BUNDLE", cert)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].env[1]",
                "spec.containers[0].env[2]",
                "spec.containers[0].env[3]"
            ]
        );
        assert!(v[0].message.contains("JWT") && v[1].message.contains("PEM"));
    }

    #[test]
    fn file_paths_are_where_a_credential_is_not_one() {
        let p = hardened()
            .with_container("agent")
            .env(
                "GOOGLE_APPLICATION_CREDENTIALS",
                "/var/run/secrets/gcp/key.json",
            )
            .env("DB_PASSWORD_FILE", "/run/secrets/db")
            .env("SSH_KEY_PATH", "~/.ssh/id_ed25519")
            .env("API_TOKEN", "./token")
            .env("TLS_KEY", "/etc/tls/tls.key")
            .build();
        assert!(
            run_default(&CHECK, &p).is_empty(),
            "{:?}",
            run_default(&CHECK, &p)
        );
    }

    #[test]
    fn names_match_without_regard_to_case_and_cover_the_usual_shapes() {
        let p = hardened()
            .with_container("agent")
            .env("github_token", "abcdef0123456789")
            .env("ENCRYPTION_KEY", "k1k2k3k4k5")
            .env("SMTP_PASS", "hunter2")
            .env("MYSQL_ROOT_PASSWD", "hunter2")
            .env("GITLAB_PAT", "abcdefgh12345678")
            .env("SIGNING_PUBLIC_KEY", "ssh-ed25519 AAAAC3Nza")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].env[1]",
                "spec.containers[0].env[2]",
                "spec.containers[0].env[3]",
                "spec.containers[0].env[4]",
                "spec.containers[0].env[5]"
            ],
            "{v:?}"
        );
    }

    #[test]
    fn urls_and_dsns_count_only_with_a_password() {
        let p = hardened()
            .with_container("agent")
            .env("DATABASE_URL", "postgres://app:s3cr3t-pw@db:5432/agent")
            .env("REDIS_URL", "redis://cache:6379/0")
            .env("CACHE_URL", "redis://:$(REDIS_PASSWORD)@cache:6379")
            .env("SENTRY_DSN", "https://abc@o1.ingest.sentry.io/1")
            .env("MYSQL_DSN", "agent:pa55word@tcp(db:3306)/agent")
            .env(
                "PG_DSN",
                "host=db user=agent password=pa55word dbname=agent",
            )
            .env("JAVA_OPTS", "-Xmx1g -Ddb.password=pa55word")
            .env("HOME_URL", "https://example.com/a:b@c")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].env[1]",
                "spec.containers[0].env[5]",
                "spec.containers[0].env[6]",
                "spec.containers[0].env[7]"
            ],
            "{v:?}"
        );
        let shown = format!("{v:?}");
        for secret in ["s3cr3t-pw", "pa55word"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn rejects_credentials_in_command_and_args_by_shape() {
        let p = hardened()
            .with_container("agent")
            .command(&["openclaw", "--api-key=sk-proj-Zx9qW2mP4kL8vN1bT6yR3c"])
            .args(&[
                "--token",
                "abcdefgh12345678",
                "--log-level=debug",
                "--token-file=/var/run/token",
                "-H",
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def",
                "sh -c 'export OPENAI_API_KEY=hunter2hunter2; exec openclaw'",
                "--password=$(DB_PASSWORD)",
                "curl -H \"Authorization: Bearer $TOKEN\" https://api",
            ])
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].command[1]",
                "spec.containers[0].args[1]",
                "spec.containers[0].args[5]",
                "spec.containers[0].args[6]"
            ],
            "{v:?}"
        );
        assert!(
            v[0].message.contains("command[1] of container agent"),
            "{}",
            v[0].message
        );
        assert!(v[0].message.contains("--api-key"), "{}", v[0].message);
        assert!(v[1].message.contains("--token"), "{}", v[1].message);
        assert!(v[2].message.contains("Authorization"), "{}", v[2].message);
        let shown = format!("{v:?}");
        for secret in ["Zx9qW2mP4kL8", "abcdefgh12345678", "hunter2", "eyJhbGci"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn name_exceptions_win_over_patterns() {
        let p = hardened()
            .with_container("agent")
            .env("VAULT_TOKEN_PATH", "/var/run/vault/token")
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_credentials_in_init_and_ephemeral_containers() {
        let p = hardened()
            .init_container("setup")
            .env("GITHUB_TOKEN", "ghp_0123456789abcdefghijABCDEFGHIJ0123")
            .ephemeral_container("debug")
            .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.initContainers[0].env[0]",
                "spec.ephemeralContainers[0].env[0]"
            ]
        );
    }
}
