//! Host names and Cilium `toFQDNs` patterns: the allow-list's `fqdns` entries checked at
//! policy load, and whether every name a pattern can match is one an entry allows. Written
//! here because Cilium's matching rules (`*` within one label, `**.` across labels) are a few
//! lines, and no crate implements them.

/// Checks a host name or pattern of the allow-list: lower case letters, digits, `-`, `_`,
/// `.` and `*` (a whole label, or `**.` for any depth as the first label).
pub fn check_fqdn_pattern(f: &str) -> Result<(), String> {
    if f.is_empty() {
        return Err("an empty host name".into());
    }
    if f.contains(':') {
        return Err(format!(
            "{f:?}: a host name without a port (the entry's protocol and port say that)"
        ));
    }
    if !f
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.*".contains(c))
    {
        return Err(format!(
            "{f:?} is not a host name or pattern (lower case letters, digits, '-', '_', '.', '*')"
        ));
    }
    Ok(())
}

/// One element of a host name or pattern being judged.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Char(u8),
    /// `*`: any characters within one label.
    Label,
    /// `**` (Cilium's multi-level wildcard): any characters, dots included.
    Any,
}

fn parts(s: &str) -> Vec<Part> {
    let b = s.trim_end_matches('.').as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'*' {
            if b.get(i + 1) == Some(&b'*') {
                out.push(Part::Any);
                i += 2;
            } else {
                out.push(Part::Label);
                i += 1;
            }
        } else {
            out.push(Part::Char(b[i].to_ascii_lowercase()));
            i += 1;
        }
    }
    out
}

/// Whether every host `name` (a name or a Cilium pattern) can match is also matched by the
/// allow-list pattern `entry`. A lone `*` matches every name, on either side.
pub fn fqdn_within(name: &str, entry: &str) -> bool {
    let entry = entry.trim_end_matches('.');
    if entry == "*" {
        return true;
    }
    let name = name.trim_end_matches('.');
    if name == "*" {
        return false;
    }
    let (n, e) = (parts(name), parts(entry));
    // Glob matching where the entry's wildcards may also swallow the name's own wildcards
    // (a narrower or equal wildcard), and literal characters must match one for one.
    let mut memo = vec![vec![None; e.len() + 1]; n.len() + 1];
    fn go(n: &[Part], e: &[Part], i: usize, j: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(r) = memo[i][j] {
            return r;
        }
        let r = match e.get(j) {
            None => i == n.len(),
            Some(Part::Char(c)) => {
                n.get(i) == Some(&Part::Char(*c)) && go(n, e, i + 1, j + 1, memo)
            }
            Some(wild) => {
                // Skip the entry wildcard, or let it swallow one more part of the name.
                go(n, e, i, j + 1, memo)
                    || match (wild, n.get(i)) {
                        (_, None) => false,
                        (Part::Any, Some(_)) => go(n, e, i + 1, j, memo),
                        (Part::Label, Some(Part::Char(b'.'))) => false,
                        (Part::Label, Some(Part::Char(_) | Part::Label)) => {
                            go(n, e, i + 1, j, memo)
                        }
                        (Part::Label, Some(Part::Any)) => false,
                        (Part::Char(_), _) => false,
                    }
            }
        };
        memo[i][j] = Some(r);
        r
    }
    go(&n, &e, 0, 0, &mut memo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_patterns_cover_only_names_they_match() {
        assert!(fqdn_within("api.anthropic.com", "api.anthropic.com"));
        assert!(fqdn_within("API.anthropic.com.", "api.anthropic.com"));
        assert!(fqdn_within("api.openai.com", "*.openai.com"));
        assert!(fqdn_within("*.openai.com", "*.openai.com"));
        assert!(!fqdn_within("a.b.openai.com", "*.openai.com"));
        assert!(fqdn_within("a.b.openai.com", "**.openai.com"));
        assert!(!fqdn_within("**.openai.com", "*.openai.com"));
        assert!(!fqdn_within("*", "*.openai.com"));
        assert!(fqdn_within("*", "*"));
        assert!(!fqdn_within("evil.com", "*.openai.com"));
        assert!(!fqdn_within("openai.com.evil.com", "openai.com"));
        assert!(check_fqdn_pattern("api.anthropic.com").is_ok());
        assert!(check_fqdn_pattern("api.anthropic.com:443").is_err());
        assert!(check_fqdn_pattern("API.example").is_err());
    }
}
