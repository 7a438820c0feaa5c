//! SORT and SORT_RO (Redis's sort.c): the elements of a list, set or sorted set, ordered
//! numerically or by bytes (ALPHA), by themselves or by other keys (BY pattern), with LIMIT, GET
//! patterns and STORE into a list.

use std::cmp::Ordering;

use bytes::Bytes;

use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::{End, List, Lookup, Ttl, Value};

struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    by: Option<&'a [u8]>,
    /// BY names a key without `*`: the elements are not sorted at all.
    dont_sort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<&'a Bytes>,
}

fn parse<'a>(ctx: &Ctx<'_>, args: &'a [Bytes], read_only: bool) -> Result<Options<'a>, CmdError> {
    let cluster = ctx.server.config.cluster_enabled;
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
        store: None,
    };
    let mut j = 2;
    while j < args.len() {
        let (a, left) = (&args[j], args.len() - j - 1);
        if eq_ic(a, "asc") {
            o.desc = false;
        } else if eq_ic(a, "desc") {
            o.desc = true;
        } else if eq_ic(a, "alpha") {
            o.alpha = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            o.limit = Some((parse_i64(&args[j + 1])?, parse_i64(&args[j + 2])?));
            j += 2;
        } else if !read_only && eq_ic(a, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if eq_ic(a, "by") && left >= 1 {
            let pattern = &args[j + 1][..];
            o.by = Some(pattern);
            // A BY key without `*` is one key for every element: nothing to sort by.
            o.dont_sort = !pattern.contains(&b'*');
            if !o.dont_sort && cluster {
                return Err(CmdError::msg("ERR BY option of SORT denied in Cluster mode."));
            }
            j += 1;
        } else if eq_ic(a, "get") && left >= 1 {
            if cluster {
                return Err(CmdError::msg("ERR GET option of SORT denied in Cluster mode."));
            }
            o.gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// The value a BY or GET pattern names for `element` (Redis's lookupKeyByPattern): `#` is the
/// element itself; otherwise the first `*` is replaced by the element, and `key->field` reads a
/// hash field. A pattern without `*`, a missing key or a key of another type give None.
fn lookup_pattern(ctx: &Ctx<'_>, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let (postfix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(arrow) if arrow + 2 < after.len() => (&after[..arrow], Some(&after[arrow + 2..])),
        _ => (after, None),
    };
    let key = [&pattern[..star], element, postfix].concat();
    ctx.server.keyspace.read(ctx.client.db, &key, ctx.now, Lookup::Read, |e| {
        let value = &e?.value;
        match field {
            Some(f) => value.as_hash()?.get(f).map(<[u8]>::to_vec),
            None => value.as_str().map(<[u8]>::to_vec),
        }
    })
}

/// A sort weight as C's strtod reads it, as Redis does: all of the text must be a number (an
/// empty text is 0); NaN, overflow and underflow to zero are errors.
fn weight(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    let s = std::str::from_utf8(text).ok()?;
    let trimmed = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let v: f64 = match trimmed.parse() {
        Ok(v) => v,
        Err(_) => hex_float(trimmed)?,
    };
    let word = trimmed.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let literal_inf = word == "inf" || word == "infinity";
    let underflow = v == 0.0
        && trimmed
            .bytes()
            .take_while(|b| !matches!(b, b'e' | b'E'))
            .any(|b| (b'1'..=b'9').contains(&b));
    (!v.is_nan() && (v.is_finite() || literal_inf) && !underflow).then_some(v)
}

/// strtod's hexadecimal form: `[sign]0x<hex digits>[.<hex digits>][p[sign]<decimal exponent>]`.
fn hex_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let v = v * 2f64.powi(exp - 4 * frac.len() as i32);
    Some(if neg { -v } else { v })
}

struct Item {
    element: Vec<u8>,
    score: f64,
    /// The BY value, for ALPHA with BY (None: its key is missing).
    by: Option<Vec<u8>>,
}

fn compare(a: &Item, b: &Item, o: &Options<'_>) -> Ordering {
    let ord = if !o.alpha {
        // Equal weights fall back to the elements, so the result is deterministic.
        a.score
            .partial_cmp(&b.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.element.cmp(&b.element))
    } else if o.by.is_some() {
        match (&a.by, &b.by) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        }
    } else {
        a.element.cmp(&b.element)
    };
    if o.desc {
        ord.reverse()
    } else {
        ord
    }
}

/// What SORT reads of its key: the elements to sort and the window of them to answer.
struct Loaded {
    elements: Vec<Vec<u8>>,
    start: i64,
    end: i64,
}

/// Reads the key once (one hit or miss, as Redis's lookup) and takes its elements: all of them
/// in the value's own order, or, for a list or sorted set left unsorted, only the LIMIT window,
/// read from the end DESC asks for.
fn load(ctx: &Ctx<'_>, key: &[u8], o: &mut Options<'_>) -> Result<Loaded, CmdError> {
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| {
        let value = e.map(|e| &e.value);
        let (len, is_set) = match value {
            None => (0, false),
            Some(Value::List(l)) => (l.len(), false),
            Some(Value::Set(s)) => (s.len(), true),
            Some(Value::ZSet(z)) => (z.len(), false),
            Some(_) => return Err(CmdError::WRONGTYPE),
        };
        // An unsorted set is sorted by bytes when stored, so the stored list does not depend on
        // the set's iteration order.
        if o.dont_sort && is_set && o.store.is_some() {
            (o.dont_sort, o.alpha, o.by) = (false, true, None);
        }
        let len = len as i64;
        let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
        let mut start = limit_start.max(0);
        let mut end = if limit_count < 0 {
            len - 1
        } else {
            start.saturating_add(limit_count) - 1
        };
        if start >= len {
            (start, end) = (len - 1, len - 2);
        }
        end = end.min(len - 1);
        // Sorted, or a set (whose order is its own): every element.
        if !o.dont_sort || is_set {
            let elements = match value {
                Some(Value::List(l)) => l.iter().map(<[u8]>::to_vec).collect(),
                Some(Value::ZSet(z)) => z.iter().map(|(m, _)| m.to_vec()).collect(),
                Some(Value::Set(s)) => s.iter().map(|m| m.to_bytes().into_vec()).collect(),
                _ => Vec::new(),
            };
            return Ok(Loaded { elements, start, end });
        }
        if end < start {
            return Ok(Loaded {
                elements: Vec::new(),
                start,
                end,
            });
        }
        let (skip, n) = (start as usize, (end - start + 1) as usize);
        let elements = match value {
            Some(Value::List(l)) if o.desc => l.iter_rev().skip(skip).take(n).map(<[u8]>::to_vec).collect(),
            Some(Value::List(l)) => l.iter().skip(skip).take(n).map(<[u8]>::to_vec).collect(),
            Some(Value::ZSet(z)) if o.desc => z.iter_from(z.last(), true).skip(skip).take(n).map(|(m, _)| m.to_vec()).collect(),
            Some(Value::ZSet(z)) => z.iter().skip(skip).take(n).map(|(m, _)| m.to_vec()).collect(),
            _ => Vec::new(),
        };
        Ok(Loaded {
            elements,
            start: 0,
            end: end - start,
        })
    })
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let mut o = parse(ctx, args, read_only)?;
    let Loaded { elements, start, end } = load(ctx, &args[1], &mut o)?;
    let mut items: Vec<Item> = elements
        .into_iter()
        .map(|element| Item {
            element,
            score: 0.0,
            by: None,
        })
        .collect();
    let mut bad_weight = false;
    if !o.dont_sort {
        for item in &mut items {
            let by = match o.by {
                Some(pattern) => match lookup_pattern(ctx, pattern, &item.element) {
                    Some(v) => v,
                    None => continue,
                },
                None => item.element.clone(),
            };
            if o.alpha {
                if o.by.is_some() {
                    item.by = Some(by);
                }
            } else {
                match weight(&by) {
                    Some(w) => item.score = w,
                    None => bad_weight = true,
                }
            }
        }
        items.sort_by(|a, b| compare(a, b, &o));
    }
    if bad_weight {
        return Err(CmdError::msg("ERR One or more scores can't be converted into double"));
    }
    let chosen: &[Item] = if end >= start { &items[start as usize..=end as usize] } else { &[] };
    let Some(dest) = o.store else {
        let per = o.gets.len().max(1);
        ctx.out.array(chosen.len() * per);
        for item in chosen {
            if o.gets.is_empty() {
                ctx.out.bulk(&item.element);
            }
            for pattern in &o.gets {
                let v = lookup_pattern(ctx, pattern, &item.element);
                ctx.out.bulk_or_null(v.as_deref());
            }
        }
        return Ok(());
    };
    let mut list = List::default();
    for item in chosen {
        if o.gets.is_empty() {
            list.push(End::Tail, &item.element);
        }
        for pattern in &o.gets {
            list.push(End::Tail, &lookup_pattern(ctx, pattern, &item.element).unwrap_or_default());
        }
    }
    let n = list.len();
    let ks = &ctx.server.keyspace;
    if n > 0 {
        ks.write(ctx.client.db, dest, ctx.now, |slot| {
            slot.set(Value::List(Box::new(list)), Ttl::Clear)
        });
        ctx.notify(class::LIST, "sortstore", dest);
    } else if ks.write(ctx.client.db, dest, ctx.now, |slot| slot.remove().is_some()) {
        ctx.notify(class::GENERIC, "del", dest);
    }
    ctx.out.int(n as i64);
    Ok(())
}

pub fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// SORT's destination (`STORE key`), for the slot check and COMMAND GETKEYS (Redis's
/// sortGetKeys: the last STORE wins; options with arguments are skipped over).
pub fn store_key(args: &[Bytes]) -> Option<&Bytes> {
    let mut found = None;
    let mut j = 2;
    while j < args.len() {
        let a = &args[j];
        let skip = if eq_ic(a, "limit") {
            2
        } else if eq_ic(a, "get") || eq_ic(a, "by") {
            1
        } else if eq_ic(a, "store") {
            if j + 1 < args.len() {
                found = Some(&args[j + 1]);
            }
            1
        } else {
            0
        };
        j += 1 + skip;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::weight;

    #[test]
    fn weights_read_as_strtod_reads_them() {
        assert_eq!(weight(b"1.5"), Some(1.5));
        assert_eq!(weight(b"  -2"), Some(-2.0));
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b"inf"), Some(f64::INFINITY));
        assert_eq!(weight(b"1e400"), None);
        assert_eq!(weight(b"1e-400"), None);
        assert_eq!(weight(b"0e5"), Some(0.0));
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"1 "), None);
        assert_eq!(weight(b"abc"), None);
        assert_eq!(weight(b"0x10"), Some(16.0));
        assert_eq!(weight(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(weight(b"0x"), None);
    }
}
