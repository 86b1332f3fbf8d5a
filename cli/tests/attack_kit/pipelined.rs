//! Pipelined requests: one frame sent many times on a connection without waiting, then every
//! answer read (attacks 5 and 7).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// An attacker sending `frame` `per_connection` times pipelined on each of `connections`
/// connections at once from one address (see [`send_pipelined`]); what it got back. Told to
/// stop before every answer came (the hold's end), what came is what counts.
pub fn pipelined_attacker(
    target: SocketAddr,
    frame: Arc<Vec<u8>>,
    connections: usize,
    per_connection: usize,
) -> Attacker<Vec<PipelinedAnswer>> {
    Attacker::launch(move |mut stop| async move {
        let sources = attacker_addresses(1);
        let sends = (0..connections)
            .map(|_| send_pipelined(sources[0], target, frame.clone(), per_connection));
        tokio::select! {
            answers = join_all(sends) => answers.into_iter().flatten().collect::<Vec<_>>(),
            () = stopped(&mut stop) => Vec::new(),
        }
    })
}

/// What one pipelined request got back, and when.
#[derive(Debug)]
pub struct PipelinedAnswer {
    /// Time from the connection's start to this answer.
    pub after: Duration,
    /// The answer, or what went wrong.
    pub answer: Result<Response, String>,
}

/// Sends `count` copies of `frame` (fresh request ids) on one connection, then reads the
/// answers.
pub async fn send_pipelined(
    source: Ipv4Addr,
    target: SocketAddr,
    frame: Arc<Vec<u8>>,
    count: usize,
) -> Vec<PipelinedAnswer> {
    let started = Instant::now();
    let mut stream = match connect_from(source, target).await {
        Ok(stream) => stream,
        Err(error) => {
            return vec![PipelinedAnswer {
                after: started.elapsed(),
                answer: Err(format!("connect: {error}")),
            }]
        }
    };
    let id_at = LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + 8;
    for id in 0..count as u64 {
        let sent = async {
            stream.write_all(&frame[..id_at.start]).await?;
            stream.write_all(&id.to_le_bytes()).await?;
            stream.write_all(&frame[id_at.end..]).await
        };
        if let Err(error) = sent.await {
            return vec![PipelinedAnswer {
                after: started.elapsed(),
                answer: Err(format!("send: {error}")),
            }];
        }
    }
    let mut answers = Vec::new();
    for _ in 0..count {
        let read = async {
            let mut prefix = [0u8; LENGTH_PREFIX_LEN];
            stream.read_exact(&mut prefix).await?;
            let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
            stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let answer = match read.await {
            Ok(body) => FrameCodec::<Response>::decode_body(&body)
                .map(|envelope: Envelope<Response>| envelope.body)
                .map_err(|error| error.to_string()),
            Err(error) => Err(format!("read: {error}")),
        };
        let failed = answer.is_err();
        answers.push(PipelinedAnswer {
            after: started.elapsed(),
            answer,
        });
        if failed {
            break;
        }
    }
    answers
}
