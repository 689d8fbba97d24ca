//! Certificate facts from DER, with x509-parser. Key size is computed from
//! the RSA modulus itself (x509-parser's `key_size()` is wrong when the
//! modulus is not a whole number of bytes).

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::evidence::CertInfo;

/// Bits of a big-endian unsigned integer (leading zero bytes ignored).
pub(crate) fn bit_len(be: &[u8]) -> u32 {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    (trimmed.len() as u32 - 1) * 8 + (8 - trimmed[0].leading_zeros())
}

fn sig_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption".into(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.113549.1.1.10" => "rsassaPss".into(),
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512".into(),
        "1.3.101.112" => "ed25519".into(),
        other => other.to_string(),
    }
}

fn ts(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Parses one DER certificate into the facts the checks judge.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| format!("not a parsable X.509 certificate: {e}"))?;
    let (key_type, key_bits) = match c.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_string(), bit_len(rsa.modulus)),
        Ok(PublicKey::EC(p)) => ("EC".to_string(), p.key_size() as u32),
        Ok(PublicKey::DSA(_)) => ("DSA".to_string(), 0),
        Ok(_) => (c.public_key().algorithm.algorithm.to_id_string(), 0),
        Err(e) => return Err(format!("unreadable public key: {e}")),
    };
    let mut san_ip = Vec::new();
    let mut san_dns = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::IPAddress(b) => match b.len() {
                    4 => san_ip.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        san_ip.push(std::net::Ipv6Addr::from(a).to_string());
                    }
                    _ => {}
                },
                GeneralName::DNSName(d) => san_dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    let (server_auth, client_auth) = match c.extended_key_usage() {
        Ok(Some(e)) => (
            e.value.server_auth || e.value.any,
            e.value.client_auth || e.value.any,
        ),
        _ => (false, false),
    };
    Ok(CertInfo {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        serial: c.raw_serial_as_string(),
        sha256: hex::encode(Sha256::digest(der)),
        not_before: ts(c.validity().not_before.timestamp()),
        not_after: ts(c.validity().not_after.timestamp()),
        key_type,
        key_bits,
        signature_algorithm: sig_name(&c.signature_algorithm.algorithm.to_id_string()),
        san_ip,
        san_dns,
        eku_server_auth: server_auth,
        eku_client_auth: client_auth,
        is_ca: c.is_ca(),
        self_signed: c.subject() == c.issuer(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    fn load(name: &str) -> CertInfo {
        let p = format!("{}/fixtures/pki/{name}", env!("CARGO_MANIFEST_DIR"));
        let der = CertificateDer::from_pem_file(&p).unwrap();
        cert_info(&der).unwrap()
    }

    #[test]
    fn bit_length_from_the_modulus() {
        assert_eq!(bit_len(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(bit_len(&[0x7f, 0xff]), 15);
        assert_eq!(bit_len(&[0x00]), 0);
        // 2047-bit modulus: 256 bytes with the top bit clear.
        let mut m = vec![0x7f];
        m.extend(vec![0xff; 255]);
        assert_eq!(bit_len(&m), 2047);
    }

    #[test]
    fn good_node_certificate_facts() {
        let c = load("node1.crt");
        assert_eq!((c.key_type.as_str(), c.key_bits), ("RSA", 4096));
        assert_eq!(c.signature_algorithm, "sha256WithRSAEncryption");
        assert_eq!(c.san_ip, vec!["127.0.1.1"]);
        assert!(c.eku_server_auth && c.eku_client_auth && !c.is_ca && !c.self_signed);
        assert_eq!(c.sha256.len(), 64);
        assert!(c.issuer.contains("epic-audit lab CA"));
    }

    #[test]
    fn defective_certificates_show_their_defect() {
        assert_eq!(load("bad/rsa2048.crt").key_bits, 2048);
        assert!(load("bad/expired.crt")
            .not_after
            .to_rfc3339()
            .starts_with("2021-01-01"));
        assert!(load("bad/selfsigned.crt").self_signed);
        assert_eq!(
            load("bad/sha1.crt").signature_algorithm,
            "sha1WithRSAEncryption"
        );
        let n = load("bad/no-client-auth.crt");
        assert!(n.eku_server_auth && !n.eku_client_auth);
        assert_eq!(load("bad/wrong-san.crt").san_ip, vec!["127.0.1.9"]);
        assert!(load("ca.crt").is_ca);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(cert_info(b"not a certificate").is_err());
        assert!(cert_info(&[]).is_err());
    }
}
