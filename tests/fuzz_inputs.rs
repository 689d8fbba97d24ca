//! Hostile input never panics: structured mutation fuzzing, deterministic
//! by seed, of everything epic-audit parses from outside.
//!
//! - evidence.json (what `evaluate` reads): the lab fixture with 1-6
//!   mutations (numbers to extremes, strings to empty/long/non-ASCII,
//!   lists cleared/duplicated/shortened, keys removed, types swapped), then
//!   judged by every check and rendered in every format;
//! - RESP replies (what a node sends): valid replies with bytes flipped,
//!   inserted, cut, plus random bytes, read by the reply decoder under a
//!   small size cap;
//! - TLS server answers (the ClientHello probe's parser) and certificates
//!   (DER), mutated the same way;
//! - CLUSTER NODES text.
//!
//! The iteration count is `EPIC_AUDIT_FUZZ_ITERS` (default 300 per target,
//! a few seconds); `scripts/fuzz.sh` runs many more. Every input that ever
//! broke something is kept below as a regression case.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use epic_audit::evidence::EvidenceSet;
use epic_audit::policy::Policy;
use serde_json::Value;

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn iterations() -> u64 {
    std::env::var("EPIC_AUDIT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Paths (JSON pointers) of every node in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn mutate_json(v: &mut Value, rng: &mut Rng) {
    let mut ps = Vec::new();
    pointers(v, String::new(), &mut ps);
    let p = &ps[rng.below(ps.len())];
    let Some(node) = v.pointer_mut(p) else { return };
    let numbers = [
        Value::from(0),
        Value::from(-1),
        Value::from(1),
        Value::from(16383),
        Value::from(16384),
        Value::from(65535),
        Value::from(65536),
        Value::from(i64::MAX),
        Value::from(i64::MIN),
        Value::from(u64::MAX),
        Value::from(1e300),
    ];
    let strings = [
        String::new(),
        "x".into(),
        "é…ß".into(),
        "9".repeat(50),
        "a".repeat(10_000),
        ":".into(),
        "127.0.1.1:6379".into(),
        "0-16383".into(),
        "-----BEGIN".into(),
    ];
    match (rng.below(4), &mut *node) {
        (0, Value::Number(_)) => *node = numbers[rng.below(numbers.len())].clone(),
        (0, Value::String(_)) => *node = Value::from(strings[rng.below(strings.len())].clone()),
        (0, Value::Array(a)) if !a.is_empty() => match rng.below(3) {
            0 => a.clear(),
            1 => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            _ => {
                let i = rng.below(a.len());
                let x = a[i].clone();
                a.push(x);
            }
        },
        (0, Value::Object(m)) if !m.is_empty() => {
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            m.remove(&k);
        }
        (1, _) => {
            *node = [
                Value::Null,
                Value::Bool(true),
                Value::Array(vec![]),
                Value::Object(Default::default()),
                Value::from(0),
                Value::from(""),
            ][rng.below(6)]
            .clone()
        }
        (2, Value::Number(_)) => *node = numbers[rng.below(numbers.len())].clone(),
        (2, Value::String(s)) => s.push_str(&strings[rng.below(strings.len())]),
        _ => {}
    }
}

/// Judges `ev` with every check and renders every format.
fn judge_and_render(ev: &EvidenceSet, policy: &Policy) {
    let sel = policy.select(&[], &[]).unwrap();
    let r = epic_audit::engine::judge(ev, policy, &sel, &[], &[]);
    let _ = epic_audit::report::junit::render(&r);
    let _ = epic_audit::report::markdown::render(&r);
    let _ = epic_audit::report::html::render(&r, ev);
    let _ = epic_audit::report::terminal::render(&r, false);
    let _ = epic_audit::report::prom::render(&r);
    let _ = epic_audit::report::oscal::render(&r, ev, &|id| policy.probes_of(id), "evidence.json");
    let _ = r.to_json();
}

#[test]
fn mutated_evidence_is_judged_or_refused_never_a_panic() {
    let policy = Policy::builtin().unwrap();
    let good = serde_json::to_value(common::fixture_evidence()).unwrap();
    let (mut judged, mut refused, mut panics) = (0u64, 0u64, Vec::new());
    for seed in 0..iterations() {
        let mut rng = Rng::new(seed);
        let mut v = good.clone();
        for _ in 0..=rng.below(6) {
            mutate_json(&mut v, &mut rng);
        }
        let Ok(ev) = serde_json::from_value::<EvidenceSet>(v) else {
            refused += 1;
            continue;
        };
        judged += 1;
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| judge_and_render(&ev, &policy))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panics.push(format!("seed {seed}: {msg}"));
        }
    }
    eprintln!("evidence: {judged} judged, {refused} refused by the parser");
    assert!(panics.is_empty(), "{}", panics.join("\n"));
    assert!(judged > 0);
}

/// Valid replies of the kinds the probes read.
const RESP_SEEDS: &[&[u8]] = &[
    b"+OK\r\n",
    b"-NOPERM this user has no permissions\r\n",
    b":42\r\n",
    b"$5\r\nhello\r\n",
    b"$-1\r\n",
    b"*2\r\n$1\r\n0\r\n*1\r\n$9\r\nsession:1\r\n",
    b"*3\r\n:0\r\n:5460\r\n*2\r\n$9\r\n127.0.1.1\r\n:6379\r\n",
    b"%2\r\n+slots\r\n*2\r\n:0\r\n:5460\r\n+nodes\r\n*0\r\n",
    b"~2\r\n+a\r\n+b\r\n",
    b",3.14\r\n#t\r\n_\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"(3492890328409238509324850943850943825024385\r\n",
    b"*-1\r\n",
];

fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng) {
    let specials = b"\r\n*$:-+%~=,#_(>|!0123456789";
    match rng.below(5) {
        0 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(b.len() + 1);
            b.insert(i, specials[rng.below(specials.len())]);
        }
        2 if !b.is_empty() => {
            let i = rng.below(b.len());
            b.truncate(i);
        }
        3 if !b.is_empty() => {
            let i = rng.below(b.len());
            b.remove(i);
        }
        _ => {
            let n = rng.below(16);
            b.extend((0..n).map(|_| rng.next() as u8));
        }
    }
}

#[test]
fn mutated_resp_is_read_or_refused_never_a_panic_nor_unbounded() {
    use epic_audit::resp::{ReadError, ReplyDecoder};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut frames, mut errors) = (0u64, 0u64);
    for seed in 0..iterations() * 4 {
        let mut rng = Rng::new(seed);
        let mut input: Vec<u8> = Vec::new();
        for _ in 0..=rng.below(3) {
            input.extend_from_slice(RESP_SEEDS[rng.below(RESP_SEEDS.len())]);
        }
        for _ in 0..=rng.below(4) {
            mutate_bytes(&mut input, &mut rng);
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let mut rd: &[u8] = &input;
                let mut d = ReplyDecoder::default();
                let mut n = 0u64;
                // A finite input yields finitely many replies, then an error.
                for _ in 0..64 {
                    match d.next_capped(&mut rd, 4096).await {
                        Ok(_) => n += 1,
                        Err(e) => {
                            assert!(
                                !matches!(e, ReadError::TooLarge(_)) || input.len() > 4096,
                                "TooLarge on {} bytes",
                                input.len()
                            );
                            return (n, true);
                        }
                    }
                }
                (n, false)
            })
        }));
        match r {
            Ok((n, ended)) => {
                frames += n;
                errors += u64::from(ended);
            }
            Err(_) => panic!("seed {seed}: the reply decoder panicked on {input:?}"),
        }
    }
    eprintln!("resp: {frames} replies decoded, {errors} inputs ended in an error");
}

#[test]
fn mutated_tls_answers_certificates_and_node_lists_never_panic() {
    use epic_audit::probes::cluster::parse_cluster_nodes;
    use epic_audit::probes::tls::{cert::cert_info, hello::parse_server_answer};
    use rustls_pki_types::pem::PemObject;
    let cert_pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pki/node1.crt"
    ))
    .unwrap();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    // A TLS 1.3 ServerHello record, an alert, and a plaintext reply.
    let hello: Vec<u8> = {
        let mut body = vec![0x03, 0x03];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0x13, 0x01, 0x00]);
        body.extend([0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
        let mut hs = vec![0x02, 0x00, 0x00, body.len() as u8];
        hs.extend(&body);
        let mut rec = vec![0x16, 0x03, 0x03, 0x00, hs.len() as u8];
        rec.extend(&hs);
        rec
    };
    let answers: [&[u8]; 3] = [
        &hello,
        &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46],
        b"-ERR wrong protocol\r\n",
    ];
    let nodes = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.1.1:6379@16379 myself,master - 0 0 1 connected 0-5460\n\
                 e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.1.4:6379@16379 slave 07c37dfeb235213a872192d90877d0cd55635b91 0 1 1 connected\n";
    for seed in 0..iterations() * 4 {
        let mut rng = Rng::new(seed);
        let mut a = answers[rng.below(answers.len())].to_vec();
        let mut c = der.clone();
        let mut n = nodes.as_bytes().to_vec();
        for _ in 0..=rng.below(4) {
            mutate_bytes(&mut a, &mut rng);
            mutate_bytes(&mut c, &mut rng);
            mutate_bytes(&mut n, &mut rng);
        }
        let text = String::from_utf8_lossy(&n).to_string();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _ = parse_server_answer(&a);
            let _ = cert_info(&c);
            let _ = parse_cluster_nodes(&text);
        }));
        assert!(
            r.is_ok(),
            "seed {seed}: a parser panicked (answer {a:?}, node list {text:?})"
        );
    }
}
