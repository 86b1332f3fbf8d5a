//! Attack 9. Subscriptions (DESIGN §4.7.1): subscribers asking for far more than the caps
//! allow, and subscribers that never read what the validator pushes, while the honest traffic
//! commits blocks on the chains they follow. Besides the common checks (RSS within 256 MiB
//! of its level before, honest traffic within its bounds), every subscription beyond the caps
//! must be refused naming the cap.

use std::collections::BTreeSet;

use quorum_core::{ChainId, CryptoHash, SubscriptionLimit};

use super::*;

/// Chains in each subscription the attackers ask for.
const CHAINS_PER_SUBSCRIPTION: usize = 1_000;
/// How long an attacker waits for the answers to its subscriptions before it stops reading.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// How long the attacks are held (honest traffic meanwhile).
const SUBSCRIPTION_HOLD: Duration = Duration::from_secs(8);

/// What the subscribers got back.
#[derive(Debug, Default)]
struct Figures {
    /// Connections made.
    connected: usize,
    /// First answers to the subscriptions, by kind ("ok", or the cap that refused).
    answers: BTreeMap<String, usize>,
    /// Connections the server closed.
    closed: usize,
}

/// A subscription's chains: the genesis chains the honest traffic uses, then chains nobody
/// has, distinct per `salt`.
fn chains(committee: &Committee, salt: u64) -> Vec<ChainId> {
    let mut chains: Vec<ChainId> = committee.owners.iter().map(|(chain, _)| *chain).collect();
    let mut index = 0u64;
    while chains.len() < CHAINS_PER_SUBSCRIPTION {
        let mut bytes = [0xab; 32];
        bytes[..8].copy_from_slice(&salt.to_le_bytes());
        bytes[8..16].copy_from_slice(&index.to_le_bytes());
        chains.push(ChainId(CryptoHash(bytes)));
        index += 1;
    }
    chains
}

fn answer_kind(response: &Response) -> Option<String> {
    match response {
        Response::Subscribe(Ok(_)) => Some("ok".to_owned()),
        Response::Subscribe(Err(NodeError::SubscriptionLimit(limit))) => {
            Some(limit.name().to_owned())
        }
        Response::Subscribe(Err(error)) => Some(format!("{error:?}")),
        _ => None,
    }
}

/// One connection from `source` asking for `subscriptions` subscriptions (frames of
/// `requests`), reading until every one is answered (or [`ANSWER_WAIT`]), then never reading
/// again until stopped.
async fn subscriber(
    source: Ipv4Addr,
    target: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    mut stop: Stop,
) -> Figures {
    let mut figures = Figures::default();
    let Ok(stream) = connect_from(source, target).await else {
        return figures;
    };
    figures.connected = 1;
    let (mut read, mut write) = stream.into_split();
    let writing = async {
        for frame in requests.iter() {
            write.write_all(frame).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let reading = async {
        let mut answers = BTreeMap::<String, usize>::new();
        let mut answered = 0;
        while answered < requests.len() {
            let mut prefix = [0u8; LENGTH_PREFIX_LEN];
            if read.read_exact(&mut prefix).await.is_err() {
                return (answers, true);
            }
            let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
            if read.read_exact(&mut body).await.is_err() {
                return (answers, true);
            }
            if let Ok(envelope) = FrameCodec::<Response>::decode_body(&body) {
                if let Some(kind) = answer_kind(&envelope.body) {
                    *answers.entry(kind).or_default() += 1;
                    answered += 1;
                }
            }
        }
        (answers, false)
    };
    let ((answers, closed), _) = tokio::join!(
        async {
            tokio::time::timeout(ANSWER_WAIT, reading)
                .await
                .unwrap_or_default()
        },
        writing
    );
    figures.answers = answers;
    figures.closed = usize::from(closed);
    // Never read again: whatever the validator pushes stays with it.
    stopped(&mut stop).await;
    figures
}

/// Every subscriber of an attack: `per_connection` subscriptions on each of `connections`
/// connections of each address of `sources`.
async fn subscribers(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    connections: usize,
    requests: Vec<Arc<Vec<Vec<u8>>>>,
    stop: Stop,
) -> Figures {
    let count = sources.len() * connections;
    let tasks = (0..count).map(|c| {
        let source = sources[c / connections];
        subscriber(
            source,
            target,
            requests[c % requests.len()].clone(),
            stop.clone(),
        )
    });
    let mut all = Figures::default();
    for figures in join_all(tasks).await {
        all.connected += figures.connected;
        all.closed += figures.closed;
        for (kind, n) in figures.answers {
            *all.answers.entry(kind).or_default() += n;
        }
    }
    all
}

/// The frames of `count` subscriptions to [`CHAINS_PER_SUBSCRIPTION`] chains each, distinct
/// per `salt`.
fn subscribe_frames(committee: &Committee, count: usize, salt: u64) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        (0..count)
            .map(|i| {
                let chains = chains(committee, salt * 1_000_000 + i as u64);
                encode_request(i as u64, Request::Subscribe(chains))
            })
            .collect(),
    )
}

/// Runs one subscription attack and checks what it was answered against `accepted_at_most`.
fn subscription_row(
    name: &str,
    sources: Vec<Ipv4Addr>,
    connections: usize,
    per_connection: usize,
    accepted_at_most: usize,
) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let target = committee.target;
    let requests: Vec<Arc<Vec<Vec<u8>>>> = (0..sources.len() * connections)
        .map(|c| subscribe_frames(&committee, per_connection, c as u64))
        .collect();
    let asked = sources.len() * connections * per_connection;
    let attacker =
        Attacker::launch(move |stop| subscribers(target, sources, connections, requests, stop));
    let (mut row, figures) = measure(
        &mut committee,
        baseline,
        name,
        Hold::fixed(SUBSCRIPTION_HOLD),
        attacker,
    );
    let accepted = figures.answers.get("ok").copied().unwrap_or(0);
    let named: BTreeSet<&str> = [
        SubscriptionLimit::SubscriptionsPerConnection,
        SubscriptionLimit::SubscriptionsPerAddress,
        SubscriptionLimit::ChainsPerConnection,
        SubscriptionLimit::ChainsPerAddress,
        SubscriptionLimit::Subscriptions,
        SubscriptionLimit::Chains,
    ]
    .iter()
    .map(|limit| limit.name())
    .collect();
    let refused: usize = figures
        .answers
        .iter()
        .filter(|(kind, _)| named.contains(kind.as_str()))
        .map(|(_, n)| n)
        .sum();
    row.note(format!(
        "{} connections, {asked} subscriptions of {CHAINS_PER_SUBSCRIPTION} chains asked: answers {:?}; {} closed by the server",
        figures.connected, figures.answers, figures.closed
    ));
    row.check(
        accepted <= accepted_at_most,
        format!("{accepted} subscriptions accepted, more than the caps allow ({accepted_at_most})"),
    );
    row.check(
        accepted + refused == asked || figures.closed > 0,
        format!("{asked} asked, {accepted} accepted and {refused} refused by a named cap"),
    );
    row
}

/// One address asks for 1,000 subscriptions of 1,000 chains each on 8 connections and never
/// reads what is pushed: at most 16 are open (the per-address cap), every other is refused
/// naming its cap.
#[test]
fn a_thousand_subscriptions_from_one_address_never_reading() {
    let _serial = serial();
    let name = "9. 1 address × 8 connections × 125 subscriptions of 1,000 chains, never reading";
    let row = subscription_row(name, attacker_addresses(1), 8, 125, 16);
    row.finish();
}

/// Subscribers from 16 addresses in 16 /24s, 4 subscriptions of 1,000 chains each, never
/// reading.
#[test]
fn subscribers_from_16_groups_never_reading() {
    let _serial = serial();
    let name = "9a. 16 addresses in 16 /24s × 4 subscriptions of 1,000 chains, never reading";
    let sources = (1..=16).map(|g| Ipv4Addr::new(127, g, 0, 1)).collect();
    subscription_row(name, sources, 1, 4, 64).finish();
}

/// Subscribers from 1,016 addresses in 254 /24s, 4 subscriptions of 1,000 chains each, never
/// reading: the validator's own caps (2,048 subscriptions, 200,000 chains) refuse the rest.
#[test]
#[ignore = "heavy: 4,064 subscriptions of 1,000 chains from 1,016 addresses (run with --release)"]
fn subscribers_from_254_groups_never_reading() {
    let _serial = serial();
    let name = "9b. 1,016 addresses in 254 /24s × 4 subscriptions of 1,000 chains, never reading";
    let sources = (1..=254u8)
        .flat_map(|g| (1..=4u8).map(move |h| Ipv4Addr::new(127, g, 0, h)))
        .collect();
    subscription_row(name, sources, 1, 4, 200).finish();
}
