//! Geospatial indexes: GEOADD GEOPOS GEODIST GEOHASH GEORADIUS(_RO) GEORADIUSBYMEMBER(_RO)
//! GEOSEARCH GEOSEARCHSTORE. A point is a sorted set member whose score is its 52-bit
//! interleaved geohash, so every sorted set command works on them too.
//!
//! The geohash arithmetic, the search boxes and the distance formula follow Redis 7.0's
//! geohash.c, geohash_helper.c and geo.c step for step (same constants, same order of floating
//! point operations, same libm calls), so scores, positions, distances and result sets come out
//! bit for bit as Redis's.

use std::f64::consts::PI;

use bytes::Bytes;

use super::zsets::{limits, parse_score_with, zset_of};
use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx};
use crate::keyspace::zset::ScoreRange;
use crate::keyspace::{Lookup, ZSet};
use crate::protocol::Reply;

const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const LON_MIN: f64 = -180.0;
const LON_MAX: f64 = 180.0;
/// 26 steps of 2 bits: the 52 bits a double score holds exactly.
const STEP_MAX: u8 = 26;
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

// ---- geohash.c ----

#[derive(Clone, Copy, PartialEq, Debug, Default)]
struct Hash {
    bits: u64,
    step: u8,
}

impl Hash {
    /// GZERO'd neighbours are skipped (HASHISZERO).
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// geohashAlign52Bits.
    fn align52(self) -> u64 {
        self.bits << (52 - self.step as u32 * 2)
    }
}

#[derive(Clone, Copy)]
struct Range {
    min: f64,
    max: f64,
}

const LON_RANGE: Range = Range {
    min: LON_MIN,
    max: LON_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

#[derive(Clone, Copy)]
struct Area {
    lon: Range,
    lat: Range,
}

/// Bits of `x` on the even positions, bits of `y` on the odd ones.
fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (xlo as u64, ylo as u64);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// geohashEncode: None outside the indexable area (the poles are out) or the given ranges.
fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Hash> {
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_r.min) / (lat_r.max - lat_r.min) * scale;
    let lon_offset = (lon - lon_r.min) / (lon_r.max - lon_r.min) * scale;
    Some(Hash {
        bits: interleave64(lat_offset as u32, lon_offset as u32),
        step,
    })
}

/// geohashDecode over the WGS84 ranges.
fn decode(hash: Hash) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let (ilato, ilono) = (sep as u32, (sep >> 32) as u32);
    let scale = (1u64 << hash.step) as f64;
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let lon_scale = LON_RANGE.max - LON_RANGE.min;
    Some(Area {
        lat: Range {
            min: LAT_RANGE.min + (ilato as f64 * 1.0 / scale) * lat_scale,
            max: LAT_RANGE.min + ((ilato.wrapping_add(1)) as f64 * 1.0 / scale) * lat_scale,
        },
        lon: Range {
            min: LON_RANGE.min + (ilono as f64 * 1.0 / scale) * lon_scale,
            max: LON_RANGE.min + ((ilono.wrapping_add(1)) as f64 * 1.0 / scale) * lon_scale,
        },
    })
}

/// The centre of a score's cell: (longitude, latitude).
fn decode_score(score: f64) -> Option<[f64; 2]> {
    let area = decode(Hash {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    })?;
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some([lon, lat])
}

/// `(uint64_t)score` as x86-64 C does it, for sorted sets whose scores are not geohashes
/// (negative or huge scores decode to somewhere, as on Redis, rather than saturating).
fn c_double_to_u64(x: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    const INDEFINITE: u64 = 1 << 63;
    let cvtt = |v: f64| if v > -TWO63 && v < TWO63 { v as i64 as u64 } else { INDEFINITE };
    if x < TWO63 {
        cvtt(x)
    } else {
        cvtt(x - TWO63) ^ INDEFINITE
    }
}

fn move_x(hash: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - hash.step as u32 * 2;
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> shift;
    hash.bits = x | y;
}

fn move_y(hash: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - hash.step as u32 * 2;
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> shift;
    hash.bits = x | y;
}

/// The box and its 8 neighbours, in the order Redis searches them: centre, N, S, E, W, NE, NW,
/// SE, SW.
fn neighbours(hash: Hash) -> [Hash; 9] {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    [
        hash,
        at(0, 1),
        at(0, -1),
        at(1, 0),
        at(-1, 0),
        at(1, 1),
        at(-1, 1),
        at(1, -1),
        at(-1, -1),
    ]
}

// ---- geohash_helper.c ----

fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// geohashGetLatDistance.
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// geohashGetDistance: haversine on a sphere of the WGS84 quadratic mean radius.
fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

#[derive(Clone, Copy)]
enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search area: centre (longitude, latitude), size in `unit`s, and meters per unit.
#[derive(Clone, Copy)]
struct Shape {
    xy: [f64; 2],
    kind: ShapeKind,
    conversion: f64,
}

impl Shape {
    /// geohashBoundingBox: [min lon, min lat, max lon, max lat].
    fn bounds(&self) -> [f64; 4] {
        let [longitude, latitude] = self.xy;
        let (height, width) = match self.kind {
            ShapeKind::Radius(r) => (self.conversion * r, self.conversion * r),
            ShapeKind::Box { width, height } => (self.conversion * (height / 2.0), self.conversion * (width / 2.0)),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        let delta = if latitude < 0.0 { long_delta_bottom } else { long_delta_top };
        [longitude - delta, latitude - lat_delta, longitude + delta, latitude + lat_delta]
    }

    /// geohashCalculateAreasByShapeWGS84: the boxes (centre + 8, the useless ones zeroed) whose
    /// score ranges cover the shape.
    fn boxes(&self) -> [Hash; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let [longitude, latitude] = self.xy;
        let radius_meters = match self.kind {
            ShapeKind::Radius(r) => r,
            ShapeKind::Box { width, height } => ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
        } * self.conversion;
        let mut steps = estimate_steps_by_radius(radius_meters, latitude);
        let around = |steps: u8| {
            let hash = encode(LON_RANGE, LAT_RANGE, longitude, latitude, steps).unwrap_or(Hash { bits: 0, step: steps });
            (neighbours(hash), decode(hash))
        };
        let (mut n, mut area) = around(steps);
        let edge = |h: Hash| decode(h);
        let too_coarse = edge(n[1]).is_some_and(|a| a.lat.max < max_lat)
            || edge(n[2]).is_some_and(|a| a.lat.min > min_lat)
            || edge(n[3]).is_some_and(|a| a.lon.max < max_lon)
            || edge(n[4]).is_some_and(|a| a.lon.min > min_lon);
        if steps > 1 && too_coarse {
            steps -= 1;
            (n, area) = around(steps);
        }
        if steps >= 2 {
            if let Some(area) = area {
                const ZERO: Hash = Hash { bits: 0, step: 0 };
                // [centre, N, S, E, W, NE, NW, SE, SW]
                if area.lat.min < min_lat {
                    (n[2], n[8], n[7]) = (ZERO, ZERO, ZERO);
                }
                if area.lat.max > max_lat {
                    (n[1], n[5], n[6]) = (ZERO, ZERO, ZERO);
                }
                if area.lon.min < min_lon {
                    (n[4], n[8], n[6]) = (ZERO, ZERO, ZERO);
                }
                if area.lon.max > max_lon {
                    (n[3], n[7], n[5]) = (ZERO, ZERO, ZERO);
                }
            }
        }
        n
    }

    /// geoWithinShape: the point of `score` and its distance from the centre, if inside.
    fn contains(&self, score: f64) -> Option<([f64; 2], f64)> {
        let xy = decode_score(score)?;
        let [x1, y1] = self.xy;
        let [x2, y2] = xy;
        match self.kind {
            ShapeKind::Radius(r) => {
                let d = distance(x1, y1, x2, y2);
                (d <= r * self.conversion).then_some((xy, d))
            }
            ShapeKind::Box { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                if lat_distance(y2, y1) > height_m / 2.0 || distance(x2, y2, x1, y2) > width_m / 2.0 {
                    return None;
                }
                Some((xy, distance(x1, y1, x2, y2)))
            }
        }
    }
}

// ---- geo.c ----

struct Point {
    member: Vec<u8>,
    xy: [f64; 2],
    dist: f64,
    score: f64,
}

/// membersOfAllNeighbors: the points of `z` inside `shape`, box by box; with `limit` (ANY),
/// stops once that many are found.
fn points_in_shape(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let mut found = Vec::new();
    let boxes = shape.boxes();
    // Index of the box searched last; as in Redis, 0 (the centre) counts as none.
    let mut last = 0;
    for (i, &hash) in boxes.iter().enumerate() {
        if hash.is_zero() {
            continue;
        }
        // Huge radii make neighbours repeat: a box equal to the one just searched is skipped.
        if last != 0 && boxes[last] == hash {
            continue;
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
        let min = hash.align52();
        let max = Hash {
            bits: hash.bits + 1,
            step: hash.step,
        }
        .align52();
        let range = ScoreRange {
            min: min as f64,
            max: max as f64,
            minex: false,
            maxex: true,
        };
        let mut pos = z.first_in_range(&range);
        while let Some(p) = pos {
            let (member, score) = z.get(p);
            if !range.lte_max(score) {
                break;
            }
            if let Some((xy, dist)) = shape.contains(score) {
                found.push(Point {
                    member: member.to_vec(),
                    xy,
                    dist,
                    score,
                });
            }
            if limit > 0 && found.len() >= limit {
                break;
            }
            pos = z.next(p);
        }
        last = i;
    }
    found
}

/// getDoubleFromObjectOrReply with its message.
fn float(arg: &[u8], msg: &'static str) -> Result<f64, CmdError> {
    parse_score_with(arg, &CmdError::msg(msg))
}

/// extractLongLatOrReply.
fn lon_lat(args: &[Bytes]) -> Result<[f64; 2], CmdError> {
    let lon = float(&args[0], "ERR value is not a valid float")?;
    let lat = float(&args[1], "ERR value is not a valid float")?;
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CmdError::msg(format!("ERR invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok([lon, lat])
}

/// extractUnitOrReply: meters per unit.
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)]
        .iter()
        .find(|(name, _)| eq_ic(arg, name))
        .map(|&(_, to_meters)| to_meters)
        .ok_or_else(|| CmdError::msg("ERR unsupported unit provided. please use M, KM, FT, MI"))
}

/// extractDistanceOrReply: (radius, meters per unit).
fn radius(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let r = float(&args[0], "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(CmdError::msg("ERR radius cannot be negative"));
    }
    Ok((r, unit(&args[1])?))
}

/// extractBoxOrReply: (width, height, meters per unit).
fn box_size(args: &[Bytes]) -> Result<(f64, f64, f64), CmdError> {
    let w = float(&args[0], "ERR need numeric width")?;
    let h = float(&args[1], "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::msg("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(&args[2])?))
}

/// addReplyDoubleDistance: fixedpoint_d2string with 4 decimals (llrint, so ties go to even).
fn distance_text(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let v = (d * 10000.0).round_ties_even() as i64;
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:04}", a / 10000, a % 10000)
}

/// addReplyHumanLongDouble: "%.17Lf" without trailing zeros; a RESP3 double.
fn human_double(out: &mut Reply, v: f64) {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".into();
    }
    out.double_text(s.as_bytes());
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the geohashes as scores.
pub fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut xx, mut nx) = (false, false);
    let mut lon_at = 2;
    while lon_at < args.len() {
        let opt = &args[lon_at];
        if eq_ic(opt, "nx") {
            nx = true;
        } else if eq_ic(opt, "xx") {
            xx = true;
        } else if !eq_ic(opt, "ch") {
            break;
        }
        lon_at += 1;
    }
    if !(args.len() - lon_at).is_multiple_of(3) || (xx && nx) {
        return Err(CmdError::SYNTAX);
    }
    let mut zadd_args: Vec<Bytes> = Vec::with_capacity(lon_at + (args.len() - lon_at) / 3 * 2);
    zadd_args.push(Bytes::from_static(b"zadd"));
    zadd_args.extend_from_slice(&args[1..lon_at]);
    for triple in args[lon_at..].chunks_exact(3) {
        let [lon, lat] = lon_lat(triple)?;
        let hash = encode(LON_RANGE, LAT_RANGE, lon, lat, STEP_MAX).unwrap_or_default();
        zadd_args.push(Bytes::from(hash.align52().to_string()));
        zadd_args.push(triple[2].clone());
    }
    super::zsets::zadd(ctx, &zadd_args)
}

/// GEOPOS key member [...]: each member's (longitude, latitude), or null.
pub fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let members = &args[2..];
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let z = e.map(zset_of).transpose()?;
        out.array(members.len());
        for m in members {
            match z.and_then(|z| z.score(m)).and_then(decode_score) {
                Some([lon, lat]) => {
                    out.array(2);
                    human_double(out, lon);
                    human_double(out, lat);
                }
                None => out.null_array(),
            }
        }
        Ok(())
    })
}

/// GEOHASH key member [...]: standard 11-character geohashes (re-encoded over latitudes ±90).
pub fn geohash(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let members = &args[2..];
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let z = e.map(zset_of).transpose()?;
        out.array(members.len());
        for m in members {
            let Some([lon, lat]) = z.and_then(|z| z.score(m)).and_then(decode_score) else {
                out.null();
                continue;
            };
            let std_ranges = (Range { min: -180.0, max: 180.0 }, Range { min: -90.0, max: 90.0 });
            let bits = encode(std_ranges.0, std_ranges.1, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
            let mut text = [b'0'; 11];
            for (i, c) in text.iter_mut().enumerate().take(10) {
                *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
            }
            out.bulk(&text);
        }
        Ok(())
    })
}

/// GEODIST key member1 member2 [M|KM|FT|MI].
pub fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CmdError::SYNTAX),
    };
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let Some(z) = e.map(zset_of).transpose()? else {
            out.null();
            return Ok(());
        };
        let points = (z.score(&args[2]), z.score(&args[3]));
        match points {
            (Some(a), Some(b)) => match (decode_score(a), decode_score(b)) {
                (Some([x1, y1]), Some([x2, y2])) => out.bulk(distance_text(distance(x1, y1, x2, y2) / to_meters).as_bytes()),
                _ => out.null(),
            },
            _ => out.null(),
        }
        Ok(())
    })
}

/// Which command of the GEORADIUS family is parsing (georadiusGeneric's flags).
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// GEORADIUS (`store`: not the _RO form).
    Coords { store: bool },
    /// GEORADIUSBYMEMBER.
    Member { store: bool },
    /// GEOSEARCH, or GEOSEARCHSTORE with `store`.
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// What a search asked for, once its arguments are read.
struct Query {
    shape: Shape,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    sort: Sort,
    count: usize,
    any: bool,
    /// STORE / STOREDIST / GEOSEARCHSTORE's destination, and whether distances are stored.
    store: Option<(Bytes, bool)>,
}

pub fn georadius(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    search(ctx, args, 1, Variant::Coords { store: true })
}

pub fn georadius_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    search(ctx, args, 1, Variant::Coords { store: false })
}

pub fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    search(ctx, args, 1, Variant::Member { store: true })
}

pub fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    search(ctx, args, 1, Variant::Member { store: false })
}

pub fn geosearch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    search(ctx, args, 1, Variant::Search { store: false })
}

pub fn geosearchstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    search(ctx, args, 2, Variant::Search { store: true })
}

/// Reads a search's arguments as georadiusGeneric does, in its order: the source's type first,
/// then the centre and size, then the options (a missing source skips what needs its members).
fn parse_query(args: &[Bytes], variant: Variant, z: Option<&ZSet>) -> Result<Query, CmdError> {
    let member_xy = |m: &[u8]| {
        z.and_then(|z| z.score(m))
            .and_then(decode_score)
            .ok_or_else(|| CmdError::msg("ERR could not decode requested zset member"))
    };
    let mut shape = Shape {
        xy: [0.0, 0.0],
        kind: ShapeKind::Radius(0.0),
        conversion: 0.0,
    };
    let mut store = None;
    let base = match variant {
        Variant::Coords { .. } => {
            shape.xy = lon_lat(&args[2..4])?;
            let (r, conversion) = radius(&args[4..6])?;
            (shape.kind, shape.conversion) = (ShapeKind::Radius(r), conversion);
            6
        }
        Variant::Member { .. } if z.is_none() => 5,
        Variant::Member { .. } => {
            shape.xy = member_xy(&args[2])?;
            let (r, conversion) = radius(&args[3..5])?;
            (shape.kind, shape.conversion) = (ShapeKind::Radius(r), conversion);
            5
        }
        Variant::Search { store: false } => 2,
        Variant::Search { store: true } => {
            store = Some((args[1].clone(), false));
            3
        }
    };
    let search = matches!(variant, Variant::Search { .. });
    let storable = matches!(variant, Variant::Coords { store: true } | Variant::Member { store: true });
    let (mut with_dist, mut with_hash, mut with_coord, mut any) = (false, false, false, false);
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut count = 0i64;
    let opts = &args[base.min(args.len())..];
    let remaining = opts.len();
    let mut i = 0;
    while i < remaining {
        let arg = &opts[i];
        if eq_ic(arg, "withdist") {
            with_dist = true;
        } else if eq_ic(arg, "withhash") {
            with_hash = true;
        } else if eq_ic(arg, "withcoord") {
            with_coord = true;
        } else if eq_ic(arg, "any") {
            any = true;
        } else if eq_ic(arg, "asc") {
            sort = Sort::Asc;
        } else if eq_ic(arg, "desc") {
            sort = Sort::Desc;
        } else if eq_ic(arg, "count") && i + 1 < remaining {
            count = parse_i64(&opts[i + 1])?;
            if count <= 0 {
                return Err(CmdError::msg("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if (eq_ic(arg, "store") || eq_ic(arg, "storedist")) && i + 1 < remaining && storable {
            store = Some((opts[i + 1].clone(), eq_ic(arg, "storedist")));
            i += 1;
        } else if eq_ic(arg, "storedist") && variant == (Variant::Search { store: true }) {
            if let Some((_, dist)) = store.as_mut() {
                *dist = true;
            }
        } else if eq_ic(arg, "frommember") && i + 1 < remaining && search && !from_loc {
            if z.is_some() {
                shape.xy = member_xy(&opts[i + 1])?;
            }
            from_member = true;
            i += 1;
        } else if eq_ic(arg, "fromlonlat") && i + 2 < remaining && search && !from_member {
            shape.xy = lon_lat(&opts[i + 1..i + 3])?;
            from_loc = true;
            i += 2;
        } else if eq_ic(arg, "byradius") && i + 2 < remaining && search && !by_box {
            let (r, conversion) = radius(&opts[i + 1..i + 3])?;
            (shape.kind, shape.conversion) = (ShapeKind::Radius(r), conversion);
            by_radius = true;
            i += 2;
        } else if eq_ic(arg, "bybox") && i + 3 < remaining && search && !by_radius {
            let (width, height, conversion) = box_size(&opts[i + 1..i + 4])?;
            (shape.kind, shape.conversion) = (ShapeKind::Box { width, height }, conversion);
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::SYNTAX);
        }
        i += 1;
    }
    if store.is_some() && (with_dist || with_hash || with_coord) {
        let what = if search { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(CmdError::msg(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if search && !(from_member || from_loc) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if search && !(by_radius || by_box) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if any && count == 0 {
        return Err(CmdError::msg("ERR the ANY argument requires COUNT argument"));
    }
    // COUNT keeps the nearest: without an order it means ascending (ANY keeps whatever it finds).
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    Ok(Query {
        shape,
        with_dist,
        with_hash,
        with_coord,
        sort,
        count: count as usize,
        any,
        store,
    })
}

/// georadiusGeneric: GEORADIUS, GEORADIUSBYMEMBER, GEOSEARCH, GEOSEARCHSTORE and the _RO forms.
fn search(ctx: &mut Ctx<'_>, args: &[Bytes], src_at: usize, variant: Variant) -> CmdResult {
    let (query, found) = ctx.server.keyspace.read(ctx.client.db, &args[src_at], ctx.now, Lookup::Read, |e| {
        let z = e.map(zset_of).transpose()?;
        let query = parse_query(args, variant, z)?;
        let found = z.map(|z| points_in_shape(z, &query.shape, if query.any { query.count } else { 0 }));
        Ok::<_, CmdError>((query, found))
    })?;
    let Some(mut points) = found else {
        // No source: an empty answer, or an emptied destination.
        match &query.store {
            Some((dst, _)) => store(ctx, dst, ZSet::new(), variant),
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    let returned = if query.count == 0 {
        points.len()
    } else {
        points.len().min(query.count)
    };
    match query.sort {
        Sort::None => {}
        Sort::Asc => points.sort_by(|a, b| a.dist.partial_cmp(&b.dist).unwrap_or(std::cmp::Ordering::Equal)),
        Sort::Desc => points.sort_by(|a, b| b.dist.partial_cmp(&a.dist).unwrap_or(std::cmp::Ordering::Equal)),
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= query.shape.conversion;
    }
    if let Some((dst, store_dist)) = &query.store {
        let mut z = ZSet::new();
        z.set_skiplist();
        let lim = limits(ctx);
        for p in &points {
            if z.score(&p.member).is_none() {
                z.insert_new(&p.member, if *store_dist { p.dist } else { p.score }, lim);
            }
        }
        z.convert_if_small(lim);
        store(ctx, dst, z, variant);
        return Ok(());
    }
    let options = query.with_dist as usize + query.with_hash as usize + query.with_coord as usize;
    let out = &mut *ctx.out;
    out.array(points.len());
    for p in &points {
        if options > 0 {
            out.array(options + 1);
        }
        out.bulk(&p.member);
        if query.with_dist {
            out.bulk(distance_text(p.dist).as_bytes());
        }
        if query.with_hash {
            out.int(p.score as i64);
        }
        if query.with_coord {
            out.array(2);
            human_double(out, p.xy[0]);
            human_double(out, p.xy[1]);
        }
    }
    Ok(())
}

/// Writes a search's result set to `dst` (an empty one deletes it), the event before the reply
/// as in Redis.
fn store(ctx: &mut Ctx<'_>, dst: &[u8], z: ZSet, variant: Variant) {
    let stored = super::zsets::replace_with(ctx, dst, z);
    let event = if matches!(variant, Variant::Search { .. }) {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    stored.notify(ctx, dst, event);
    ctx.out.int(stored.len as i64);
}

/// The destinations of GEORADIUS / GEORADIUSBYMEMBER's STORE and STOREDIST, found as Redis 7.0
/// finds them for COMMAND GETKEYS and the cluster slot check (its key specs): the argument after
/// the first STORE, and after the first STOREDIST, searched from the first option on.
pub fn store_keys(args: &[Bytes]) -> [Option<&Bytes>; 2] {
    let from = if eq_ic(&args[0], "georadiusbymember") { 5 } else { 6 };
    let after = |word: &str| {
        (from..args.len().saturating_sub(1))
            .find(|&i| eq_ic(&args[i], word))
            .map(|i| &args[i + 1])
    };
    [after("store"), after("storedist")]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from redis-server 7.0.15: GEOADD Sicily 13.361389 38.115556 "Palermo" stores
    /// 3479099956230698, which GEOPOS gives back as 13.36138933897018433 38.11555639549629859.
    #[test]
    fn encode_and_decode_match_redis() {
        let h = encode(LON_RANGE, LAT_RANGE, 13.361389, 38.115556, STEP_MAX).unwrap();
        assert_eq!(h.align52(), 3479099956230698);
        let [lon, lat] = decode_score(3479099956230698.0).unwrap();
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        assert_eq!(deinterleave64(interleave64(0x1234567, 0x0abcdef)), (0x0abcdef << 32) | 0x1234567);
    }

    #[test]
    fn distances_round_as_redis_prints_them() {
        assert_eq!(distance_text(0.0), "0.0000");
        // GEODIST Sicily Palermo Catania in Redis's documentation.
        assert_eq!(distance_text(166_274.151_56), "166274.1516");
        assert_eq!(distance_text(0.000_04), "0.0000");
        assert_eq!(distance_text(1.000_06), "1.0001");
    }
}
