//! Property tests: the hand-written request decoder and reply writer against the redis-protocol
//! crate as the oracle.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use redis_protocol::resp3::types::OwnedFrame as Frame3;
use respite::protocol::{Decoder, Reply};

fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let frame = Frame2::Array(args.iter().map(|a| Frame2::BulkString(a.clone())).collect());
    use redis_protocol::resp2::types::Resp2Frame;
    let mut buf = vec![0u8; frame.encode_len(false)];
    redis_protocol::resp2::encode::encode(&mut buf, &frame, false).unwrap();
    buf
}

fn decode_all(input: &[u8], splits: &[usize]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let mut d = Decoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut args: Vec<Bytes> = Vec::new();
    let mut pos = 0;
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort();
    for cut in cuts {
        buf.extend_from_slice(&input[pos..cut.max(pos)]);
        pos = cut.max(pos);
        while d.decode(&mut buf, &mut args).map_err(|e| e.0)? {
            out.push(args.iter().map(|a| a.to_vec()).collect());
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Commands encoded by redis-protocol decode to the same arguments, however the bytes are split
    /// across reads.
    #[test]
    fn decoder_agrees_with_redis_protocol(
        commands in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6), 1..8),
        splits in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut input = Vec::new();
        for c in &commands {
            input.extend(encode_command(c));
        }
        // The oracle reads the same bytes back as the same frames.
        let mut oracle = Vec::new();
        let mut pos = 0;
        while let Some((frame, used)) = redis_protocol::resp2::decode::decode(&input[pos..]).unwrap() {
            let Frame2::Array(items) = frame else { panic!("array") };
            oracle.push(items.into_iter().map(|f| match f { Frame2::BulkString(b) => b, _ => panic!("bulk") }).collect::<Vec<_>>());
            pos += used;
        }
        prop_assert_eq!(&oracle, &commands);
        prop_assert_eq!(decode_all(&input, &splits).unwrap(), commands);
    }

    /// Arbitrary bytes never panic the decoder, and whatever it accepts as a complete multibulk
    /// command redis-protocol reads as the same array.
    #[test]
    fn decoder_never_panics_and_accepted_frames_agree(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&input[..]);
        let mut args = Vec::new();
        if input.first() == Some(&b'*') {
            if let Ok(true) = d.decode(&mut buf, &mut args) {
                if !args.is_empty() {
                    let consumed = input.len() - buf.len();
                    // redis-protocol checks the CRLF after each bulk that Redis (and respite) skip.
                    if let Ok(Some((Frame2::Array(items), used))) = redis_protocol::resp2::decode::decode(&input[..consumed]) {
                        prop_assert_eq!(used, consumed);
                        let oracle: Vec<Vec<u8>> = items.into_iter().filter_map(|f| match f { Frame2::BulkString(b) => Some(b), _ => None }).collect();
                        let ours: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
                        prop_assert_eq!(ours, oracle);
                    }
                }
            }
        } else {
            let _ = d.decode(&mut buf, &mut args);
        }
    }

    /// Replies written in RESP2 and RESP3 decode with redis-protocol to the intended values.
    #[test]
    fn replies_decode_with_redis_protocol(
        items in prop::collection::vec((any::<i64>(), prop::collection::vec(any::<u8>(), 0..30), any::<bool>()), 0..10),
        d in any::<f64>().prop_filter("finite", |d| d.is_finite()),
    ) {
        for resp3 in [false, true] {
            let mut r = Reply::new(resp3);
            r.array(items.len() * 2 + 1);
            for (n, bytes, null) in &items {
                r.int(*n);
                if *null { r.null() } else { r.bulk(bytes) }
            }
            r.map(1);
            r.bulk(b"k");
            r.double(d);
            r.error(b"ERR some\r\nerror");
            if resp3 {
                let (frame, used) = redis_protocol::resp3::decode::complete::decode(&r.buf).unwrap().unwrap();
                let Frame3::Array { data, .. } = frame else { panic!("array") };
                prop_assert_eq!(data.len(), items.len() * 2 + 1);
                for (i, (n, bytes, null)) in items.iter().enumerate() {
                    prop_assert_eq!(&data[2 * i], &Frame3::Number { data: *n, attributes: None });
                    match &data[2 * i + 1] {
                        Frame3::Null => prop_assert!(*null),
                        Frame3::BlobString { data, .. } => prop_assert_eq!(data, bytes),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                let Frame3::Map { data: map, .. } = &data[items.len() * 2] else { panic!("map") };
                let got = match map.get(&Frame3::BlobString { data: b"k".to_vec(), attributes: None }) {
                    Some(Frame3::Double { data, .. }) => *data,
                    other => panic!("double, got {other:?}"),
                };
                prop_assert_eq!(got, d);
                let (err, _) = redis_protocol::resp3::decode::complete::decode(&r.buf[used..]).unwrap().unwrap();
                prop_assert_eq!(err, Frame3::SimpleError { data: "ERR some  error".into(), attributes: None });
            } else {
                let (frame, used) = redis_protocol::resp2::decode::decode(&r.buf).unwrap().unwrap();
                let Frame2::Array(data) = frame else { panic!("array") };
                for (i, (n, bytes, null)) in items.iter().enumerate() {
                    prop_assert_eq!(&data[2 * i], &Frame2::Integer(*n));
                    if *null { prop_assert_eq!(&data[2 * i + 1], &Frame2::Null) } else { prop_assert_eq!(&data[2 * i + 1], &Frame2::BulkString(bytes.clone())) }
                }
                // RESP2 has no maps or doubles: a flat pair with the double as %.17g text.
                let Frame2::Array(pair) = &data[items.len() * 2] else { panic!("pair") };
                prop_assert_eq!(&pair[0], &Frame2::BulkString(b"k".to_vec()));
                let Frame2::BulkString(text) = &pair[1] else { panic!("bulk") };
                let parsed: f64 = String::from_utf8_lossy(text).parse().unwrap();
                prop_assert_eq!(parsed, d);
                let (err, _) = redis_protocol::resp2::decode::decode(&r.buf[used..]).unwrap().unwrap();
                prop_assert_eq!(err, Frame2::Error("ERR some  error".into()));
            }
        }
    }
}
