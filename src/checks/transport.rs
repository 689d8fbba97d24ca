//! Transport rules: protocol versions, certificate key, signature, validity,
//! chain, SAN, EKU, identity across ports, plaintext listeners, inter-node
//! encryption and client certificates.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, per_subject, NoParams, Rule, SubjectFinding};
use crate::evidence::ProbeId;
use crate::evidence::{
    CertInfo, EvidenceSet, PortKind, TlsEndpointView, TlsVersion, VersionOutcome,
};

reasons! {
    /// Why a TLS endpoint or node got its outcome in the transport checks (TLS).
    Transport => Why {
        /// Only the allowed TLS versions are accepted, and the full handshake completes.
        OnlyAllowedVersions = "only-allowed-versions",
        /// A TLS version the policy forbids is accepted.
        ForbiddenVersionAccepted = "forbidden-version-accepted",
        /// Whether a forbidden version is refused could not be told.
        VersionUndetermined = "version-undetermined",
        /// No allowed TLS version is accepted.
        NoAllowedVersion = "no-allowed-version",
        /// The full TLS 1.3 handshake with the client certificate did not complete.
        Tls13HandshakeFailed = "tls13-handshake-failed",
        /// No certificate could be captured.
        NoCertificate = "no-certificate",
        /// The certificate's key type and size meet the policy.
        KeyStrongEnough = "key-strong-enough",
        /// A key type the policy does not allow.
        KeyTypeNotAllowed = "key-type-not-allowed",
        /// A key shorter than the policy's minimum.
        KeyTooShort = "key-too-short",
        /// Every signature in the chain is collision-resistant.
        SignaturesStrong = "signatures-strong",
        /// A signature algorithm the policy rejects (SHA-1, MD5).
        WeakSignature = "weak-signature",
        /// Valid, and not expiring within the warning window.
        CertificateValid = "certificate-valid",
        /// The certificate has expired.
        CertificateExpired = "certificate-expired",
        /// The certificate is not valid yet.
        CertificateNotYetValid = "certificate-not-yet-valid",
        /// Expires within the failing window.
        ExpiresSoon = "expires-soon",
        /// Expires within the warning window.
        ExpiresWithinWarning = "expires-within-warning",
        /// The chain verifies against the configured CA.
        ChainsToCa = "chains-to-ca",
        /// The chain does not verify against the configured CA.
        ChainUntrusted = "chain-untrusted",
        /// A SAN names the endpoint the cluster hands clients.
        SanCoversEndpoint = "san-covers-endpoint",
        /// No SAN names the endpoint the cluster hands clients.
        SanMissing = "san-missing",
        /// A bus port: peers verify the chain, not the name.
        BusPortNoSanNeeded = "bus-port-no-san-needed",
        /// Extended key usage serverAuth and clientAuth.
        KeyUsageBoth = "key-usage-both",
        /// serverAuth or clientAuth missing.
        KeyUsageMissing = "key-usage-missing",
        /// One certificate on the client and bus ports.
        SameIdentityBothPorts = "same-identity-both-ports",
        /// Different certificates on the client and bus ports.
        IdentityDiffers = "identity-differs",
        /// One of the two ports gave no certificate.
        CertificateMissingOnPort = "certificate-missing-on-port",
        /// port 0 and no plaintext Redis answering.
        TlsOnly = "tls-only",
        /// A plaintext port is configured.
        PlaintextPortConfigured = "plaintext-port-configured",
        /// Plaintext Redis answered on a probed port.
        PlaintextAnswered = "plaintext-answered",
        /// tls-cluster and tls-replication yes.
        InternodeEncrypted = "internode-encrypted",
        /// tls-cluster or tls-replication off.
        InternodePlaintext = "internode-plaintext",
        /// Only clients with a certificate from the CA get in.
        ClientCertsRequired = "client-certs-required",
        /// The policy does not require client certificates.
        ClientCertsNotRequired = "client-certs-not-required",
        /// tls-auth-clients is not yes.
        ClientAuthOff = "client-auth-off",
        /// A handshake without a client certificate was accepted.
        CertlessHandshakeAccepted = "certless-handshake-accepted",
        /// The live handshake without a client certificate was not observed.
        CertlessHandshakeUnobserved = "certless-handshake-unobserved",
    }
}

const ENDPOINT_METHOD: &str = "On every node's client TLS port and announced cluster-bus port: one \
hand-built ClientHello per protocol version (TLS 1.0, 1.1, 1.2, 1.3; broad cipher list including \
CBC and RSA key exchange; only the server's first record is read: ServerHello = accepted, with the \
real version from supported_versions; alert or EOF = refused), then a full TLS 1.3 handshake (rustls) \
presenting the client certificate and one round trip, and one without a client certificate. The \
served chain is captured by a verifier built from the configured CA only, which records why \
validation fails instead of failing. Nothing is sent but PING.";

const CONFIG_METHOD: &str = "On every node: CONFIG GET port tls-port tls-protocols \
tls-ciphersuites tls-ciphers tls-cluster tls-replication tls-auth-clients, over TLS as the audit \
user, sent only after the node's certificate chains to the configured CA for its name; then a TCP \
connect and an inline PING on the plaintext port if one is configured, on every plaintext port the \
cluster advertises for the node (CLUSTER SHARDS `port`), and on the policy's extra ports.";

/// The transport rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "transport.protocol_versions",
            &[ProbeId::TlsEndpoint, ProbeId::TlsConfig],
            ENDPOINT_METHOD,
            protocol_versions,
        ),
        Rule::new(
            "transport.cert_key",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            cert_key,
        ),
        Rule::new(
            "transport.cert_signature",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            cert_signature,
        ),
        Rule::new(
            "transport.cert_validity",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            cert_validity,
        ),
        Rule::new(
            "transport.cert_chain",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            cert_chain,
        ),
        Rule::new(
            "transport.cert_san",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            cert_san,
        ),
        Rule::new(
            "transport.cert_eku",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            cert_eku,
        ),
        Rule::new(
            "transport.same_identity",
            &[ProbeId::TlsEndpoint],
            ENDPOINT_METHOD,
            same_identity,
        ),
        Rule::new(
            "transport.no_plaintext",
            &[ProbeId::TlsConfig],
            CONFIG_METHOD,
            no_plaintext,
        ),
        Rule::new(
            "transport.internode_tls",
            &[ProbeId::TlsConfig],
            CONFIG_METHOD,
            internode_tls,
        ),
        Rule::new(
            "transport.client_certs",
            &[ProbeId::TlsConfig, ProbeId::TlsEndpoint],
            CONFIG_METHOD,
            client_certs,
        ),
    ]
}

/// The leaf certificate, or an `error` finding when none was received.
fn with_leaf(
    subject: &str,
    v: &TlsEndpointView,
    expected: &str,
    f: impl FnOnce(&CertInfo) -> SubjectFinding,
) -> SubjectFinding {
    match v.chain.first() {
        Some(c) => f(c),
        None => SubjectFinding::error(subject, Why::NoCertificate)
            .observed("no certificate received")
            .expected(expected)
            .message(format!(
                "no certificate could be captured: {}",
                v.handshake.detail
            )),
    }
}

/// Parameters of `transport.protocol_versions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Versions {
    /// Versions that may be accepted, e.g. `["TLSv1.3"]`.
    pub allowed: Vec<TlsVersion>,
}

fn protocol_versions(ev: &EvidenceSet, p: &Versions) -> Vec<SubjectFinding> {
    let names = |sep: &str| {
        p.allowed
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(sep)
    };
    let expected = format!(
        "only {} accepted, and a full TLS 1.3 handshake with the client certificate completes",
        names(", ")
    );
    let configured: BTreeMap<String, String> = ev
        .tls_configs()
        .into_iter()
        .filter_map(|(s, r)| {
            r.ok().and_then(|c| {
                c.config
                    .get("tls-protocols")
                    .map(|v| (s.to_string(), v.clone()))
            })
        })
        .collect();
    per_subject(ev.tls_endpoints(), &expected, |subject, v| {
        // Every offered version lands in exactly one list; a new outcome
        // would not compile until it is judged here.
        let (mut accepted, mut forbidden, mut undetermined) = (Vec::new(), Vec::new(), Vec::new());
        for r in &v.versions {
            let allowed = p.allowed.contains(&r.version);
            match r.outcome {
                VersionOutcome::Accepted => {
                    accepted.push(r.version.name());
                    if !allowed {
                        forbidden.push(format!("{} ({})", r.version, r.detail));
                    }
                }
                VersionOutcome::Undetermined if !allowed => {
                    undetermined.push(format!("{}: {}", r.version, r.detail));
                }
                VersionOutcome::Undetermined | VersionOutcome::Refused => {}
            }
        }
        let mut observed = format!(
            "accepted: {}",
            if accepted.is_empty() {
                "none".to_string()
            } else {
                accepted.join(", ")
            }
        );
        if let Some(c) = configured.get(&v.node) {
            observed.push_str(&format!(" (tls-protocols \"{c}\")"));
        }
        if !forbidden.is_empty() {
            return SubjectFinding::fail(subject, Why::ForbiddenVersionAccepted).observed(observed).expected(expected.clone()).message(format!(
                    "{} accepts {}; set `tls-protocols \"{}\"` in redis.conf (and CONFIG SET it) on every node",
                    v.address,
                    forbidden.join(", "),
                    names(" ")
                ));
        }
        if !undetermined.is_empty() {
            return SubjectFinding::error(subject, Why::VersionUndetermined)
                .observed(observed)
                .expected(expected.clone())
                .message(format!(
                    "could not tell whether {} refuses {}",
                    v.address,
                    undetermined.join("; ")
                ));
        }
        if accepted.is_empty() {
            return SubjectFinding::fail(subject, Why::NoAllowedVersion)
                .observed(observed)
                .expected(expected.clone())
                .message(format!("{} accepts none of {}", v.address, names(", ")));
        }
        if p.allowed.contains(&TlsVersion::Tls13) && !v.handshake.completed {
            return SubjectFinding::fail(subject, Why::Tls13HandshakeFailed)
                .observed(observed)
                .expected(expected.clone())
                .message(format!(
                    "the full TLS 1.3 handshake with the client certificate did not complete: {}",
                    v.handshake.detail
                ));
        }
        SubjectFinding::pass(subject, Why::OnlyAllowedVersions)
            .observed(format!(
                "{observed}; handshake {} {}",
                v.handshake.protocol.as_deref().unwrap_or("?"),
                v.handshake.cipher_suite.as_deref().unwrap_or("?")
            ))
            .expected(expected.clone())
            .message(format!(
                "only the allowed versions are accepted; {}",
                v.handshake.detail
            ))
    })
}

/// Parameters of `transport.cert_key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyParams {
    /// Allowed key types (`RSA`, `EC`).
    pub key_types: Vec<String>,
    /// Minimum RSA modulus size in bits.
    pub min_rsa_bits: u32,
    /// Minimum EC key size in bits.
    #[serde(default = "default_ec")]
    pub min_ec_bits: u32,
}

fn default_ec() -> u32 {
    256
}

fn cert_key(ev: &EvidenceSet, p: &KeyParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "{} key, RSA >= {} bits",
        p.key_types.join("/"),
        p.min_rsa_bits
    );
    per_subject(ev.tls_endpoints(), &expected, |subject, v| {
        with_leaf(subject, v, &expected, |c| {
            let observed = format!("{} {} bits ({})", c.key_type, c.key_bits, c.subject);
            let min = if c.key_type == "RSA" {
                p.min_rsa_bits
            } else {
                p.min_ec_bits
            };
            if !p.key_types.contains(&c.key_type) {
                SubjectFinding::fail(subject, Why::KeyTypeNotAllowed)
                    .observed(observed)
                    .expected(expected.clone())
                    .message(format!(
                        "key type {} is not allowed; reissue the certificate with an RSA-{} key",
                        c.key_type, p.min_rsa_bits
                    ))
            } else if c.key_bits < min {
                SubjectFinding::fail(subject, Why::KeyTooShort).observed(observed).expected(expected.clone()).message(format!("{}-bit key is below the policy's {min}; reissue with `openssl genrsa 4096` and swap it in (tls-cert-file/tls-key-file)", c.key_bits))
            } else {
                SubjectFinding::pass(subject, Why::KeyStrongEnough)
                    .observed(observed)
                    .expected(expected.clone())
                    .message("key strong enough")
            }
        })
    })
}

/// Parameters of `transport.cert_signature`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SigParams {
    /// Substrings (lower-case) of forbidden signature algorithms.
    pub forbidden: Vec<String>,
}

fn cert_signature(ev: &EvidenceSet, p: &SigParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "no certificate in the chain signed with {}",
        p.forbidden.join("/")
    );
    per_subject(ev.tls_endpoints(), &expected, |subject, v| {
        with_leaf(subject, v, &expected, |_| {
            let bad: Vec<String> = v
                .chain
                .iter()
                .filter(|c| {
                    p.forbidden
                        .iter()
                        .any(|f| c.signature_algorithm.to_ascii_lowercase().contains(f))
                })
                .map(|c| format!("{} ({})", c.subject, c.signature_algorithm))
                .collect();
            let algs: Vec<&str> = v
                .chain
                .iter()
                .map(|c| c.signature_algorithm.as_str())
                .collect();
            if bad.is_empty() {
                SubjectFinding::pass(subject, Why::SignaturesStrong)
                    .observed(algs.join(", "))
                    .expected(expected.clone())
                    .message("signature algorithms are collision-resistant")
            } else {
                SubjectFinding::fail(subject, Why::WeakSignature)
                    .observed(algs.join(", "))
                    .expected(expected.clone())
                    .message(format!(
                        "weak signature: {}; reissue signed with SHA-256 or better",
                        bad.join("; ")
                    ))
            }
        })
    })
}

/// Parameters of `transport.cert_validity`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidityParams {
    /// Fail when the certificate expires within this many days.
    pub fail_within_days: i64,
    /// Warn when it expires within this many days.
    pub warn_within_days: i64,
}

fn cert_validity(ev: &EvidenceSet, p: &ValidityParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "valid now and for more than {} days (warning under {})",
        p.fail_within_days, p.warn_within_days
    );
    // Judged at the time of observation, so a saved evidence file gives the
    // same verdict when evaluated later.
    let now = ev.started_at;
    per_subject(ev.tls_endpoints(), &expected, |subject, v| {
        with_leaf(subject, v, &expected, |c| {
            let days = (c.not_after - now).num_days();
            let observed = format!(
                "valid {} to {} ({days} days left at {})",
                c.not_before.format("%Y-%m-%d"),
                c.not_after.format("%Y-%m-%d"),
                now.format("%Y-%m-%d")
            );
            if now > c.not_after {
                SubjectFinding::fail(subject, Why::CertificateExpired).observed(observed).expected(expected.clone()).message(format!("expired on {}: clients that verify refuse it and peers drop bus links; renew and swap it in", c.not_after.format("%Y-%m-%d")))
            } else if now < c.not_before {
                SubjectFinding::fail(subject, Why::CertificateNotYetValid)
                    .observed(observed)
                    .expected(expected.clone())
                    .message(format!(
                        "not valid before {}",
                        c.not_before.format("%Y-%m-%d")
                    ))
            } else if days < p.fail_within_days {
                SubjectFinding::fail(subject, Why::ExpiresSoon)
                    .observed(observed)
                    .expected(expected.clone())
                    .message(format!("expires in {days} days; renew now"))
            } else if days < p.warn_within_days {
                SubjectFinding::warn(subject, Why::ExpiresWithinWarning)
                    .observed(observed)
                    .expected(expected.clone())
                    .message(format!("expires in {days} days; schedule the renewal"))
            } else {
                SubjectFinding::pass(subject, Why::CertificateValid)
                    .observed(observed)
                    .expected(expected.clone())
                    .message("valid")
            }
        })
    })
}

fn cert_chain(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "chains to the configured CA";
    per_subject(ev.tls_endpoints(), expected, |subject, v| {
        with_leaf(subject, v, expected, |c| {
            let observed = format!(
                "issuer {}; chain of {}; verification now: {}",
                c.issuer,
                v.chain.len(),
                v.verification
            );
            if v.chain_verification == "ok" {
                SubjectFinding::pass(subject, Why::ChainsToCa)
                    .observed(observed)
                    .expected(expected)
                    .message("issued by the organisation's CA")
            } else {
                SubjectFinding::fail(subject, Why::ChainUntrusted).observed(observed).expected(expected).message(format!(
                        "{}{}: clients verifying against the organisation's CA cannot trust this node; issue its certificate from the CA",
                        v.chain_verification,
                        if c.self_signed { " (self-signed)" } else { "" }
                    ))
            }
        })
    })
}

fn host_of(addr: &str) -> &str {
    let h = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    h.trim_start_matches('[').trim_end_matches(']')
}

fn dns_match(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match p.strip_prefix("*.") {
        Some(rest) => h.split_once('.').is_some_and(|(_, tail)| tail == rest),
        None => p == h,
    }
}

fn cert_san(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected =
        "a SAN naming the endpoint its peers use: on the client port the one the cluster \
                    hands clients (its DNS name where the cluster prefers hostnames, else its IP)";
    per_subject(ev.tls_endpoints(), expected, |subject, v| {
        with_leaf(subject, v, expected, |c| {
            let ip = host_of(&v.node);
            // The client port is judged by the host clients are handed
            // (the audit dials exactly that, see Reach); evidence without
            // it predates hostname endpoints: the advertised IP.
            let host = match (&v.port_kind, &v.reached_by) {
                (PortKind::Client, Some(r)) => r.name.as_str(),
                _ => ip,
            };
            let is_ip = host.parse::<std::net::IpAddr>().is_ok();
            let covered = if is_ip {
                c.san_ip
                    .iter()
                    .any(|s| s.parse::<std::net::IpAddr>().ok() == host.parse().ok())
            } else {
                c.san_dns.iter().any(|d| dns_match(d, host))
            };
            let observed = format!(
                "IP SANs [{}], DNS SANs [{}]; {} {host}",
                c.san_ip.join(", "),
                c.san_dns.join(", "),
                match (v.port_kind, is_ip) {
                    (PortKind::Bus, _) => "the nodes reach this bus port by IP",
                    (PortKind::Client, true) => "the cluster hands clients the IP",
                    (PortKind::Client, false) => "the cluster hands clients the hostname",
                }
            );
            let kind = if is_ip { "IP" } else { "DNS" };
            match v.port_kind {
                // Nodes dial each other's bus port at the IP CLUSTER NODES
                // gives and verify the peer's chain against the CA there,
                // never its name: no SAN decides whether this port works.
                PortKind::Bus => SubjectFinding::pass(subject, Why::BusPortNoSanNeeded).observed(observed).expected(expected).message(format!(
                        "the nodes reach each other's bus port by IP ({host}) and verify only the chain \
                         there (TLS-005), not the name, so no SAN is required on the bus; the certificate {} it",
                        if covered { "also names" } else { "does not name" }
                    )),
                PortKind::Client if covered => SubjectFinding::pass(subject, Why::SanCoversEndpoint).observed(observed).expected(expected).message(format!("clients that verify the name accept it: the {kind} SAN names {host}, the endpoint the cluster hands them")),
                PortKind::Client => SubjectFinding::fail(subject, Why::SanMissing).observed(observed).expected(expected).message(format!(
                        "no {kind} SAN for {host}, the endpoint the cluster hands clients{}: clients that verify \
                         the name refuse it; reissue with subjectAltName={kind}:{host}{}",
                        if is_ip { "" } else { " (cluster-preferred-endpoint-type hostname)" },
                        if is_ip {
                            " (or announce hostnames the certificate names: cluster-announce-hostname and \
                             cluster-preferred-endpoint-type hostname)"
                        } else {
                            ""
                        }
                    )),
            }
        })
    })
}

fn cert_eku(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "extendedKeyUsage serverAuth and clientAuth (the cluster bus is mutual TLS)";
    per_subject(ev.tls_endpoints(), expected, |subject, v| {
        with_leaf(subject, v, expected, |c| {
            let observed = format!(
                "serverAuth {}, clientAuth {}",
                c.eku_server_auth, c.eku_client_auth
            );
            let missing: Vec<&str> = [
                ("serverAuth", c.eku_server_auth),
                ("clientAuth", c.eku_client_auth),
            ]
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| *n)
            .collect();
            if missing.is_empty() {
                SubjectFinding::pass(subject, Why::KeyUsageBoth)
                    .observed(observed)
                    .expected(expected)
                    .message("usable as server and as bus client")
            } else {
                SubjectFinding::fail(subject, Why::KeyUsageMissing).observed(observed).expected(expected).message(format!("missing {}: peers reject this node's bus connections; reissue with extendedKeyUsage=serverAuth,clientAuth", missing.join(", ")))
            }
        })
    })
}

fn same_identity(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "the same certificate on the client port and the bus port";
    let mut by_node: BTreeMap<String, BTreeMap<PortKind, Result<Option<&CertInfo>, String>>> =
        BTreeMap::new();
    let mut orphans = Vec::new();
    for (subject, r) in ev.tls_endpoints() {
        match r {
            Ok(v) => {
                by_node
                    .entry(v.node.clone())
                    .or_default()
                    .insert(v.port_kind, Ok(v.chain.first()));
            }
            Err(f) => orphans.push(SubjectFinding::unobserved(subject, expected, f)),
        }
    }
    let mut out: Vec<SubjectFinding> = by_node
        .into_iter()
        .map(|(node, ports)| {
            let get = |k: PortKind| ports.get(&k).cloned();
            match (get(PortKind::Client), get(PortKind::Bus)) {
                (Some(Ok(Some(a))), Some(Ok(Some(b)))) if a.sha256 == b.sha256 => {
                    SubjectFinding::pass(&node, Why::SameIdentityBothPorts).observed(format!("sha256 {}", a.sha256.get(..16).unwrap_or(&a.sha256))).expected(expected).message("one identity on both ports")
                }
                (Some(Ok(Some(a))), Some(Ok(Some(b)))) => SubjectFinding::fail(&node, Why::IdentityDiffers).observed(format!("client {} ({}), bus {} ({})", a.sha256.get(..16).unwrap_or(&a.sha256), a.subject, b.sha256.get(..16).unwrap_or(&b.sha256), b.subject)).expected(expected).message("the bus serves another certificate than the client port; use one tls-cert-file (or set tls-client-cert-file deliberately)"),
                _ => SubjectFinding::error(&node, Why::CertificateMissingOnPort).observed("certificate missing on a port").expected(expected).message("one of the two ports gave no certificate"),
            }
        })
        .collect();
    out.extend(orphans);
    out
}

/// Parameters of `transport.no_plaintext`. The ports are a probe input
/// (the engine reads them for the TLS config probe); declared here so the
/// policy is validated in one place, so this rule never reads them itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct PlaintextParams {
    /// Ports on every node where no plaintext Redis may answer.
    #[serde(default)]
    pub extra_plaintext_ports: Vec<u16>,
}

fn no_plaintext(ev: &EvidenceSet, _: &PlaintextParams) -> Vec<SubjectFinding> {
    let expected =
        "port 0 (no plaintext listener) and no plaintext Redis answering on any probed port";
    per_subject(ev.tls_configs(), expected, |subject, v| {
        let port = v.config.get("port").map(String::as_str).unwrap_or("?");
        let mut problems = Vec::new();
        if port != "0" {
            problems.push((
                Why::PlaintextPortConfigured,
                format!("`port {port}` is configured"),
            ));
        }
        for p in v.plaintext.iter().filter(|p| p.redis_answered) {
            problems.push((
                Why::PlaintextAnswered,
                format!("port {} ({}): {}", p.port, p.source, p.detail),
            ));
        }
        let tried: Vec<String> = v
            .plaintext
            .iter()
            .map(|p| format!("{} [{}] ({})", p.port, p.source, p.detail))
            .collect();
        let observed = format!(
            "port {port}; probed: {}",
            if tried.is_empty() {
                "none".to_string()
            } else {
                tried.join(", ")
            }
        );
        if problems.is_empty() {
            SubjectFinding::pass(subject, Why::TlsOnly)
                .observed(observed)
                .expected(expected)
                .message("TLS only")
        } else {
            SubjectFinding::fail(subject, problems[0].0).observed(observed).expected(expected).message(format!("plaintext Redis reachable: {}; set `port 0` in redis.conf and CONFIG SET port 0", joined(&problems)))
        }
    })
}

fn internode_tls(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "tls-cluster yes and tls-replication yes";
    per_subject(ev.tls_configs(), expected, |subject, v| {
        let g = |k: &str| v.config.get(k).map(String::as_str).unwrap_or("?");
        let observed = format!(
            "tls-cluster {}, tls-replication {}",
            g("tls-cluster"),
            g("tls-replication")
        );
        let bad: Vec<&str> = ["tls-cluster", "tls-replication"]
            .into_iter()
            .filter(|k| g(k) != "yes")
            .collect();
        if bad.is_empty() {
            SubjectFinding::pass(subject, Why::InternodeEncrypted)
                .observed(observed)
                .expected(expected)
                .message("bus and replication links are encrypted")
        } else {
            SubjectFinding::fail(subject, Why::InternodePlaintext).observed(observed).expected(expected).message(format!("{} off: ePHI crosses the network in clear between nodes; set `{} yes` in redis.conf and CONFIG SET", bad.join(" and "), bad.join(" yes` and `")))
        }
    })
}

/// Parameters of `transport.client_certs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientCertParams {
    /// Clients must present a certificate (`tls-auth-clients yes`).
    pub require: bool,
}

fn client_certs(ev: &EvidenceSet, p: &ClientCertParams) -> Vec<SubjectFinding> {
    let expected = if p.require {
        "tls-auth-clients yes, and a handshake without a client certificate is refused"
    } else {
        "no requirement"
    };
    let live: BTreeMap<String, (bool, String)> = ev
        .tls_endpoints()
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .filter(|v| v.port_kind == PortKind::Client)
        .map(|v| {
            (
                v.node.clone(),
                (
                    v.without_client_cert.completed,
                    v.without_client_cert.detail.clone(),
                ),
            )
        })
        .collect();
    per_subject(ev.tls_configs(), expected, |subject, v| {
        let setting = v
            .config
            .get("tls-auth-clients")
            .map(String::as_str)
            .unwrap_or("?");
        let mut observed = format!("tls-auth-clients {setting}");
        if !p.require {
            return SubjectFinding::pass(subject, Why::ClientCertsNotRequired)
                .observed(observed)
                .expected(expected)
                .message("the policy does not require client certificates");
        }
        let mut problems = Vec::new();
        if setting != "yes" {
            problems.push((Why::ClientAuthOff, format!("tls-auth-clients is {setting}")));
        }
        match live.get(subject) {
            Some((accepted, detail)) => {
                observed.push_str(&format!("; without a certificate: {detail}"));
                if *accepted {
                    problems.push((
                        Why::CertlessHandshakeAccepted,
                        "a handshake without a client certificate was accepted".into(),
                    ));
                }
            }
            None => {
                return SubjectFinding::error(subject, Why::CertlessHandshakeUnobserved)
                    .observed(observed)
                    .expected(expected)
                    .message("the live handshake without a client certificate was not observed");
            }
        }
        if problems.is_empty() {
            SubjectFinding::pass(subject, Why::ClientCertsRequired)
                .observed(observed)
                .expected(expected)
                .message("only clients with a certificate from the CA get in")
        } else {
            SubjectFinding::fail(subject, problems[0].0)
                .observed(observed)
                .expected(expected)
                .message(format!("{}; set `tls-auth-clients yes`", joined(&problems)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_wildcards() {
        assert_eq!(host_of("127.0.1.1:6379"), "127.0.1.1");
        assert_eq!(host_of("[::1]:6379"), "::1");
        assert!(dns_match("*.redis.internal", "n1.redis.internal"));
        assert!(!dns_match("*.redis.internal", "a.n1.redis.internal"));
        assert!(dns_match("N1.redis.internal", "n1.REDIS.internal"));
    }
}
