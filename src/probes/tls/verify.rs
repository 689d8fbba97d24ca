//! The two certificate verifiers of the transport probes: [`Capture`]
//! records the served chain and the WebPKI verdicts and lets a probing
//! handshake go on (no credentials travel on it); [`TimeTolerant`] accepts
//! only an expired or not-yet-valid leaf, for the config connection, which
//! must still prove a CA-issued certificate for the node's name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

pub(crate) fn err_text(e: &rustls::Error) -> String {
    e.to_string()
}

/// Verifies like WebPKI but at a time inside the leaf's validity, so the
/// chain and name are judged without the clock.
pub(crate) fn verify_at_valid_time(
    inner: &WebPkiServerVerifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    name: &ServerName<'_>,
) -> Result<(), rustls::Error> {
    let info = super::cert::cert_info(end_entity).map_err(rustls::Error::General)?;
    let t = UnixTime::since_unix_epoch(Duration::from_secs(
        info.not_before.timestamp().max(0) as u64 + 1,
    ));
    inner
        .verify_server_cert(end_entity, intermediates, name, &[], t)
        .map(|_| ())
}

pub(crate) fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

pub(crate) fn is_time_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
        )
    )
}

/// The signature-verification half of a `ServerCertVerifier`, delegated to
/// the wrapped WebPKI verifier in `self.inner` (shared by the verifiers
/// below, which differ only in how they judge the certificate itself).
macro_rules! delegate_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    };
}

/// What the capturing verifier saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Captured {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Verification now.
    pub now: Option<Result<(), String>>,
    /// Chain-only verification at a valid time (name errors ignored).
    pub chain_only: Option<Result<(), String>>,
}

/// A verifier that records the chain and the WebPKI verdicts and lets the
/// handshake continue, so one connection yields all the evidence. Used only
/// on probing connections that carry no credentials.
#[derive(Debug)]
pub(crate) struct Capture {
    inner: Arc<WebPkiServerVerifier>,
    /// What was seen.
    pub seen: Mutex<Captured>,
}

impl Capture {
    /// A capturing verifier over the configured CA.
    pub(crate) fn new(roots: Arc<rustls::RootCertStore>) -> Result<Arc<Capture>, String> {
        let inner = WebPkiServerVerifier::builder(roots)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Capture {
            inner,
            seen: Mutex::new(Captured::default()),
        }))
    }
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| err_text(&e));
        let chain_only =
            match verify_at_valid_time(&self.inner, end_entity, intermediates, server_name) {
                Ok(()) => Ok(()),
                Err(e) if is_name_error(&e) => Ok(()),
                Err(e) => Err(err_text(&e)),
            };
        if let Ok(mut s) = self.seen.lock() {
            s.chain = std::iter::once(end_entity.clone().into_owned())
                .chain(intermediates.iter().map(|c| c.clone().into_owned()))
                .collect();
            s.now = Some(verdict);
            s.chain_only = Some(chain_only);
        }
        Ok(ServerCertVerified::assertion())
    }

    delegate_signature_checks!();
}

/// WebPKI verification that tolerates only an expired or not-yet-valid
/// leaf (judged by its own check), for the connection that reads config:
/// the node must still prove it holds a CA-issued certificate for its name
/// before credentials are sent.
#[derive(Debug)]
pub(crate) struct TimeTolerant {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for TimeTolerant {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if is_time_error(&e) => {
                verify_at_valid_time(&self.inner, end_entity, intermediates, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    delegate_signature_checks!();
}
