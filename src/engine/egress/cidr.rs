//! IP ranges for NetworkPolicy `ipBlock`s and allow-list entries: CIDR parsing, `except`
//! subtraction and containment. Hand-written because it is a few lines of integer
//! arithmetic over `std::net` (no range-set crate fits without pulling in far more).

use std::net::IpAddr;

/// An inclusive address range of one family; IPv4 addresses are kept apart from IPv6 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    v6: bool,
    lo: u128,
    hi: u128,
}

/// `10.0.0.0/8`, `2001:db8::/32`. Host bits are ignored, as the API server tolerates them
/// in `ipBlock.cidr` only for IPv4 `/0`-style writing; a bad address or prefix is an error.
pub fn parse(cidr: &str) -> Result<Range, String> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr:?} is not in CIDR notation (address/prefix)"))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| format!("{len:?} is not a prefix length"))?;
    let (v6, bits, value) = match ip {
        IpAddr::V4(a) => (false, 32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, 128, u128::from(a)),
    };
    if len > bits {
        return Err(format!("prefix /{len} is longer than {bits} bits"));
    }
    let host_bits = bits - len;
    let mask = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let lo = value & !mask;
    Ok(Range {
        v6,
        lo,
        hi: lo | mask,
    })
}

/// The addresses of `include` that are in none of `exclude`.
pub fn subtract(include: &[Range], exclude: &[Range]) -> Vec<Range> {
    let mut pieces = include.to_vec();
    for e in exclude {
        let mut next = Vec::with_capacity(pieces.len() + 1);
        for p in pieces {
            if p.v6 != e.v6 || e.hi < p.lo || e.lo > p.hi {
                next.push(p);
                continue;
            }
            if e.lo > p.lo {
                next.push(Range { hi: e.lo - 1, ..p });
            }
            if e.hi < p.hi {
                next.push(Range { lo: e.hi + 1, ..p });
            }
        }
        pieces = next;
    }
    pieces
}

/// Whether every address of `inner` is in `outer`.
pub fn within(inner: &[Range], outer: &[Range]) -> bool {
    let mut merged: Vec<Range> = Vec::new();
    let mut sorted = outer.to_vec();
    sorted.sort();
    for r in sorted {
        match merged.last_mut() {
            Some(m) if m.v6 == r.v6 && (m.hi == u128::MAX || r.lo <= m.hi + 1) => {
                m.hi = m.hi.max(r.hi);
            }
            _ => merged.push(r),
        }
    }
    // Merged ranges are disjoint and not adjacent, so a contiguous range fits in one.
    inner.iter().all(|i| {
        merged
            .iter()
            .any(|m| m.v6 == i.v6 && m.lo <= i.lo && i.hi <= m.hi)
    })
}

/// `cidrs` minus `except`, or an error naming the bad entry.
pub fn set(cidrs: &[String], except: &[String]) -> Result<Vec<Range>, String> {
    let parse_all = |v: &[String]| v.iter().map(|c| parse(c)).collect::<Result<Vec<_>, _>>();
    Ok(subtract(&parse_all(cidrs)?, &parse_all(except)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn s(cidrs: &[&str], except: &[&str]) -> Vec<Range> {
        let v = |x: &[&str]| x.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        set(&v(cidrs), &v(except)).unwrap()
    }

    #[test]
    fn except_carves_ranges_out() {
        let internet = s(
            &["0.0.0.0/0"],
            &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        );
        assert!(within(&s(&["8.8.8.8/32"], &[]), &internet));
        assert!(!within(&s(&["10.1.0.0/16"], &[]), &internet));
        assert!(!within(&s(&["0.0.0.0/0"], &[]), &internet));
        assert!(within(
            &s(
                &["0.0.0.0/0"],
                &[
                    "10.0.0.0/8",
                    "172.16.0.0/12",
                    "192.168.0.0/16",
                    "169.254.0.0/16"
                ]
            ),
            &internet
        ));
        // The two halves of the internet, together, fit; families stay apart.
        assert!(within(
            &s(&["0.0.0.0/0"], &[]),
            &s(&["0.0.0.0/1", "128.0.0.0/1"], &[])
        ));
        assert!(!within(&s(&["::/0"], &[]), &s(&["0.0.0.0/0"], &[])));
        assert!(within(
            &s(&["2001:db8::1/128"], &[]),
            &s(&["2001:db8::/32"], &[])
        ));
    }

    #[test]
    fn bad_cidrs_are_named() {
        assert!(parse("10.0.0.0").unwrap_err().contains("CIDR notation"));
        assert!(parse("10.0.0.0/33").unwrap_err().contains("/33"));
        assert!(parse("ten/8").unwrap_err().contains("not an IP"));
    }
}
