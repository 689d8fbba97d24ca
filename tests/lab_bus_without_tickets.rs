//! A cluster whose nodes issue no TLS 1.3 session tickets (OpenSSL's
//! `NumTickets = 0`, set for the lab's redis-server processes through
//! `OPENSSL_CONF`; Redis itself has no setting for it). The bus port then
//! answers an accepted handshake with silence, which the transport probe
//! counts as acceptance only after a wait sized by how fast the same port
//! refused the handshake without a client certificate. Its own test binary
//! because the environment variable is the whole process's.

mod common;

use common::*;

#[tokio::test]
async fn without_session_tickets_bus_silence_counts_after_the_measured_wait() {
    let conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        conf.path(),
        "openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = defaults\n\
         [defaults]\nNumTickets = 0\n",
    )
    .unwrap();
    // Read by every redis-server the lab starts (they inherit it).
    std::env::set_var("OPENSSL_CONF", conf.path());
    let t = start_lab().await;
    t.config(&[], (2000, 3000, 20000));
    let (_, rep, bad_checks) = audit_area(&t, "transport", "no-tickets");
    assert_eq!(bad_checks, vec![], "{rep:#}");
    let bus = bus_handshakes(&rep);
    assert_eq!(bus.len(), 6, "{rep:#}");
    assert!(
        bus.iter().all(|s| s.1.contains(
            "in which this port refused the handshake without a client certificate, at least 100 ms)"
        )),
        "{bus:#?}"
    );
}
