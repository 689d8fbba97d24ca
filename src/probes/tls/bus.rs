//! How a bus-port handshake learns whether the server accepted it: a
//! session ticket, cluster protocol, an alert or a close, or a silence
//! long enough that a refusal would surely have arrived.

use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

/// What a full handshake does once it completed.
pub(crate) enum After {
    /// A client port: one PING, which must be answered.
    Ping,
    /// A bus port, which speaks only the cluster protocol and so answers
    /// nothing: wait for the server's verdict (see [`AlertWait`]).
    Alert(AlertWait),
}

/// How a bus-port handshake learns whether the server accepted it. With
/// TLS 1.3 the server judges the client's certificate after the client
/// finished its handshake, so its verdict comes one round trip later: a
/// session ticket, or a refusal alert. OpenSSL issues tickets only once it
/// accepted the client's certificate and Finished, and a server that
/// requested client authentication cannot compute one before it has them
/// (RFC 8446 4.6.1). A server that issues no tickets (OpenSSL
/// `NumTickets = 0`; Redis's `tls-session-caching no` still issues them)
/// answers an accepted handshake with silence, which is evidence of
/// acceptance only once a refusal would surely have arrived: the wait
/// below.
pub(crate) enum AlertWait {
    /// The handshake without a client certificate, which the port should
    /// refuse: wait [`rtt_wait`], and report how long after the handshake
    /// the refusal came (`None`: none came).
    Report(Duration, oneshot::Sender<Option<Duration>>),
    /// The handshake with the client certificate, which runs at the same
    /// time on the same port: wait four times the latency of that port's
    /// refusal of the other handshake (the same alert at the same protocol
    /// point, measured on this server under the audit's own load), at least
    /// 100 ms. When the other handshake was not refused, wait [`rtt_wait`].
    SizedBy(Duration, oneshot::Receiver<Option<Duration>>),
}

/// The wait for an alert when nothing better is known: twenty times the
/// TCP connect time, 100–500 ms. The connect time grows with the audit's
/// own load, not only with the network, so this is a fallback.
pub(crate) fn rtt_wait(rtt: Duration, command: Duration) -> (Duration, String) {
    let wait = (rtt * 20)
        .clamp(Duration::from_millis(100), Duration::from_millis(500))
        .min(command);
    (
        wait,
        format!(
            "20x the {} ms TCP connect time, 100-500 ms",
            rtt.as_millis()
        ),
    )
}

/// The wait for an alert after the handshake with the client certificate,
/// given the `latency` in which the same port refused the handshake
/// without one: four times that, at least 100 ms.
pub(crate) fn refusal_wait(latency: Duration, command: Duration) -> (Duration, String) {
    let floor = Duration::from_millis(100);
    (
        (latency * 4).clamp(floor, command.max(floor)),
        format!(
            "4x the {} ms in which this port refused the handshake without a client certificate, \
             at least 100 ms",
            latency.as_millis()
        ),
    )
}

/// A session store that keeps nothing and says when the server issued a
/// ticket: on a probing connection, the server's word that it accepted
/// the handshake.
#[derive(Debug, Default)]
pub(crate) struct TicketSignal(pub(crate) tokio::sync::Notify);

impl rustls::client::ClientSessionStore for TicketSignal {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.notify_one();
    }
    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

/// What ended the wait after a bus-port handshake.
pub(crate) enum Answer {
    Read(std::io::Result<usize>),
    Ticket,
    Silence,
}

/// Reads after a bus-port handshake until the server answers (a session
/// ticket or cluster protocol is acceptance; an alert or a close is a
/// refusal) or the wait `how` sizes ends in silence, which counts as
/// acceptance. `ticket` completes when the server issued a session ticket.
pub(crate) async fn await_alert<S: tokio::io::AsyncRead + Unpin>(
    tls: &mut S,
    buf: &mut [u8],
    how: AlertWait,
    command: Duration,
    ticket: impl std::future::Future<Output = ()>,
) -> (bool, String) {
    let started = Instant::now();
    let read = tls.read(buf);
    tokio::pin!(read, ticket);
    let (rtt, mut wait, mut basis, report, mut peer) = match how {
        AlertWait::Report(rtt, report) => {
            let (wait, basis) = rtt_wait(rtt, command);
            (rtt, wait, basis, Some(report), None)
        }
        // Until the other handshake reports, wait up to the command
        // deadline; its report then sets the real deadline (which may
        // already have passed).
        AlertWait::SizedBy(rtt, peer) => (
            rtt,
            command,
            format!("the {} ms command deadline", command.as_millis()),
            None,
            Some(peer),
        ),
    };
    let mut heard = false;
    let answer = loop {
        tokio::select! {
            r = &mut read => break Answer::Read(r),
            _ = &mut ticket => break Answer::Ticket,
            _ = tokio::time::sleep_until((started + wait).into()) => break Answer::Silence,
            latency = async {
                match peer.as_mut() {
                    Some(rx) => rx.await.ok().flatten(),
                    None => std::future::pending().await,
                }
            }, if peer.is_some() && !heard => {
                heard = true;
                (wait, basis) = match latency {
                    Some(l) => refusal_wait(l, command),
                    None => rtt_wait(rtt, command),
                };
            }
        }
    };
    if let Some(report) = report {
        let refused = matches!(answer, Answer::Read(Ok(0)) | Answer::Read(Err(_)));
        let _ = report.send(refused.then(|| started.elapsed()));
    }
    match answer {
        Answer::Ticket => (
            true,
            "the server issued a session ticket after the handshake, so it accepted it".to_string(),
        ),
        Answer::Silence => (
            true,
            format!(
                "no alert within {} ms after the handshake ({basis})",
                wait.as_millis()
            ),
        ),
        Answer::Read(Ok(0)) => (
            false,
            "closed by the server right after the handshake".to_string(),
        ),
        Answer::Read(Ok(n)) => (true, format!("{n} bytes of cluster protocol")),
        Answer::Read(Err(e)) => (false, format!("refused after the handshake: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const MS: Duration = Duration::from_millis(1);
    const COMMAND: Duration = Duration::from_secs(5);

    /// [`await_alert`] on `near`, from a server that issues no ticket.
    async fn answer(near: &mut tokio::io::DuplexStream, how: AlertWait) -> (bool, String) {
        let mut buf = [0u8; 16];
        await_alert(near, &mut buf, how, COMMAND, std::future::pending()).await
    }

    /// A bus-port wait with a silent server (the far end stays open and
    /// sends nothing), its sizing given by `how`.
    async fn silent(how: AlertWait) -> (bool, String) {
        let (mut near, _far) = tokio::io::duplex(64);
        answer(&mut near, how).await
    }

    #[tokio::test]
    async fn the_wait_is_four_times_the_ports_refusal_of_the_other_handshake() {
        let (tx, rx) = oneshot::channel();
        tx.send(Some(30 * MS)).unwrap();
        // A slow connect (200 ms) would have meant the 500 ms cap.
        let (accepted, detail) = silent(AlertWait::SizedBy(200 * MS, rx)).await;
        assert!(accepted, "{detail}");
        assert_eq!(
            detail,
            "no alert within 120 ms after the handshake (4x the 30 ms in which this port refused \
             the handshake without a client certificate, at least 100 ms)"
        );
    }

    #[tokio::test]
    async fn a_fast_refusal_still_means_a_wait_of_100_ms() {
        let (tx, rx) = oneshot::channel();
        tx.send(Some(2 * MS)).unwrap();
        let (_, detail) = silent(AlertWait::SizedBy(MS, rx)).await;
        assert!(detail.starts_with("no alert within 100 ms "), "{detail}");
    }

    #[tokio::test]
    async fn without_a_refusal_to_measure_the_connect_time_sizes_the_wait() {
        for sent in [true, false] {
            let (tx, rx) = oneshot::channel();
            if sent {
                // The other handshake was not refused.
                tx.send(None).unwrap();
            } else {
                // The other handshake ended without a report.
                drop(tx);
            }
            let (_, detail) = silent(AlertWait::SizedBy(12 * MS, rx)).await;
            assert_eq!(
                detail,
                "no alert within 240 ms after the handshake (20x the 12 ms TCP connect time, \
                 100-500 ms)"
            );
        }
    }

    #[tokio::test]
    async fn a_refusal_is_reported_with_its_latency_and_is_a_refusal() {
        let (mut near, far) = tokio::io::duplex(64);
        tokio::spawn(async move {
            tokio::time::sleep(40 * MS).await;
            drop(far);
        });
        let (tx, rx) = oneshot::channel();
        let (accepted, detail) = answer(&mut near, AlertWait::Report(25 * MS, tx)).await;
        assert!(!accepted, "{detail}");
        assert_eq!(detail, "closed by the server right after the handshake");
        let latency = rx.await.unwrap().expect("a refusal reports its latency");
        assert!(latency >= 40 * MS, "{latency:?}");
    }

    #[tokio::test]
    async fn silence_on_the_refusing_side_reports_no_latency() {
        let (tx, rx) = oneshot::channel();
        let (accepted, detail) = silent(AlertWait::Report(MS, tx)).await;
        assert!(accepted, "{detail}");
        assert_eq!(rx.await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_alert_before_the_other_handshake_reports_is_a_refusal() {
        let (mut near, far) = tokio::io::duplex(64);
        drop(far);
        // The other handshake never reports (its sender is kept alive).
        let (_tx, rx) = oneshot::channel();
        let (accepted, detail) = answer(&mut near, AlertWait::SizedBy(MS, rx)).await;
        assert!(!accepted, "{detail}");
    }

    #[tokio::test]
    async fn cluster_protocol_after_the_handshake_is_acceptance() {
        let (mut near, mut far) = tokio::io::duplex(64);
        far.write_all(b"RCmb").await.unwrap();
        let (_tx, rx) = oneshot::channel();
        let (accepted, detail) = answer(&mut near, AlertWait::SizedBy(MS, rx)).await;
        assert!(accepted, "{detail}");
        assert_eq!(detail, "4 bytes of cluster protocol");
    }

    /// A session ticket is the server's word that it accepted the
    /// handshake: no wait, and on the refusing side nothing to report.
    #[tokio::test]
    async fn a_session_ticket_is_acceptance_at_once() {
        let (mut near, _far) = tokio::io::duplex(64);
        let signal = TicketSignal::default();
        let (tx, rx) = oneshot::channel();
        let mut buf = [0u8; 16];
        signal.0.notify_one();
        let (accepted, detail) = await_alert(
            &mut near,
            &mut buf,
            AlertWait::Report(Duration::from_secs(1), tx),
            COMMAND,
            signal.0.notified(),
        )
        .await;
        assert!(accepted, "{detail}");
        assert_eq!(
            detail,
            "the server issued a session ticket after the handshake, so it accepted it"
        );
        assert_eq!(rx.await.unwrap(), None);
    }
}
