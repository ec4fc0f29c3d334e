//! Decoder tests: exact cases from Redis's behaviour, round trips through arbitrary
//! segmentations, and arbitrary bytes that must never panic.

use super::*;
use proptest::prelude::*;

const BIG: usize = 1 << 20;

fn decoder() -> Decoder {
    Decoder::new(BIG, 1024)
}

/// Decodes everything in `input`, fed in one piece.
fn all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
    let mut d = decoder();
    let mut buf = BytesMut::from(input);
    let mut args = Vec::new();
    let mut out = Vec::new();
    while d.decode(&mut buf, &mut args)? {
        out.push(args.iter().map(|a| a.to_vec()).collect());
    }
    Ok(out)
}

fn v(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn multibulk_and_inline() {
    assert_eq!(
        all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap(),
        vec![v(&["GET", "k"])]
    );
    assert_eq!(all(b"PING\r\n").unwrap(), vec![v(&["PING"])]);
    assert_eq!(
        all(b"set a 'b c'\n").unwrap(),
        vec![v(&["set", "a", "b c"])]
    );
    assert_eq!(
        all(b"SET k \"a\\x41\\n\"\r\n").unwrap(),
        vec![v(&["SET", "k", "aA\n"])]
    );
    // Empty commands are skipped.
    assert_eq!(
        all(b"*0\r\n*-1\r\n\r\n  \r\nPING\r\n").unwrap(),
        vec![v(&["PING"])]
    );
    // Binary-safe bulk with CRLF inside.
    assert_eq!(
        all(b"*1\r\n$4\r\na\r\nb\r\n").unwrap(),
        vec![vec![b"a\r\nb".to_vec()]]
    );
}

#[test]
fn incomplete_is_not_an_error() {
    let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    for cut in 0..full.len() {
        let mut d = decoder();
        let mut buf = BytesMut::from(&full[..cut]);
        let mut args = Vec::new();
        assert_eq!(d.decode(&mut buf, &mut args), Ok(false), "cut at {cut}");
        buf.extend_from_slice(&full[cut..]);
        assert_eq!(d.decode(&mut buf, &mut args), Ok(true), "cut at {cut}");
        assert_eq!(args.len(), 3);
        assert!(buf.is_empty());
    }
}

#[test]
fn redis_errors() {
    use ProtocolError::*;
    let e = |b: &[u8]| all(b).unwrap_err();
    assert_eq!(e(b"*x\r\n"), InvalidMultibulkLength);
    assert_eq!(e(b"*2000\r\n"), InvalidMultibulkLength);
    assert_eq!(e(b"*01\r\n"), InvalidMultibulkLength);
    assert_eq!(e(b"*1\r\n$-1\r\n"), InvalidBulkLength);
    assert_eq!(e(b"*1\r\n$99999999999\r\n"), InvalidBulkLength);
    assert_eq!(e(b"*1\r\n$1x\r\n"), InvalidBulkLength);
    assert_eq!(e(b"*1\r\n:1\r\n"), ExpectedDollar(b':'));
    assert_eq!(e(b"*1\r\n*1\r\n"), ExpectedDollar(b'*'));
    assert_eq!(e(b"*1\r\n$1\r\nab\r\n"), MissingCrlf);
    assert_eq!(e(b"GET \"k\n"), UnbalancedQuotes);
    assert_eq!(e(b"GET \"k\"x\n"), UnbalancedQuotes);
    assert_eq!(e(b"GET 'k\n"), UnbalancedQuotes);
    assert_eq!(e(&vec![b'a'; MAX_LINE + 1]), TooBigInline);
    let mut long = b"*".to_vec();
    long.extend(std::iter::repeat_n(b'1', MAX_LINE + 1));
    assert_eq!(e(&long), TooBigMultibulkCount);
    let mut long = b"*1\r\n$".to_vec();
    long.extend(std::iter::repeat_n(b'1', MAX_LINE + 1));
    assert_eq!(e(&long), TooBigBulkCount);
    assert_eq!(
        ExpectedDollar(0xff).to_string(),
        "expected '$', got '\\xff'"
    );
}

#[test]
fn huge_lengths_are_refused_before_waiting() {
    // A bulk length above the limit is an error at once, not an endless "need more".
    let mut d = Decoder::new(100, 10);
    let mut buf = BytesMut::from(&b"*1\r\n$101\r\n"[..]);
    assert_eq!(
        d.decode(&mut buf, &mut Vec::new()),
        Err(ProtocolError::InvalidBulkLength)
    );
    let mut buf = BytesMut::from(&b"*11\r\n"[..]);
    assert_eq!(
        Decoder::new(100, 10).decode(&mut buf, &mut Vec::new()),
        Err(ProtocolError::InvalidMultibulkLength)
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let nested = b"*1\r\n".repeat(100_000);
    assert_eq!(all(&nested), Err(ProtocolError::ExpectedDollar(b'*')));
}

#[test]
fn args_do_not_share_the_read_buffer() {
    let mut d = decoder();
    let mut buf = BytesMut::with_capacity(4096);
    buf.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    let mut args = Vec::new();
    assert!(d.decode(&mut buf, &mut args).unwrap());
    // The buffer is still uniquely owned: reserving reuses it in place.
    let cap = buf.capacity();
    buf.reserve(cap);
    assert!(buf.capacity() >= cap);
    drop(args);
}

/// A large command arriving in small segments is scanned once per segment, not from scratch.
#[test]
fn segmented_large_command() {
    let args: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("k{i:08}").into_bytes())
        .collect();
    let wire = multibulk(&args);
    let mut d = Decoder::new(BIG, 100_000);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    let mut done = false;
    for chunk in wire.chunks(1460) {
        buf.extend_from_slice(chunk);
        done = d.decode(&mut buf, &mut out).unwrap();
    }
    assert!(done);
    assert_eq!(out.len(), 20_000);
    // Not a timing assertion on the machine's speed: just far from quadratic.
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

/// Encodes an argument for an inline command, quoting and escaping as needed.
fn inline_quote(a: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in a {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

proptest! {
    /// Any sequence of commands, split anywhere, decodes to itself.
    #[test]
    fn round_trip(
        cmds in proptest::collection::vec(proptest::collection::vec(arg(), 1..6), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let wire: Vec<u8> = cmds.iter().flat_map(|c| multibulk(c)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut d = decoder();
        let mut buf = BytesMut::new();
        let mut args = Vec::new();
        let mut got = Vec::new();
        let mut prev = 0;
        for p in points {
            buf.extend_from_slice(&wire[prev..p]);
            prev = p;
            while d.decode(&mut buf, &mut args).unwrap() {
                got.push(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
            }
        }
        prop_assert_eq!(got, cmds);
        prop_assert!(buf.is_empty());
    }

    /// Inline commands with quoted arbitrary bytes decode to those bytes.
    #[test]
    fn inline_round_trip(args in proptest::collection::vec(arg(), 1..6)) {
        let line: Vec<String> = args.iter().map(|a| inline_quote(a)).collect();
        let wire = format!("{}\r\n", line.join(" "));
        prop_assert_eq!(all(wire.as_bytes()).unwrap(), vec![args]);
    }

    /// Arbitrary bytes, split anywhere, never panic; the decoder either waits or decides.
    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut d = Decoder::new(64, 8);
        let mut buf = BytesMut::new();
        let mut args = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.push(bytes.len());
        points.sort_unstable();
        let mut prev = 0;
        'feed: for p in points {
            buf.extend_from_slice(&bytes[prev..p]);
            prev = p;
            loop {
                match d.decode(&mut buf, &mut args) {
                    Ok(true) => prop_assert!(!args.is_empty() && args.len() <= 8),
                    Ok(false) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }

    /// Garbage that looks like RESP (valid type bytes, numbers, CRLFs) never panics either.
    #[test]
    fn resp_shaped_garbage_never_panics(
        parts in proptest::collection::vec(prop_oneof![
            Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()), Just(b"-".to_vec()), Just(b"\"".to_vec()),
            Just(b"'".to_vec()), Just(b"\\x".to_vec()),
            (0u32..100).prop_map(|n| n.to_string().into_bytes()),
            arg(),
        ], 0..40),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let mut d = Decoder::new(64, 8);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut args = Vec::new();
        while let Ok(true) = d.decode(&mut buf, &mut args) {}
    }
}
