//! `no-plaintext-credentials` (high): no env var, command or argument carries a literal
//! credential, where anyone who can read the pod (or its workload, or an audit log) would
//! see it. An env var is flagged by its name (a credential-like name, matched without regard
//! to case, with a literal value that is not a file path) or by its value's shape (a
//! provider key prefix, a JWT, a PEM private key, a URL or DSN with a password in it, a
//! `password=...` pair). `command` and `args` are judged by shape only: each word, and the
//! value of each `--flag=value`, `--flag value` or `NAME=value` whose name is
//! credential-like, and `Authorization: Bearer ...` headers. Messages name the variable or
//! argument and its container; the value is never copied anywhere.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
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
    reads: &[],
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
    v.len() >= MIN_KEY_LEN
        && token_chars(v)
        && prefixes.iter().any(|p| {
            !p.is_empty() && v.starts_with(p.as_str()) && v.len() - p.len() >= MIN_AFTER_PREFIX
        })
}

/// A value that is only a `$(OTHER_VAR)` reference holds no credential itself.
fn is_reference(v: &str) -> bool {
    v.starts_with("$(") && v.ends_with(')') && !v[2..v.len() - 1].contains(['(', ')'])
}

/// Text filled in later, not a credential: `$(VAR)` (the kubelet expands it), `$VAR` and
/// `${VAR}` (a shell does), `{{ .Values.x }}` (a template not yet rendered).
fn is_placeholder(v: &str) -> bool {
    v.starts_with('$') || v.starts_with("{{")
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
/// The table is built for each review from the policy in force (4 KB zeroed and a bit set
/// per pattern, a small part of what it saves), not cached beside the policy, so that it
/// can never disagree with the patterns it stands for.
struct Patterns<'s> {
    list: &'s [String],
    /// Bit `i` of entry `b`: pattern `i` may match a name whose last byte is `b`.
    by_last: Option<[u64; 256]>,
}

impl<'s> Patterns<'s> {
    fn new(list: &'s [String]) -> Self {
        let by_last = (list.len() <= 64).then(|| {
            let mut t = [0u64; 256];
            for (i, p) in list.iter().enumerate() {
                let bit = 1u64 << i;
                match p.as_bytes().last() {
                    // Ends in `*` (or is empty, which matches only the empty name): it is
                    // tried for every name.
                    None | Some(b'*') => t.iter_mut().for_each(|e| *e |= bit),
                    Some(&b) => {
                        t[usize::from(b.to_ascii_uppercase())] |= bit;
                        t[usize::from(b.to_ascii_lowercase())] |= bit;
                    }
                }
            }
            t
        });
        Patterns { list, by_last }
    }

    /// The first pattern, in the policy's order, that `matches` says yes to, among those
    /// that can match a name ending in `last` (all of them when `last` is `None`).
    fn first(&self, last: Option<u8>, matches: impl Fn(&str) -> bool) -> Option<&'s str> {
        let list = self.list;
        match (&self.by_last, last) {
            (Some(t), Some(b)) => {
                let mut bits = t[usize::from(b)];
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
    v.split_whitespace()
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
    let (key, value) = w.split_once('=')?;
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

/// Why a literal env var looks like a credential, in words that never quote the value.
fn reason(name: &str, value: &str, s: &Settings<'_>) -> Option<String> {
    if value.is_empty() || is_reference(value) {
        return None;
    }
    if let Some(p) = credential_name(name, s)
        && !is_file_path(value)
        && !is_placeholder(value)
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
fn arg_reason(list: &[String], i: usize, s: &Settings<'_>) -> Option<String> {
    let arg = &list[i];
    if looks_like_pem_private_key(arg) {
        return Some("it is a PEM private key".into());
    }
    if let Some(why) = header_token(arg) {
        return Some(why);
    }
    if let Some(why) = words(arg).find_map(|w| word_shape(w, s, true)) {
        return Some(why);
    }
    let previous = i.checked_sub(1).map(|p| list[p].as_str())?;
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

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let settings = &Settings::new(&input.policy.checks.credentials);
    let mut out = Vec::new();
    let fix =
        "store it in a Secret (or the Secrets Store CSI volume) and use valueFrom.secretKeyRef";
    for c in containers(t.spec, t.spec_path) {
        for (field, list) in [("command", c.command), ("args", c.args)] {
            for i in 0..list.len() {
                let Some(why) = arg_reason(list, i, settings) else {
                    continue;
                };
                out.push(Violation::new(
                    ID,
                    TIER,
                    format!("{}.{field}[{i}]", c.path),
                    format!("{field}[{i}] of container {} holds a literal credential ({why})", c.name),
                    "pass it in an env var from a Secret (valueFrom.secretKeyRef) and refer to it as $(VAR) or from a mounted file",
                ));
            }
        }
        for (i, e) in c.env.iter().enumerate() {
            if e.value_from.is_some() {
                continue;
            }
            let Some(why) = e
                .value
                .as_deref()
                .and_then(|v| reason(&e.name, v, settings))
            else {
                continue;
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.env[{i}]", c.path),
                format!(
                    "env var {} of container {} holds a literal credential ({why})",
                    e.name, c.name
                ),
                fix,
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    const ANTHROPIC_KEY: &str = "sk-ant-api03-Zx9qW2mP4kL8vN1bT6yR3cF5hJ7dG0sA";

    /// Names and patterns from the bytes that matter to the index: both cases, `-` and `_`
    /// (a flag's dash reads as an underscore), `*`, `.` (flag prefixes) and a non-ASCII
    /// letter.
    fn word() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::collection::vec(
            proptest::sample::select(&["a", "A", "k", "K", "_", "-", "*", ".", "é", "--"][..]),
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
