//! Attack 6. Blob uploads and pending blobs.

use super::*;

/// What the blob flood got back.
#[derive(Debug, Default)]
pub(crate) struct BlobFigures {
    /// Requests written whole.
    pub(crate) sent: usize,
    /// Answers by kind ("UploadBlob: UnexpectedBlob", "PendingBlob: ok", …).
    pub(crate) answers: BTreeMap<String, usize>,
    /// Connections the server closed.
    pub(crate) closed: usize,
}

fn answer_kind(response: &Response) -> String {
    let what = match response.error() {
        None => "ok".to_string(),
        Some(NodeError::UnexpectedBlob(_)) => "UnexpectedBlob".to_string(),
        Some(error) => format!("{error:?}"),
    };
    format!("{}: {what}", response.kind())
}

/// Sends, for each `(template, counter)` of `requests`, that template with the counter as its
/// request id and as its blob's last 8 bytes (so that every blob is distinct), on one
/// connection, reading the answers meanwhile, within [`BLOB_SEND_WINDOW`]; then waits a little
/// for the last answers.
async fn blob_connection(
    source: Ipv4Addr,
    target: SocketAddr,
    templates: Arc<Vec<Vec<u8>>>,
    requests: Vec<(usize, u64)>,
    mut stop: Stop,
) -> BlobFigures {
    let mut figures = BlobFigures::default();
    let Ok(stream) = connect_from(source, target).await else {
        figures.closed = 1;
        return figures;
    };
    let (mut read, mut write) = stream.into_split();
    let expected = requests.len();
    let answers = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    // Reads every answer; whether the server closed the connection first.
    let reader = tokio::spawn({
        let answers = Arc::clone(&answers);
        async move {
            for _ in 0..expected {
                let mut prefix = [0u8; LENGTH_PREFIX_LEN];
                if read.read_exact(&mut prefix).await.is_err() {
                    return true;
                }
                let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
                if read.read_exact(&mut body).await.is_err() {
                    return true;
                }
                let kind = match FrameCodec::<Response>::decode_body(&body) {
                    Ok(envelope) => answer_kind(&envelope.body),
                    Err(error) => format!("undecodable: {error}"),
                };
                *answers.lock().unwrap().entry(kind).or_default() += 1;
            }
            false
        }
    });
    let until = Instant::now() + BLOB_SEND_WINDOW;
    let mut frames: Vec<Vec<u8>> = templates.as_ref().clone();
    for (template, counter) in requests {
        let frame = &mut frames[template];
        let length = frame.len();
        frame[LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + 8].copy_from_slice(&counter.to_le_bytes());
        frame[length - 8..].copy_from_slice(&counter.to_le_bytes());
        let sent = tokio::select! {
            () = stopped(&mut stop) => false,
            () = tokio::time::sleep_until(until) => false,
            written = write.write_all(frame) => written.is_ok(),
        };
        if !sent {
            break;
        }
        figures.sent += 1;
    }
    // The last answers, for a little while.
    let closed = match tokio::time::timeout(BLOB_ANSWER_WAIT, reader).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => false,
    };
    figures.answers = answers.lock().unwrap().clone();
    figures.closed = usize::from(closed);
    figures
}

/// The request templates of a blob flood against `committee`: one upload, and one pending blob
/// per genesis chain (the blob's last 8 bytes and the request id are changed per request).
pub(crate) fn blob_templates(committee: &Committee) -> Arc<Vec<Vec<u8>>> {
    let blob = Blob::data(vec![0; FLOOD_BLOB_BYTES]);
    let mut templates = vec![encode_request(0, Request::UploadBlob(blob.clone()))];
    for (chain_id, _) in &committee.owners {
        templates.push(encode_request(
            0,
            Request::PendingBlob {
                chain_id: *chain_id,
                blob: blob.clone(),
            },
        ));
    }
    Arc::new(templates)
}

/// A blob flood from `sources`, `connections` connections from each: `requests` requests in
/// all (request i an upload when i is even, else a pending blob for chain (i / 2) mod chains),
/// spread over the connections in turn.
pub(crate) async fn blob_flood(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    connections: usize,
    requests: usize,
    templates: Arc<Vec<Vec<u8>>>,
    stop: Stop,
) -> BlobFigures {
    let chains = templates.len() - 1;
    let count = sources.len() * connections;
    let connections = (0..count).map(|c| {
        let requests: Vec<(usize, u64)> = (0..requests)
            .filter(|i| i % count == c)
            .map(|i| {
                let template = if i % 2 == 0 { 0 } else { 1 + (i / 2) % chains };
                (template, i as u64)
            })
            .collect();
        let source = sources[c % sources.len()];
        blob_connection(source, target, templates.clone(), requests, stop.clone())
    });
    let mut all = BlobFigures::default();
    for figures in join_all(connections).await {
        all.sent += figures.sent;
        all.closed += figures.closed;
        for (kind, count) in figures.answers {
            *all.answers.entry(kind).or_default() += count;
        }
    }
    all
}

/// The checks of every blob flood: nothing anonymous was accepted.
pub(crate) fn check_blob_answers(row: &mut Row, figures: &BlobFigures) {
    row.check(
        !figures.answers.contains_key("UploadBlob: ok"),
        "an upload nobody asked for was accepted",
    );
    row.check(
        !figures.answers.contains_key("PendingBlob: ok"),
        "a pending blob no owner's proposal asked for was accepted",
    );
}

fn blob_flood_row(requests: usize, name: &str) -> (Row, BlobFigures) {
    let (mut committee, baseline) = committee_with_baseline();
    let templates = blob_templates(&committee);
    let target = committee.target;
    let attacker = Attacker::launch(move |stop| {
        let sources = attacker_addresses(1);
        blob_flood(
            target,
            sources,
            BLOB_CONNECTIONS,
            2 * requests,
            templates,
            stop,
        )
    });
    let hold = Hold {
        min: Duration::from_secs(3),
        max: BLOB_SEND_WINDOW + Duration::from_secs(5),
    };
    let (mut row, figures) = measure(&mut committee, baseline, name, hold, attacker);
    row.note(format!(
        "{} of {} requests sent; answers {:?}; {} connections closed by the server",
        figures.sent,
        2 * requests,
        figures.answers,
        figures.closed
    ));
    check_blob_answers(&mut row, &figures);
    (row, figures)
}

/// 200 uploads of 4 MiB blobs nobody asked for and 200 pending 4 MiB blobs for the genesis
/// chains, on four connections of one peer, within 15 s: both are refused (`UnexpectedBlob`):
/// nobody asked for the uploads, and no owner's proposal for the pending blobs.
#[test]
fn blob_uploads_and_pending_blobs() {
    let _serial = serial();
    let name =
        format!("6. {BLOB_REQUESTS} × 4 MiB uploads + {BLOB_REQUESTS} × 4 MiB pending blobs");
    let (row, _) = blob_flood_row(BLOB_REQUESTS, &name);
    row.finish();
}

/// The same at the scale measured before the hardening: 1,100 of each.
#[test]
#[ignore = "heavy: 2,200 requests of 4 MiB (8.6 GiB) within 15 s"]
fn blob_uploads_and_pending_blobs_at_scale() {
    let _serial = serial();
    let (row, _) = blob_flood_row(
        1_100,
        "6b. 1,100 × 4 MiB uploads + 1,100 × 4 MiB pending blobs",
    );
    row.finish();
}
