//! Protocol-version enumeration the way testssl.sh does it: a hand-built
//! ClientHello offering exactly one version, and a parser that reads only the
//! server's first record. rustls cannot offer TLS 1.0/1.1 nor CBC or RSA
//! key-exchange suites for 1.2, so a refusal it sees proves little.
//!
//! The parser never panics: truncated or foreign bytes give a reason.

use std::fmt;

pub(crate) use crate::evidence::TlsVersion;

/// The wire value of a version.
pub(crate) fn wire(v: TlsVersion) -> u16 {
    match v {
        TlsVersion::Tls10 => 0x0301,
        TlsVersion::Tls11 => 0x0302,
        TlsVersion::Tls12 => 0x0303,
        TlsVersion::Tls13 => 0x0304,
    }
}

/// Name of a wire version for messages.
pub(crate) fn wire_name(v: u16) -> String {
    match v {
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1.0".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

/// TLS 1.3 suites.
const TLS13_SUITES: [u16; 3] = [0x1301, 0x1302, 0x1303];
/// A broad TLS 1.2 list: ECDHE/DHE/RSA key exchange, GCM, ChaCha, CBC, 3DES.
const TLS12_SUITES: [u16; 26] = [
    0xc02f, 0xc030, 0xc02b, 0xc02c, 0xcca8, 0xcca9, 0x009e, 0x009f, 0xc027, 0xc028, 0xc023, 0xc024,
    0xc013, 0xc014, 0xc009, 0xc00a, 0x0033, 0x0039, 0x009c, 0x009d, 0x003c, 0x003d, 0x002f, 0x0035,
    0x000a, 0x00ff,
];
/// Suites that exist in TLS 1.0/1.1 (no AEAD, no SHA-256 MACs).
const LEGACY_SUITES: [u16; 10] = [
    0xc013, 0xc014, 0xc009, 0xc00a, 0x0033, 0x0039, 0x002f, 0x0035, 0x000a, 0x00ff,
];

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    put16(out, kind);
    put16(out, body.len() as u16);
    out.extend_from_slice(body);
}

fn list16(items: &[u16]) -> Vec<u8> {
    let mut b = Vec::new();
    put16(&mut b, (items.len() * 2) as u16);
    for i in items {
        put16(&mut b, *i);
    }
    b
}

/// A complete ClientHello record offering exactly `version`.
///
/// `sni` is sent only for DNS names (IP addresses are not allowed in SNI).
/// `random`, `session_id` and `x25519` (the TLS 1.3 key share) are given so
/// the bytes are reproducible in tests; use random values on the wire.
pub(crate) fn client_hello(
    version: TlsVersion,
    sni: Option<&str>,
    random: [u8; 32],
    session_id: [u8; 32],
    x25519: [u8; 32],
) -> Vec<u8> {
    let legacy = wire(version).min(0x0303);
    let suites: Vec<u16> = match version {
        TlsVersion::Tls13 => TLS13_SUITES
            .iter()
            .chain(TLS12_SUITES.iter())
            .copied()
            .collect(),
        TlsVersion::Tls12 => TLS12_SUITES.to_vec(),
        TlsVersion::Tls10 | TlsVersion::Tls11 => LEGACY_SUITES.to_vec(),
    };
    let mut exts = Vec::new();
    if let Some(name) = sni.filter(|n| n.parse::<std::net::IpAddr>().is_err()) {
        let mut entry = vec![0u8];
        put16(&mut entry, name.len() as u16);
        entry.extend_from_slice(name.as_bytes());
        let mut body = Vec::new();
        put16(&mut body, entry.len() as u16);
        body.extend_from_slice(&entry);
        ext(&mut exts, 0x0000, &body);
    }
    ext(
        &mut exts,
        0x000a,
        &list16(&[0x001d, 0x0017, 0x0018, 0x0019, 0x0100]),
    ); // supported_groups
    ext(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    let sigs = [
        0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0807, 0x0201,
        0x0203,
    ];
    ext(&mut exts, 0x000d, &list16(&sigs)); // signature_algorithms
    ext(&mut exts, 0x0017, &[]); // extended_master_secret
    ext(&mut exts, 0xff01, &[0]); // renegotiation_info
    if version == TlsVersion::Tls13 {
        ext(&mut exts, 0x002b, &[2, 0x03, 0x04]); // supported_versions: 1.3 only
        ext(&mut exts, 0x002d, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
        let mut ks = Vec::new();
        put16(&mut ks, 36);
        put16(&mut ks, 0x001d);
        put16(&mut ks, 32);
        ks.extend_from_slice(&x25519);
        ext(&mut exts, 0x0033, &ks); // key_share
    }
    let mut body = Vec::new();
    put16(&mut body, legacy);
    body.extend_from_slice(&random);
    body.push(32);
    body.extend_from_slice(&session_id);
    body.extend_from_slice(&list16(&suites));
    body.extend_from_slice(&[1, 0]); // compression: null
    put16(&mut body, exts.len() as u16);
    body.extend_from_slice(&exts);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16];
    put16(&mut rec, 0x0301);
    put16(&mut rec, hs.len() as u16);
    rec.extend_from_slice(&hs);
    rec
}

/// What the server's first record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    /// A ServerHello: the version it selected (supported_versions for 1.3)
    /// and the cipher suite.
    Hello {
        /// Selected version (wire value).
        version: u16,
        /// Selected cipher suite.
        cipher: u16,
    },
    /// An alert record.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// Alert description code.
        description: u8,
    },
    /// Bytes that are not a TLS answer (e.g. a plaintext server).
    Garbage(String),
}

/// Result of feeding bytes to the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    NeedMore,
    /// The answer.
    Done(ServerAnswer),
}

/// Name of an alert description.
pub(crate) fn alert_name(d: u8) -> &'static str {
    match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown_alert",
    }
}

impl fmt::Display for ServerAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAnswer::Hello { version, cipher } => write!(
                f,
                "ServerHello {} cipher 0x{cipher:04x}",
                wire_name(*version)
            ),
            ServerAnswer::Alert { level, description } => write!(
                f,
                "{} alert {} ({description})",
                if *level == 2 { "fatal" } else { "warning" },
                alert_name(*description)
            ),
            ServerAnswer::Garbage(why) => write!(f, "not a TLS answer: {why}"),
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }
}

/// Parses the start of the server's answer. Reads only the first record.
pub fn parse_server_answer(bytes: &[u8]) -> Parse {
    if bytes.is_empty() {
        return Parse::NeedMore;
    }
    let kind = bytes[0];
    if kind != 0x15 && kind != 0x16 {
        let shown =
            String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).replace(['\r', '\n'], " ");
        return Parse::Done(ServerAnswer::Garbage(format!(
            "first byte 0x{kind:02x} is not a TLS record type (starts `{}`)",
            shown.trim()
        )));
    }
    if bytes.len() < 5 {
        return Parse::NeedMore;
    }
    let major = bytes[1];
    let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
    if major != 3 || len == 0 || len > 16384 + 2048 {
        return Parse::Done(ServerAnswer::Garbage(format!(
            "record header {:02x?} is not TLS",
            &bytes[..5]
        )));
    }
    if bytes.len() < 5 + len {
        return Parse::NeedMore;
    }
    let body = &bytes[5..5 + len];
    if kind == 0x15 {
        return match body {
            [level, description, ..] => Parse::Done(ServerAnswer::Alert {
                level: *level,
                description: *description,
            }),
            _ => Parse::Done(ServerAnswer::Garbage(
                "alert record shorter than 2 bytes".into(),
            )),
        };
    }
    Parse::Done(parse_server_hello(body).unwrap_or_else(ServerAnswer::Garbage))
}

fn parse_server_hello(body: &[u8]) -> Result<ServerAnswer, String> {
    let mut r = Reader { b: body, at: 0 };
    let t = r.u8().ok_or("empty handshake record")?;
    if t != 0x02 {
        return Err(format!(
            "first handshake message is type {t}, not ServerHello (2)"
        ));
    }
    let len_bytes = r.take(3).ok_or("handshake header truncated")?;
    let len = u32::from_be_bytes([0, len_bytes[0], len_bytes[1], len_bytes[2]]) as usize;
    let msg = r
        .take(len)
        .ok_or("ServerHello spans more than one record or is truncated")?;
    let mut m = Reader { b: msg, at: 0 };
    let legacy = m.u16().ok_or("ServerHello truncated (version)")?;
    m.take(32).ok_or("ServerHello truncated (random)")?;
    let sid = m.u8().ok_or("ServerHello truncated (session id)")? as usize;
    m.take(sid).ok_or("ServerHello truncated (session id)")?;
    let cipher = m.u16().ok_or("ServerHello truncated (cipher)")?;
    m.u8().ok_or("ServerHello truncated (compression)")?;
    let mut version = legacy;
    if let Some(ext_len) = m.u16() {
        let exts = m
            .take(ext_len as usize)
            .ok_or("ServerHello extensions truncated")?;
        let mut e = Reader { b: exts, at: 0 };
        while e.at < exts.len() {
            let kind = e.u16().ok_or("extension header truncated")?;
            let l = e.u16().ok_or("extension header truncated")? as usize;
            let data = e.take(l).ok_or("extension truncated")?;
            if kind == 0x002b {
                if data.len() != 2 {
                    return Err("supported_versions in ServerHello is not 2 bytes".into());
                }
                version = u16::from_be_bytes([data[0], data[1]]);
            }
        }
    }
    Ok(ServerAnswer::Hello { version, cipher })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(v: TlsVersion) -> Vec<u8> {
        client_hello(v, Some("redis.example"), [1; 32], [2; 32], [9; 32])
    }

    #[test]
    fn client_hello_is_well_formed_for_every_version() {
        for v in TlsVersion::ALL {
            let h = hello(v);
            assert_eq!(h[0], 0x16);
            let rec_len = u16::from_be_bytes([h[3], h[4]]) as usize;
            assert_eq!(h.len(), 5 + rec_len, "{v:?}");
            assert_eq!(h[5], 0x01, "ClientHello");
            let hs_len = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
            assert_eq!(rec_len, 4 + hs_len);
            let legacy = u16::from_be_bytes([h[9], h[10]]);
            assert_eq!(legacy, wire(v).min(0x0303));
            let has_sv = h.windows(5).any(|w| w == [0x00, 0x2b, 0x00, 0x03, 0x02]);
            assert_eq!(
                has_sv,
                v == TlsVersion::Tls13,
                "supported_versions only for 1.3"
            );
            assert!(
                h.windows(13).any(|w| w == b"redis.example"),
                "SNI for DNS names"
            );
        }
        let ip = client_hello(
            TlsVersion::Tls13,
            Some("127.0.1.1"),
            [1; 32],
            [2; 32],
            [9; 32],
        );
        assert!(
            !ip.windows(9).any(|w| w == b"127.0.1.1"),
            "no SNI for IP addresses"
        );
        // CBC and RSA key exchange are offered for 1.2 (AES128-SHA = 0x002f).
        assert!(hello(TlsVersion::Tls12)
            .windows(2)
            .any(|w| w == [0x00, 0x2f]));
    }

    /// A TLS 1.3 ServerHello as OpenSSL sends it (legacy 1.2 + supported_versions).
    fn server_hello_13() -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[2; 32]);
        body.extend_from_slice(&[0x13, 0x02, 0x00]);
        let exts = [
            0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x00,
        ];
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![0x02];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x03];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn reads_the_real_version_from_supported_versions() {
        let mut b = server_hello_13();
        b.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]); // more records follow
        assert_eq!(
            parse_server_answer(&b),
            Parse::Done(ServerAnswer::Hello {
                version: 0x0304,
                cipher: 0x1302
            })
        );
    }

    #[test]
    fn a_tls12_server_hello_without_extensions() {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0xc0, 0x2f, 0x00]);
        let mut hs = vec![0x02, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x03, 0, hs.len() as u8];
        rec.extend_from_slice(&hs);
        assert_eq!(
            parse_server_answer(&rec),
            Parse::Done(ServerAnswer::Hello {
                version: 0x0303,
                cipher: 0xc02f
            })
        );
    }

    #[test]
    fn alerts_are_named() {
        let a = parse_server_answer(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70]);
        assert_eq!(
            a,
            Parse::Done(ServerAnswer::Alert {
                level: 2,
                description: 70
            })
        );
        if let Parse::Done(x) = a {
            assert_eq!(x.to_string(), "fatal alert protocol_version (70)");
        }
    }

    #[test]
    fn truncated_input_asks_for_more_and_never_panics() {
        let full = server_hello_13();
        for cut in 0..full.len() {
            assert_eq!(
                parse_server_answer(&full[..cut]),
                Parse::NeedMore,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_and_malformed_records_give_reasons() {
        let Parse::Done(ServerAnswer::Garbage(why)) =
            parse_server_answer(b"-ERR unknown command\\r\\n")
        else {
            panic!()
        };
        assert!(why.contains("0x2d") && why.contains("-ERR"), "{why}");
        assert!(matches!(
            parse_server_answer(&[0x16, 0x07, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5]),
            Parse::Done(ServerAnswer::Garbage(_))
        ));
        assert!(matches!(
            parse_server_answer(&[0x16, 0x03, 0x03, 0x00, 0x01, 0x0b]),
            Parse::Done(ServerAnswer::Garbage(_))
        ));
        assert!(matches!(
            parse_server_answer(&[0x15, 0x03, 0x03, 0x00, 0x01, 0x02]),
            Parse::Done(ServerAnswer::Garbage(_))
        ));
        // A ServerHello whose declared length overruns the record.
        let mut b = server_hello_13();
        b[8] = 0xff;
        assert!(matches!(
            parse_server_answer(&b),
            Parse::Done(ServerAnswer::Garbage(_))
        ));
        // Fuzz-ish: every single-byte corruption parses to something.
        let base = server_hello_13();
        for i in 0..base.len() {
            for v in [0u8, 0xff, 0x7f] {
                let mut m = base.clone();
                m[i] = v;
                let _ = parse_server_answer(&m);
            }
        }
    }
}
