//! Attack 4. Pipelined downloads, never read.

use super::*;

/// What the pipelining connections did.
#[derive(Debug, Default)]
pub(crate) struct PipelineFigures {
    pub(crate) connected: usize,
    pub(crate) requests_sent: u64,
    pub(crate) closed: usize,
}

/// Sends `frame` again and again (with fresh request ids) without ever reading, until `stop`;
/// the requests sent and whether the server closed the connection.
async fn pipeline(
    mut stream: tokio::net::TcpStream,
    frame: Arc<Vec<u8>>,
    mut stop: Stop,
) -> (u64, bool) {
    let mut frame = frame.as_ref().clone();
    let mut sent = 0u64;
    loop {
        frame[LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + 8].copy_from_slice(&sent.to_le_bytes());
        tokio::select! {
            () = stopped(&mut stop) => return (sent, closed_by_server(&stream)),
            written = stream.write_all(&frame) => {
                if written.is_err() {
                    return (sent, true);
                }
                sent += 1;
            }
        }
    }
}

/// `connections` connections spread over `sources`, each pipelining `frame` and never reading.
pub(crate) async fn download_pipeline(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    connections: usize,
    frame: Arc<Vec<u8>>,
    stop: Stop,
) -> PipelineFigures {
    let (streams, _) = connect_many(&sources, target, connections, CONNECT_BATCH).await;
    let connected = streams.len();
    let results = join_all(
        streams
            .into_iter()
            .map(|stream| pipeline(stream, frame.clone(), stop.clone())),
    )
    .await;
    PipelineFigures {
        connected,
        requests_sent: results.iter().map(|(sent, _)| sent).sum(),
        closed: results.iter().filter(|(_, closed)| *closed).count(),
    }
}

fn download_pipeline_row(connections: usize, hold: Duration) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let chain = committee.chain(1);
    let request = Request::DownloadCertificatesByHeights {
        chain_id: chain,
        heights: vec![BlockHeight(0); PIPELINE_HEIGHTS],
    };
    // The size of one answer, read once by an honest-looking peer.
    let answer_bytes = {
        let mut stream = std::net::TcpStream::connect(committee.target).unwrap();
        stream.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
        std::io::Write::write_all(&mut stream, &encode_request(1, request.clone())).unwrap();
        let mut prefix = [0u8; LENGTH_PREFIX_LEN];
        std::io::Read::read_exact(&mut stream, &mut prefix).unwrap();
        u64::from(u32::from_be_bytes(prefix))
    };
    let frame = Arc::new(encode_request(0, request));
    let target = committee.target;
    let attacker = Attacker::launch(move |stop| {
        download_pipeline(target, attacker_addresses(1), connections, frame, stop)
    });
    let name = format!(
        "4. {connections} connection{} pipelining {} downloads, never reading",
        if connections == 1 { "" } else { "s" },
        mib(answer_bytes)
    );
    let (mut row, figures) = measure(&mut committee, baseline, &name, Hold::fixed(hold), attacker);
    row.note(format!(
        "{} connected; {} requests sent ({} of answers asked for); {} closed by the server",
        figures.connected,
        figures.requests_sent,
        mib(figures.requests_sent * answer_bytes),
        figures.closed
    ));
    row
}

/// One connection asks for ~0.6 MiB downloads back to back and never reads: the lighter
/// version of [`pipelined_downloads_never_read`] for the normal run (in a debug build, ten
/// connections' handlers keep both cores busy with the Worker's unoptimised code, and honest
/// requests to validator 0 then wait on the CPU rather than on anything the server bounds).
#[test]
fn pipelined_downloads_on_one_connection() {
    let _serial = serial();
    download_pipeline_row(1, PIPELINE_HOLD).finish();
}

/// Ten connections of one peer ask for ~0.6 MiB downloads back to back and never read. The
/// address's peer budget (64 MiB across its connections) bounds the answers queued for it and
/// its handler share (32) the work done for it at once; other peers are served meanwhile.
///
/// Before the per-address shares (release build, three runs): validator 0's peak RSS +451 to
/// +528 MiB, an honest chain info query to it 1.3–2.6 s, honest commands up to 10.5× their
/// baseline.
#[test]
#[ignore = "heavy: ten connections pipelining downloads (run with --release)"]
fn pipelined_downloads_never_read() {
    let _serial = serial();
    download_pipeline_row(PIPELINE_CONNECTIONS, PIPELINE_HOLD).finish();
}

/// The same from as many connections as one address may open (the per-IP cap, 64).
/// Before the per-address shares (release, three runs): peak RSS +0.9 to +2.5 GiB (up to
/// 2.1 GiB still held after), an honest query to validator 0 2.4 s to over 10 s, an honest
/// 128 KiB pending blob 9.2–10.2 s.
#[test]
#[ignore = "heavy: 64 connections pipelining downloads for 10 s"]
fn pipelined_downloads_never_read_on_every_connection_of_one_address() {
    let _serial = serial();
    download_pipeline_row(server().max_connections_per_ip, Duration::from_secs(10)).finish();
}
