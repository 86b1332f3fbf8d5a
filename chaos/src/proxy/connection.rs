//! [`serve`]: the life of one proxied connection, from the upstream connect to the close or
//! reset of both sides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::fault::ProxyFault;
use super::handle::{FaultState, Shared};
use super::relay::{relay, Teardown};

/// How long connecting to the upstream may take before the client's connection is reset.
pub(crate) const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one accepted client connection: connects to `upstream`, carries bytes both ways
/// under the fault in force, and closes both sides in order or resets both. Everything it
/// owns is dropped if its task is aborted.
pub(crate) async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
) {
    let counters = &shared.counters;
    let _open = counters.open_guard();
    let mut faults = shared.subscribe();
    let connect = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream));
    let connected = tokio::select! {
        biased;
        () = until_reset(&mut faults) => {
            tracing::debug!(%peer, "fault proxy: connection reset (fault) while connecting upstream");
            counters.record_reset();
            reset(&client);
            return;
        }
        connected = connect => connected,
    };
    let mut upstream_stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %upstream, %error, "fault proxy: upstream unreachable; resetting the client");
            return refuse_unreachable(&client, &shared);
        }
        Err(_elapsed) => {
            tracing::debug!(%peer, %upstream, "fault proxy: upstream connect timed out; resetting the client");
            return refuse_unreachable(&client, &shared);
        }
    };
    let mut client = client;
    for stream in [&client, &upstream_stream] {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "fault proxy: cannot set TCP_NODELAY");
        }
    }
    tracing::debug!(%peer, %upstream, "fault proxy: connection open");
    let relay_faults = faults.clone();
    let ending = tokio::select! {
        biased;
        () = until_reset(&mut faults) => Err(Teardown::Fault),
        ending = relay(&mut client, &mut upstream_stream, &relay_faults, counters) => ending,
    };
    match ending {
        Ok(()) => tracing::debug!(%peer, "fault proxy: connection closed"),
        Err(cause) => {
            tracing::debug!(%peer, ?cause, "fault proxy: connection reset");
            counters.record_reset();
            reset(&client);
            reset(&upstream_stream);
        }
    }
}

/// Resets `client` because its upstream could not be reached, as a refused connection would.
fn refuse_unreachable(client: &TcpStream, shared: &Shared) {
    shared.counters.record_upstream_connect_failure();
    shared.counters.record_reset();
    reset(client);
}

/// Returns once [`ProxyFault::Reset`] is in force (at once if it already is).
async fn until_reset(faults: &mut watch::Receiver<FaultState>) {
    if faults
        .wait_for(|state| state.fault == ProxyFault::Reset)
        .await
        .is_err()
    {
        // The proxy is gone; its task ends this one soon.
        std::future::pending::<()>().await;
    }
}

/// Makes the coming close of `stream` a reset (`SO_LINGER` 0): the peer reads `ECONNRESET`.
/// If the option cannot be set, the close is an ordinary one.
pub(crate) fn reset(stream: &TcpStream) {
    if let Err(error) = stream.set_zero_linger() {
        tracing::debug!(%error, "fault proxy: cannot set SO_LINGER 0; closing in order instead");
    }
}
