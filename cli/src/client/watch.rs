//! `quorum client watch`: prints what happens on chains as validators announce it (DESIGN
//! §4.7.1, §5.8 "Listening"): one line per committed block, incoming payment and round
//! change, after the local node has verified it (a notification alone changes and prints
//! nothing). With `--auto-receive`, payments to chains the wallet owns are taken in at once.
//!
//! Validators coming and going cost a line on standard error; with none reachable for
//! `--deadline-secs` the command fails saying so. Ctrl-C ends it with success.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use quorum_core::{BlockHeight, ChainId, Message, ReceivedEntry, ValidatorPublicKey};
use quorum_updater::{ListenEvent, Listener};
use tokio::time::Instant;

use crate::client::session::Session;
use crate::error::CliError;
use crate::wallet::{chain_hex, ChainArg};

/// `watch`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct WatchArgs {
    /// A chain to watch, by wallet index or id (repeatable; default: every chain of the
    /// wallet). A chain the wallet does not hold is watched read-only.
    #[arg(long)]
    pub chain: Vec<ChainArg>,
    /// Takes incoming payments into the chains the wallet owns as they arrive.
    #[arg(long)]
    pub auto_receive: bool,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Longest time, in seconds, with no validator reachable before the command fails.
    #[arg(long, default_value_t = 30)]
    pub deadline_secs: u64,
}

/// One line of output.
struct Line {
    chain: ChainId,
    kind: &'static str,
    /// Details, as (name, value) pairs.
    details: Vec<(&'static str, String)>,
}

impl Line {
    fn print(&self, json: bool) {
        let time = utc_now();
        if json {
            let mut object = serde_json::Map::new();
            object.insert("time".into(), time.into());
            object.insert("chain".into(), chain_hex(&self.chain).into());
            object.insert("kind".into(), self.kind.into());
            for (name, value) in &self.details {
                let value = value
                    .parse::<u64>()
                    .map_or_else(|_| serde_json::Value::from(value.clone()), Into::into);
                object.insert((*name).into(), value);
            }
            println!("{}", serde_json::Value::Object(object));
        } else {
            let details: Vec<String> = self
                .details
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            println!(
                "{time} {} {} {}",
                chain_hex(&self.chain),
                self.kind,
                details.join(" ")
            );
        }
    }
}

/// Runs `watch` until Ctrl-C, or until no validator was reachable for the deadline.
pub async fn watch(session: &Session, args: &WatchArgs) -> Result<(), CliError> {
    let chains: Vec<ChainId> = if args.chain.is_empty() {
        session.wallet.chains()?
    } else {
        args.chain
            .iter()
            .map(|arg| session.wallet.resolve(*arg))
            .collect::<Result<_, _>>()?
    };
    // Where the chains stand now: only what happens from here on is printed.
    session.synchronize(&chains, true).await?;
    let (listener, mut events) = Listener::start(&session.base, chains.iter().copied()).await?;
    eprintln!(
        "watching {} chains; Ctrl-C to stop",
        listener.chains().len()
    );
    let deadline = Duration::from_secs(args.deadline_secs.max(1));
    let mut connected: BTreeSet<ValidatorPublicKey> = BTreeSet::new();
    let mut unreachable_since = Some(Instant::now());
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let give_up = async {
            match unreachable_since {
                Some(since) => tokio::time::sleep_until(since + deadline).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            () = give_up => return Err(CliError::NoValidatorReachable(deadline)),
            event = events.next() => event,
        };
        let Some(event) = event else {
            return Ok(());
        };
        match event {
            ListenEvent::Connected(validator) => {
                if connected.insert(validator) {
                    eprintln!("validator {validator}: listening");
                }
                unreachable_since = None;
            }
            ListenEvent::Disconnected { validator, reason } => {
                if connected.remove(&validator) {
                    eprintln!("validator {validator}: {reason}; reconnecting");
                }
                if connected.is_empty() && unreachable_since.is_none() {
                    unreachable_since = Some(Instant::now());
                }
            }
            ListenEvent::FalseHint { validator, hint } => {
                eprintln!(
                    "validator {validator} signed a false notification ({hint:?}); ignoring it"
                );
            }
            ListenEvent::NewBlock {
                chain_id,
                height,
                hash,
            } => Line {
                chain: chain_id,
                kind: "block",
                details: vec![("height", height.0.to_string()), ("hash", hash.to_string())],
            }
            .print(args.json),
            ListenEvent::NewRound {
                chain_id,
                height,
                round,
            } => Line {
                chain: chain_id,
                kind: "round",
                details: vec![
                    ("height", height.0.to_string()),
                    ("round", format!("{round:?}")),
                ],
            }
            .print(args.json),
            ListenEvent::Received { chain_id, entry } => {
                received(session, chain_id, entry, args).await?;
            }
        }
    }
}

/// Prints a payment, and takes it in with `--auto-receive` when the wallet owns the chain.
async fn received(
    session: &Session,
    chain: ChainId,
    entry: ReceivedEntry,
    args: &WatchArgs,
) -> Result<(), CliError> {
    let amount = paid(session, chain, entry).await;
    Line {
        chain,
        kind: "payment",
        details: vec![
            ("from", chain_hex(&entry.origin)),
            ("sent_at", entry.height.0.to_string()),
            (
                "amount",
                amount.map_or_else(|| "?".to_owned(), |a| a.to_string()),
            ),
        ],
    }
    .print(args.json);
    if !args.auto_receive {
        return Ok(());
    }
    let Some(owner) = session.wallet.owner_of(chain)? else {
        return Ok(());
    };
    let client = session.base.for_chain(chain, Some(owner));
    match client.receive_messages().await {
        Ok(certificate) => Line {
            chain,
            kind: "received",
            details: vec![
                ("height", certificate.value().block().height.0.to_string()),
                (
                    "bundles",
                    certificate
                        .value()
                        .block()
                        .incoming_bundles
                        .len()
                        .to_string(),
                ),
            ],
        }
        .print(args.json),
        // Another payment's block may have taken this one in already.
        Err(error) => eprintln!(
            "chain {}: could not take payments in: {error}",
            chain_hex(&chain)
        ),
    }
    Ok(())
}

/// What the block of `entry` paid `chain`, from the certificate the local node holds.
async fn paid(session: &Session, chain: ChainId, entry: ReceivedEntry) -> Option<u64> {
    let heights: [BlockHeight; 1] = [entry.height];
    let certificates = session
        .local
        .storage()
        .read_certificates_by_heights(entry.origin, &heights)
        .await
        .ok()?;
    let certificate = certificates.into_iter().next().flatten()?;
    let bundle = certificate
        .value()
        .outcome()
        .messages
        .iter()
        .find(|bundle| bundle.recipient == chain)?;
    Some(
        bundle
            .messages
            .iter()
            .map(|message| match message {
                Message::Credit { amount } | Message::Return { amount } => *amount,
            })
            .fold(0u64, u64::saturating_add),
    )
}

/// The time now, UTC, as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn utc_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (the civil-from-days
/// conversion of H. Hinnant's date algorithms).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * shifted_month + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
