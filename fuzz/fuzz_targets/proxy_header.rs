//! Fuzz target: the PROXY protocol header. The engine only writes PROXY headers (it
//! never reads one), so this checks the round trip: for any pair of addresses (IPv4,
//! IPv6, IPv4-mapped IPv6), the v1 or v2 header `proxy_header` builds is decoded here
//! by the rules of the HAProxy specification and must give back the same addresses and
//! ports (v4-mapped ones as IPv4), or say UNKNOWN/AF_UNSPEC exactly when the two
//! families differ.
//! Input: flags (bit 0 v2, bits 1 and 2 IPv6 source and destination, bits 3 and 4 an
//! IPv4 address written as v4-mapped IPv6), then addresses and ports (zero-padded).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use monitor_core::engine::protocol::proxy::{PROXY_V2_SIGNATURE, proxy_header};
use monitor_spec::ProxyProtocol;

/// The longest v1 header the specification allows, CRLF included.
const V1_MAX: usize = 107;

/// Takes `N` bytes, zero-padded when the input runs out.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let n = data.len().min(N);
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fn address(data: &mut &[u8], v6: bool, mapped: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(take::<16>(data)))
    } else {
        let v4 = Ipv4Addr::from(take::<4>(data));
        if mapped {
            IpAddr::V6(v4.to_ipv6_mapped())
        } else {
            IpAddr::V4(v4)
        }
    }
}

/// The address a PROXY header must show: v4-mapped IPv6 as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// Decodes a v1 header: `Some((source, destination))`, or `None` for UNKNOWN.
fn decode_v1(header: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    assert!(header.len() <= V1_MAX, "a v1 header over {V1_MAX} bytes");
    let line = std::str::from_utf8(header).expect("a v1 header is ASCII");
    let line = line
        .strip_suffix("\r\n")
        .expect("a v1 header ends with CRLF");
    assert!(!line.contains(['\r', '\n']), "a v1 header holds one line");
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["PROXY", "UNKNOWN"] => None,
        ["PROXY", family, source, destination, sport, dport] => {
            let ip = |s: &str| s.parse::<IpAddr>().expect("a v1 address parses");
            let port = |s: &str| {
                assert!(
                    s == "0" || !s.starts_with('0'),
                    "a v1 port has no leading zero"
                );
                s.parse::<u16>().expect("a v1 port parses")
            };
            let (s, d) = (ip(source), ip(destination));
            let want_v4 = *family == "TCP4";
            assert!(want_v4 || *family == "TCP6", "unknown v1 family {family}");
            assert_eq!(
                s.is_ipv4(),
                want_v4,
                "the source is not of the family {family}"
            );
            assert_eq!(
                d.is_ipv4(),
                want_v4,
                "the destination is not of the family {family}"
            );
            Some((
                SocketAddr::new(s, port(sport)),
                SocketAddr::new(d, port(dport)),
            ))
        }
        _ => panic!("not a v1 header: {line:?}"),
    }
}

/// Decodes a v2 header: `Some((source, destination))`, or `None` for AF_UNSPEC.
fn decode_v2(header: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let rest = header
        .strip_prefix(&PROXY_V2_SIGNATURE)
        .expect("a v2 header opens with the signature");
    let [version_command, family, l0, l1, body @ ..] = rest else {
        panic!("a v2 header shorter than 16 bytes");
    };
    assert_eq!(*version_command, 0x21, "version 2, command PROXY");
    assert_eq!(
        usize::from(u16::from_be_bytes([*l0, *l1])),
        body.len(),
        "the v2 length"
    );
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    match family {
        0x00 => {
            assert!(body.is_empty(), "AF_UNSPEC carries no addresses");
            None
        }
        0x11 => {
            assert_eq!(body.len(), 12);
            let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            Some((
                SocketAddr::new(ip(&body[0..4]), port(&body[8..10])),
                SocketAddr::new(ip(&body[4..8]), port(&body[10..12])),
            ))
        }
        0x21 => {
            assert_eq!(body.len(), 36);
            let ip =
                |b: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")));
            Some((
                SocketAddr::new(ip(&body[0..16]), port(&body[32..34])),
                SocketAddr::new(ip(&body[16..32]), port(&body[34..36])),
            ))
        }
        other => panic!("unexpected v2 family byte {other:#04x}"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let [flags] = take::<1>(&mut data);
    let bit = |n: u8| flags & (1 << n) != 0;
    let source_ip = address(&mut data, bit(1), bit(3));
    let destination_ip = address(&mut data, bit(2), bit(4));
    let ports = take::<4>(&mut data);
    let source = SocketAddr::new(source_ip, u16::from_be_bytes([ports[0], ports[1]]));
    let destination = SocketAddr::new(destination_ip, u16::from_be_bytes([ports[2], ports[3]]));
    let version = if bit(0) {
        ProxyProtocol::V2
    } else {
        ProxyProtocol::V1
    };
    let header = proxy_header(version, source, destination);
    let decoded = match version {
        ProxyProtocol::V1 => decode_v1(&header),
        ProxyProtocol::V2 => decode_v2(&header),
    };
    let (source, destination) = (canonical(source), canonical(destination));
    let same_family = source.is_ipv4() == destination.is_ipv4();
    match decoded {
        Some(got) => {
            assert!(same_family, "addresses of two families in one header");
            assert_eq!(
                got,
                (source, destination),
                "the header names other addresses"
            );
        }
        None => assert!(!same_family, "UNKNOWN for two addresses of one family"),
    }
});
