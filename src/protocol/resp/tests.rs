//! Tests of the RESP codec: every type, every split point, the limits, malformed input,
//! commands and pub/sub frames.

use super::*;

fn bulk(bytes: &[u8]) -> Frame {
    Frame::Bulk(bytes.to_vec())
}

fn limits() -> Limits {
    Limits::default()
}

/// Decodes a whole frame, checking that every strict prefix is `None` (nothing consumed)
/// and that bytes after the frame change nothing.
fn complete(input: &[u8], limits: &Limits) -> Frame {
    for split in 0..input.len() {
        assert_eq!(
            decode(&input[..split], limits),
            Ok(None),
            "prefix of {split} bytes of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    let (frame, used) = decode(input, limits).expect("valid").expect("complete");
    assert_eq!(used, input.len());
    let mut more = input.to_vec();
    more.extend_from_slice(b"+NEXT\r\n");
    assert_eq!(decode(&more, limits), Ok(Some((frame.clone(), used))));
    frame
}

/// The error for `input`, which no prefix of it may contradict: a prefix is `None` or the
/// same error, and more bytes keep the error.
fn refused(input: &[u8], limits: &Limits) -> RespError {
    let error = decode(input, limits).expect_err("refused");
    for split in 0..input.len() {
        match decode(&input[..split], limits) {
            Ok(None) => {}
            Err(e) => assert_eq!(e, error, "prefix of {split} bytes"),
            Ok(Some(frame)) => panic!("prefix of {split} bytes is complete: {frame:?}"),
        }
    }
    let mut more = input.to_vec();
    more.extend_from_slice(b"\r\n+NEXT\r\n$3\r\nabc\r\n");
    assert_eq!(decode(&more, limits), Err(error));
    error
}

#[test]
fn scalars() {
    let l = limits();
    assert_eq!(complete(b"+OK\r\n", &l), Frame::Simple(b"OK".to_vec()));
    assert_eq!(complete(b"+\r\n", &l), Frame::Simple(Vec::new()));
    assert_eq!(
        complete(b"-ERR unknown command 'x'\r\n", &l),
        Frame::Error(b"ERR unknown command 'x'".to_vec())
    );
    assert_eq!(complete(b":0\r\n", &l), Frame::Integer(0));
    assert_eq!(complete(b":-0\r\n", &l), Frame::Integer(0));
    assert_eq!(complete(b":1000\r\n", &l), Frame::Integer(1000));
    assert_eq!(
        complete(b":9223372036854775807\r\n", &l),
        Frame::Integer(i64::MAX)
    );
    assert_eq!(
        complete(b":-9223372036854775808\r\n", &l),
        Frame::Integer(i64::MIN)
    );
    assert_eq!(complete(b"$5\r\nhello\r\n", &l), bulk(b"hello"));
    assert_eq!(complete(b"$0\r\n\r\n", &l), bulk(b""));
    // Bulk strings are bytes: CRLF, NUL and invalid UTF-8 inside are kept.
    assert_eq!(
        complete(b"$6\r\n\r\n\0\xff\xfe+\r\n", &l),
        bulk(b"\r\n\0\xff\xfe+")
    );
    assert_eq!(complete(b"$-1\r\n", &l), Frame::NullBulk);
    assert_eq!(complete(b"*-1\r\n", &l), Frame::NullArray);
    // Simple strings are bytes too.
    assert_eq!(
        complete(b"+\xff\x00\r\n", &l),
        Frame::Simple(b"\xff\x00".to_vec())
    );
}

#[test]
fn arrays() {
    let l = limits();
    assert_eq!(complete(b"*0\r\n", &l), Frame::Array(Vec::new()));
    assert_eq!(
        complete(b"*3\r\n:1\r\n$-1\r\n+a\r\n", &l),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::NullBulk,
            Frame::Simple(b"a".to_vec())
        ])
    );
    assert_eq!(
        complete(b"*2\r\n*2\r\n:1\r\n*0\r\n*1\r\n*-1\r\n", &l),
        Frame::Array(vec![
            Frame::Array(vec![Frame::Integer(1), Frame::Array(Vec::new())]),
            Frame::Array(vec![Frame::NullArray]),
        ])
    );
    assert_eq!(
        complete(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$0\r\n\r\n", &l),
        Frame::Push(vec![bulk(b"message"), bulk(b"c"), bulk(b"")])
    );
    assert_eq!(complete(b">0\r\n", &l), Frame::Push(Vec::new()));
    // Deep on one side, then shallow.
    assert_eq!(
        complete(b"*2\r\n*1\r\n*1\r\n:5\r\n:6\r\n", &l),
        Frame::Array(vec![
            Frame::Array(vec![Frame::Array(vec![Frame::Integer(5)])]),
            Frame::Integer(6)
        ])
    );
}

#[test]
fn a_stream_of_frames_decodes_one_at_a_time() {
    let stream = b"+OK\r\n*2\r\n$1\r\na\r\n:2\r\n$-1\r\n";
    let mut rest: &[u8] = stream;
    let mut frames = Vec::new();
    while let Some((frame, used)) = decode(rest, &limits()).unwrap() {
        frames.push(frame);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(
        frames,
        [
            Frame::Simple(b"OK".to_vec()),
            Frame::Array(vec![bulk(b"a"), Frame::Integer(2)]),
            Frame::NullBulk
        ]
    );
}

#[test]
fn malformed_input_is_refused() {
    let l = limits();
    // Type bytes: RESP3 ones other than `>`, inline commands, garbage.
    for byte in [
        b'_', b',', b'#', b'(', b'!', b'=', b'%', b'~', b'|', b'P', b' ', b'\r', 0,
    ] {
        assert_eq!(refused(&[byte, b'1'], &l), RespError::UnknownType(byte));
    }
    // Line ends.
    assert_eq!(refused(b"+OK\n", &l), RespError::BadLineEnd);
    assert_eq!(refused(b"+OK\rX\n", &l), RespError::BadLineEnd);
    assert_eq!(refused(b":1\r\r\n", &l), RespError::BadLineEnd);
    assert_eq!(refused(b"$3\n", &l), RespError::BadLineEnd);
    // A bulk string not followed by CRLF (too long for its length, or too short).
    assert_eq!(refused(b"$3\r\nabcd\r\n", &l), RespError::BadLineEnd);
    assert_eq!(refused(b"$3\r\nabc\rX", &l), RespError::BadLineEnd);
    assert_eq!(refused(b"$3\r\nab\r\n\r\n", &l), RespError::BadLineEnd);
    // Integers.
    for bad in [
        &b":\r\n"[..],
        b":-\r\n",
        b":+1\r\n",
        b": 1\r\n",
        b":1 \r\n",
        b":1.5\r\n",
        b":0x10\r\n",
        b":--1\r\n",
        b":9223372036854775808\r\n",
        b":-9223372036854775809\r\n",
        b":99999999999999999999\r\n",
        b":000000000000000000001\r\n",
    ] {
        assert_eq!(refused(bad, &l), RespError::BadInteger, "{bad:?}");
    }
    // Lengths: negative other than -1, non-digits, overflow.
    for bad in [
        &b"$-2\r\n"[..],
        b"$-0\r\n",
        b"$-10\r\n",
        b"$\r\n",
        b"$+1\r\n",
        b"$1a\r\n",
        b"$ 1\r\n",
        b"*-2\r\n",
        b"*x\r\n",
        b"*\r\n",
        b">-1\r\n",
        b"$18446744073709551616\r\n",
        b"*99999999999999999999\r\n",
        b"$000000000000000000001\r\n",
    ] {
        assert_eq!(refused(bad, &l), RespError::BadLength, "{bad:?}");
    }
    // An error inside an array is the array's.
    assert_eq!(refused(b"*2\r\n:1\r\n:x\r\n", &l), RespError::BadInteger);
    assert_eq!(
        refused(b"*2\r\n:1\r\n?\r\n", &l),
        RespError::UnknownType(b'?')
    );
}

#[test]
fn a_length_near_usize_max_is_refused_not_overflowed() {
    let huge = Limits {
        max_bulk_len: usize::MAX,
        max_array_len: usize::MAX,
        max_elements: usize::MAX,
        ..limits()
    };
    let max = format!("${}\r\n", usize::MAX);
    assert_eq!(decode(max.as_bytes(), &huge), Err(RespError::BulkTooLong));
    let near = format!("${}\r\nabc", usize::MAX - 3);
    assert_eq!(decode(near.as_bytes(), &huge), Err(RespError::BulkTooLong));
    let near = format!("${}\r\nabc", usize::MAX - 100);
    assert_eq!(decode(near.as_bytes(), &huge), Ok(None));
    // Declared elements add up without overflow.
    let arrays = format!("*2\r\n*{}\r\n", usize::MAX);
    assert_eq!(
        decode(arrays.as_bytes(), &huge),
        Err(RespError::TooManyElements)
    );
}

#[test]
fn limits_are_enforced_before_the_bytes_arrive() {
    let l = Limits {
        max_bulk_len: 4,
        max_array_len: 3,
        max_depth: 2,
        max_elements: 5,
        max_line_len: 5,
    };
    assert_eq!(complete(b"$4\r\nabcd\r\n", &l), bulk(b"abcd"));
    assert_eq!(refused(b"$5\r\n", &l), RespError::BulkTooLong);
    assert_eq!(
        complete(b"*3\r\n:1\r\n:2\r\n:3\r\n", &l),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Integer(2),
            Frame::Integer(3)
        ])
    );
    assert_eq!(refused(b"*4\r\n", &l), RespError::ArrayTooLong);
    assert_eq!(refused(b">4\r\n", &l), RespError::ArrayTooLong);
    // Depth: two levels pass, a third (even empty) does not; a null array is no array.
    assert_eq!(
        complete(b"*1\r\n*1\r\n*-1\r\n", &l),
        Frame::Array(vec![Frame::Array(vec![Frame::NullArray])])
    );
    assert_eq!(refused(b"*1\r\n*1\r\n*0\r\n", &l), RespError::TooDeep);
    assert_eq!(refused(b"*1\r\n>1\r\n*1\r\n", &l), RespError::TooDeep);
    // Elements, summed over every array: 3 + 2 passes, 3 + 3 does not.
    assert_eq!(
        complete(b"*3\r\n:1\r\n*2\r\n:2\r\n:3\r\n:4\r\n", &l),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Array(vec![Frame::Integer(2), Frame::Integer(3)]),
            Frame::Integer(4)
        ])
    );
    assert_eq!(
        refused(b"*3\r\n:1\r\n*3\r\n", &l),
        RespError::TooManyElements
    );
    // Lines: 5 bytes pass; a sixth is refused without waiting for the CRLF.
    assert_eq!(complete(b"-12345\r\n", &l), Frame::Error(b"12345".to_vec()));
    assert_eq!(refused(b"+123456", &l), RespError::LineTooLong);
    // Zero allows nothing of its kind.
    let zero = Limits {
        max_bulk_len: 0,
        max_array_len: 0,
        max_depth: 0,
        max_elements: 0,
        max_line_len: 0,
    };
    assert_eq!(complete(b"$0\r\n\r\n", &zero), bulk(b""));
    assert_eq!(complete(b"+\r\n", &zero), Frame::Simple(Vec::new()));
    assert_eq!(complete(b"*-1\r\n", &zero), Frame::NullArray);
    assert_eq!(refused(b"*0\r\n", &zero), RespError::TooDeep);
    assert_eq!(refused(b"+a", &zero), RespError::LineTooLong);
    assert_eq!(refused(b"$1\r\n", &zero), RespError::BulkTooLong);
}

#[test]
fn depth_is_capped_whatever_the_limit_says() {
    let l = Limits {
        max_depth: usize::MAX,
        ..limits()
    };
    let deep = |levels: usize| {
        let mut input = b"*1\r\n".repeat(levels);
        input.extend_from_slice(b":1\r\n");
        input
    };
    assert!(matches!(decode(&deep(MAX_DEPTH), &l), Ok(Some(_))));
    assert_eq!(decode(&deep(MAX_DEPTH + 1), &l), Err(RespError::TooDeep));
    assert_eq!(decode(&deep(100_000), &l), Err(RespError::TooDeep));
}

#[test]
fn commands_encode_as_arrays_of_bulk_strings() {
    let mut out = Vec::new();
    encode_command(&mut out, &[b"PING"]);
    assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
    out.clear();
    encode_command(&mut out, &[b"PUBSUB", b"NUMSUB", b"socket.io-request#/#"]);
    assert_eq!(
        out,
        b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$20\r\nsocket.io-request#/#\r\n"
    );
    // Appends, and the arguments may hold anything.
    let payload: Vec<u8> = (0..=255).collect();
    let args: [&[u8]; 4] = [b"PUBLISH", b"ch\r\n", &payload, b""];
    let before = out.len();
    encode_command(&mut out, &args);
    let (frame, used) = decode(&out[before..], &limits()).unwrap().unwrap();
    assert_eq!(used, out.len() - before);
    assert_eq!(frame, Frame::Array(args.iter().map(|a| bulk(a)).collect()));
    out.clear();
    encode_command(&mut out, &[]);
    assert_eq!(complete(&out, &limits()), Frame::Array(Vec::new()));
}

#[test]
fn frames_encode_canonically_and_round_trip() {
    let frames = [
        Frame::Simple(b"OK".to_vec()),
        Frame::Error(b"WRONGTYPE x".to_vec()),
        Frame::Integer(i64::MIN),
        Frame::Integer(i64::MAX),
        Frame::Integer(-1),
        bulk(b"a\r\nb"),
        Frame::NullBulk,
        Frame::NullArray,
        Frame::Array(vec![
            Frame::Push(vec![bulk(b""), Frame::Integer(3)]),
            Frame::Array(Vec::new()),
            Frame::NullArray,
        ]),
    ];
    for frame in frames {
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(complete(&out, &limits()), frame);
    }
    // Leading zeros are read, and written without.
    let (frame, _) = decode(b"*02\r\n:007\r\n$03\r\nabc\r\n", &limits())
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    frame.encode(&mut out);
    assert_eq!(out, b"*2\r\n:7\r\n$3\r\nabc\r\n");
}

#[test]
fn pubsub_frames_are_recognised() {
    let parse = |input: &[u8]| decode(input, &limits()).unwrap().unwrap().0;
    let message = parse(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\n\x00\x01\x02\r\n");
    assert_eq!(
        PubSub::parse(&message),
        Some(PubSub::Message {
            channel: b"ch",
            payload: b"\x00\x01\x02"
        })
    );
    let pmessage = parse(b"*4\r\n$8\r\npmessage\r\n$3\r\nc.*\r\n$3\r\nc.1\r\n$1\r\nx\r\n");
    assert_eq!(
        PubSub::parse(&pmessage),
        Some(PubSub::PMessage {
            pattern: b"c.*",
            channel: b"c.1",
            payload: b"x"
        })
    );
    let smessage = parse(b"*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$0\r\n\r\n");
    assert_eq!(
        PubSub::parse(&smessage),
        Some(PubSub::SMessage {
            channel: b"s",
            payload: b""
        })
    );
    // The same as a RESP3 push.
    let push = parse(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\np\r\n");
    assert_eq!(
        PubSub::parse(&push),
        Some(PubSub::Message {
            channel: b"ch",
            payload: b"p"
        })
    );
    for (kind, expected) in [
        ("subscribe", SubscriptionKind::Subscribe),
        ("unsubscribe", SubscriptionKind::Unsubscribe),
        ("psubscribe", SubscriptionKind::PSubscribe),
        ("punsubscribe", SubscriptionKind::PUnsubscribe),
        ("ssubscribe", SubscriptionKind::SSubscribe),
        ("sunsubscribe", SubscriptionKind::SUnsubscribe),
    ] {
        let frame = Frame::Array(vec![bulk(kind.as_bytes()), bulk(b"ch"), Frame::Integer(2)]);
        assert_eq!(
            PubSub::parse(&frame),
            Some(PubSub::Subscription {
                kind: expected,
                channel: Some(b"ch"),
                count: 2
            })
        );
    }
    // UNSUBSCRIBE with no subscriptions left answers with a null channel.
    let none = parse(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    assert_eq!(
        PubSub::parse(&none),
        Some(PubSub::Subscription {
            kind: SubscriptionKind::Unsubscribe,
            channel: None,
            count: 0
        })
    );
    let pong = parse(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(PubSub::parse(&pong), Some(PubSub::Pong(b"")));

    // Anything else is not pub/sub.
    for other in [
        Frame::Simple(b"message".to_vec()),
        bulk(b"message"),
        Frame::Array(Vec::new()),
        Frame::Array(vec![bulk(b"message"), bulk(b"ch")]),
        Frame::Array(vec![bulk(b"message"), bulk(b"ch"), bulk(b"p"), bulk(b"q")]),
        Frame::Array(vec![bulk(b"message"), Frame::Integer(1), bulk(b"p")]),
        Frame::Array(vec![bulk(b"MESSAGE"), bulk(b"ch"), bulk(b"p")]),
        Frame::Array(vec![
            Frame::Simple(b"message".to_vec()),
            bulk(b"ch"),
            bulk(b"p"),
        ]),
        Frame::Array(vec![bulk(b"subscribe"), bulk(b"ch"), bulk(b"2")]),
        Frame::Array(vec![
            bulk(b"subscribe"),
            Frame::NullArray,
            Frame::Integer(2),
        ]),
        Frame::Array(vec![bulk(b"pmessage"), bulk(b"ch"), bulk(b"p")]),
        Frame::Array(vec![bulk(b"invalidate"), Frame::Array(Vec::new())]),
    ] {
        assert_eq!(PubSub::parse(&other), None, "{other:?}");
    }
}

#[test]
fn errors_display() {
    assert_eq!(
        RespError::UnknownType(b'_').to_string(),
        "unknown RESP type byte 0x5f"
    );
    assert_eq!(RespError::BadLength.to_string(), "invalid RESP length");
}
