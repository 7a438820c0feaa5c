//! Redis Cluster, as one node that owns all 16384 slots (`cluster-enabled yes`): enough for
//! cluster clients (redis-rs cluster-async, `redis-cli -c`, go-redis ClusterClient) to connect
//! and route everything here. Slots, CROSSSLOT checks and the CLUSTER replies follow Redis 7.0.

use bytes::Bytes;

use super::{eq_ic, CmdError, CmdResult, Ctx};

pub const SLOTS: u16 = 16384;
const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The hash slot of a key: CRC16 of the key, or of its `{hash tag}` when it has a non-empty one.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&c| c == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&c| c == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    CRC16.checksum(tagged) & (SLOTS - 1)
}

pub const CROSSSLOT: CmdError = CmdError(std::borrow::Cow::Borrowed("CROSSSLOT Keys in request don't hash to the same slot"));

/// Redis Cluster's rule, kept by a single node too: one command's keys, and a transaction's keys,
/// must all hash to one slot.
pub fn check_slots(cmd: &super::Command, args: &[Bytes], client: &crate::client::Client) -> CmdResult {
    let mut slot = None;
    let mut same = |key: &Bytes| {
        let s = key_slot(key);
        *slot.get_or_insert(s) == s
    };
    if cmd.name == "exec" {
        for queued in client.multi.iter().flatten() {
            let Some(i) = super::lookup(&queued[0]) else { continue };
            if !super::table()[i].keys(queued).all(&mut same) {
                return Err(CROSSSLOT);
            }
        }
        return Ok(());
    }
    if cmd.keys(args).all(same) {
        Ok(())
    } else {
        Err(CROSSSLOT)
    }
}

/// The error of commands that move data between databases, which cluster mode has only one of.
pub fn not_in_cluster_mode(what: &str) -> CmdError {
    CmdError::msg(format!("ERR {what} is not allowed in cluster mode"))
}

fn disabled() -> CmdError {
    CmdError::msg("ERR This instance has cluster support disabled")
}

/// READONLY, READWRITE, ASKING: accepted in cluster mode (there are no replicas to read from).
pub fn readonly(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if !ctx.server.config.cluster_enabled {
        return Err(disabled());
    }
    ctx.out.ok();
    Ok(())
}

pub fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !ctx.server.config.cluster_enabled {
        return Err(disabled());
    }
    let sub = &args[1];
    let server = ctx.server;
    // The address the client reached us on; through the Unix socket, the loopback one.
    let ip = ctx
        .client
        .info
        .laddr
        .ip()
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())
        .to_string();
    let port = server.port;
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "cluster");
    } else if eq_ic(sub, "info") {
        let text = format!(
            "cluster_state:ok\r\ncluster_slots_assigned:{SLOTS}\r\ncluster_slots_ok:{SLOTS}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
        );
        ctx.out.verbatim(text.as_bytes());
    } else if eq_ic(sub, "myid") {
        ctx.out.bulk(server.node_id.as_bytes());
    } else if eq_ic(sub, "nodes") {
        let line = format!(
            "{} {ip}:{port}@{} myself,master - 0 0 0 connected 0-{}\n",
            server.node_id,
            port as u32 + 10000,
            SLOTS - 1
        );
        ctx.out.verbatim(line.as_bytes());
    } else if eq_ic(sub, "slots") {
        let out = &mut *ctx.out;
        out.array(1);
        out.array(3);
        out.int(0);
        out.int(SLOTS as i64 - 1);
        out.array(4);
        out.bulk(ip.as_bytes());
        out.int(port as i64);
        out.bulk(server.node_id.as_bytes());
        out.map(0);
    } else if eq_ic(sub, "shards") {
        let out = &mut *ctx.out;
        out.array(1);
        out.map(2);
        out.bulk(b"slots");
        out.array(2);
        out.int(0);
        out.int(SLOTS as i64 - 1);
        out.bulk(b"nodes");
        out.array(1);
        out.map(7);
        out.bulk(b"id");
        out.bulk(server.node_id.as_bytes());
        out.bulk(b"port");
        out.int(port as i64);
        for (k, v) in [("ip", ip.as_str()), ("endpoint", ip.as_str()), ("role", "master")] {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
        out.bulk(b"replication-offset");
        out.int(0);
        out.bulk(b"health");
        out.bulk(b"online");
    } else if eq_ic(sub, "keyslot") {
        ctx.out.int(key_slot(&args[2]) as i64);
    } else if eq_ic(sub, "countkeysinslot") {
        let slot = super::parse_i64(&args[2])?;
        if !(0..SLOTS as i64).contains(&slot) {
            return Err(CmdError::msg("ERR Invalid slot"));
        }
        // Redis keeps an index per slot; one node owning everything scans instead.
        let mut n = 0;
        server
            .keyspace
            .for_each_key(0, ctx.now, |k, _| n += (key_slot(k) as i64 == slot) as i64);
        ctx.out.int(n);
    } else if eq_ic(sub, "getkeysinslot") {
        let slot = super::parse_i64(&args[2])?;
        let count = super::parse_i64(&args[3])?;
        if !(0..SLOTS as i64).contains(&slot) || count < 0 {
            return Err(CmdError::msg("ERR Invalid slot or number of keys"));
        }
        let mut keys: Vec<Box<[u8]>> = Vec::new();
        server.keyspace.for_each_key(0, ctx.now, |k, _| {
            if (keys.len() as i64) < count && key_slot(k) as i64 == slot {
                keys.push(k.into());
            }
        });
        ctx.out.array(keys.len());
        for k in &keys {
            ctx.out.bulk(k);
        }
    } else if eq_ic(sub, "links") {
        ctx.out.array(0);
    } else {
        // The dispatcher has refused unknown subcommands already.
        return Err(CmdError::msg(format!(
            "ERR CLUSTER {} is not supported: respite is a single cluster node that owns every slot",
            String::from_utf8_lossy(sub).to_ascii_uppercase()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{key_slot, CRC16};

    /// Values from Redis's CLUSTER KEYSLOT.
    #[test]
    fn slots_match_redis() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1}.a"), 8106);
        assert_eq!(key_slot(b"{user1}.a"), key_slot(b"user1"));
        // An empty tag hashes the whole key.
        assert_eq!(key_slot(b"{}a"), CRC16.checksum(b"{}a") & 16383);
    }
}
