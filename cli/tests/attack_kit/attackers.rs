//! Attackers: connections from other loopback addresses, run on their own thread and closed
//! when stopped or dropped.

use super::*;

/// Tells an attack to stop: it should close its sockets and return its figures.
pub type Stop = watch::Receiver<bool>;

/// Waits until the attack is told to stop.
pub async fn stopped(stop: &mut Stop) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// An attack running on its own thread, on a single-threaded tokio runtime. Stopping it (or
/// dropping it, e.g. when a test fails) tells it to stop and waits for it; whatever sockets it
/// still holds are closed when its runtime goes.
pub struct Attacker<T: Send + 'static> {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Attacker<T> {
    /// Starts the attack `make(stop)`.
    pub fn launch<F, Fut>(make: F) -> Attacker<T>
    where
        F: FnOnce(Stop) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let (stop, stop_receiver) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(make(stop_receiver))
        });
        Attacker {
            stop,
            thread: Some(thread),
        }
    }

    /// Whether the attack returned on its own.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Tells the attack to stop and returns its figures.
    pub fn stop(mut self) -> T {
        let _ = self.stop.send(true);
        match self.thread.take().unwrap().join() {
            Ok(figures) => figures,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T: Send + 'static> Drop for Attacker<T> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The loopback addresses an attacker sends from: `count` of them, `127.0.0.2` and up, none of
/// them the honest traffic's `127.0.0.1` (each address has its own per-IP connection cap).
pub fn attacker_addresses(count: u8) -> Vec<Ipv4Addr> {
    (0..count)
        .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
        .collect()
}

/// `count` loopback addresses `127.0.1.1` and up, for an attacker with many addresses.
pub fn many_attacker_addresses(count: u8) -> Vec<Ipv4Addr> {
    (0..count)
        .map(|i| Ipv4Addr::new(127, 0, 1, 1 + i))
        .collect()
}

/// Connects to `target` from `source` (any port), within [`ATTACK_CONNECT_TIMEOUT`].
pub async fn connect_from(source: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    match tokio::time::timeout(ATTACK_CONNECT_TIMEOUT, socket.connect(target)).await {
        Ok(connected) => connected,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// `count` connections to `target`, spread round-robin over `sources`, opened `batch` at a
/// time; the connections made and how many attempts failed.
pub async fn connect_many(
    sources: &[Ipv4Addr],
    target: SocketAddr,
    count: usize,
    batch: usize,
) -> (Vec<TcpStream>, usize) {
    let mut streams = Vec::with_capacity(count);
    let mut failed = 0;
    let mut next = 0;
    while next < count {
        let end = (next + batch).min(count);
        let attempts = (next..end).map(|i| connect_from(sources[i % sources.len()], target));
        for attempt in join_all(attempts).await {
            match attempt {
                Ok(stream) => streams.push(stream),
                Err(_) => failed += 1,
            }
        }
        next = end;
    }
    (streams, failed)
}

/// Runs every future as a task of the attacker's runtime and returns their outputs in order
/// (the tests do not depend on `futures`). A task still running when the attacker's runtime
/// goes is dropped, with its sockets.
pub async fn join_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Whether the server has closed `stream` (an end of stream or an error on a read that does
/// not wait; bytes the server sent are read and dropped).
pub fn closed_by_server(stream: &TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.try_read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Writes as much of `bytes` to `stream` as it takes within `window`, without ever waiting
/// longer; the number of bytes written, and whether the connection failed.
pub async fn write_within(stream: &mut TcpStream, bytes: &[u8], window: Duration) -> (usize, bool) {
    use tokio::io::AsyncWriteExt;
    let until = tokio::time::Instant::now() + window;
    let mut written = 0;
    while written < bytes.len() {
        match tokio::time::timeout_at(until, stream.write(&bytes[written..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (written, true),
            Ok(Ok(n)) => written += n,
            Err(_) => return (written, false),
        }
    }
    (written, false)
}
