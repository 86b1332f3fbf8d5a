//! Prints the tables of BENCHMARKS.md from the last `cargo bench -p quorum-benches` run: each
//! figure beside its floor, the ratio, the target and whether it is met.
//!
//! Reads criterion's estimates (`<target>/criterion/<group>/<bench>/new/estimates.json`, the
//! median of the samples, which shrugs off the odd sample hit by another process). The
//! directory is the first argument, else `$CARGO_TARGET_DIR/criterion`, else the workspace's
//! `target/criterion`.
//!
//! ```sh
//! cargo run --release -p quorum-benches --bin report
//! ```

use std::path::PathBuf;

use quorum_benches::quorum::{ideal, scenario_id, Spread, ALLOWANCE, SIZES};
use quorum_benches::sync::LAG;
use quorum_benches::throughput::{Rounds, CHAIN_COUNTS, FLOOR_BLOCKS};

/// Where criterion wrote its results.
fn criterion_dir() -> PathBuf {
    match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => quorum_benches::criterion_dir(),
    }
}

/// The results of one run.
struct Results {
    dir: PathBuf,
    missing: Vec<String>,
}

impl Results {
    /// The median time of bench `id` (`group/bench[/parameter]`) in nanoseconds, if it ran.
    fn median(&mut self, id: &str) -> Option<f64> {
        let path = self.dir.join(id).join("new/estimates.json");
        let value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| json["median"]["point_estimate"].as_f64());
        if value.is_none() {
            self.missing.push(id.to_owned());
        }
        value
    }
}

/// A duration in nanoseconds, in a readable unit.
fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**not met**"
    }
}

/// A row comparing `ours` with `floor` where the target is `ratio ≤ max` (times).
fn at_most(
    results: &mut Results,
    what: &str,
    ours: &str,
    floor: &str,
    max: f64,
) -> Option<(f64, f64)> {
    let (o, f) = (results.median(ours)?, results.median(floor)?);
    let ratio = o / f;
    println!(
        "| {what} | {} | {} | {ratio:.2} | ≤ {max} | {} |",
        time(o),
        time(f),
        met(ratio <= max)
    );
    Some((o, f))
}

fn certificate(results: &mut Results) {
    println!("\n### 1. Certificate check (100 validators, 67 signatures)\n");
    println!("| ours | ours | floor | ratio | target | |\n|---|---|---|---|---|---|");
    let ours = "certificate_check_100/ours_certificate_check";
    at_most(
        results,
        "`Certificate::check` vs raw `ed25519_dalek::verify_batch`",
        ours,
        "certificate_check_100/floor_raw_verify_batch",
        1.1,
    );
    at_most(
        results,
        "`Certificate::check` vs 67 × `verify_strict`",
        ours,
        "certificate_check_100/floor_67_verify_strict",
        0.6,
    );
}

fn tally(results: &mut Results) {
    println!("\n### 2. Quorum tally (100 answers, 100 validators)\n");
    println!(
        "| ours | ours (100 answers) | per answer | floor (100 answers) | ratio | target | |\n\
         |---|---|---|---|---|---|---|"
    );
    let hash = results.median("tally_100/floor_hashmap_sum");
    let btree = results.median("tally_100/floor_btreemap_sum");
    if let (Some(hash), Some(btree)) = (hash, btree) {
        println!(
            "| floors | | | HashMap {} · BTreeMap {} (the faster is the floor) | | | |",
            time(hash),
            time(btree)
        );
    }
    let floor = match (hash, btree) {
        (Some(a), Some(b)) => a.min(b),
        _ => return,
    };
    for (what, id) in [
        ("new + 100 × insert", "tally_100/ours_tally_insert"),
        (
            "new + 100 × insert + finish",
            "tally_100/ours_tally_insert_finish",
        ),
    ] {
        let Some(ours) = results.median(id) else {
            continue;
        };
        let per_answer = ours / 100.0;
        let ratio = ours / floor;
        println!(
            "| {what} | {} | {} | {} | {ratio:.2} | ≤ 1.5 and < 200 ns/answer | ratio {}, per answer {} |",
            time(ours),
            time(per_answer),
            time(floor),
            met(ratio <= 1.5),
            met(per_answer < 200.0)
        );
    }
}

fn quorum(results: &mut Results) {
    println!("\n### 3. communicate_with_quorum over transport-mem (real time)\n");
    println!(
        "| scenario | ideal (q-th × 1.2) | best possible | ours: chain info | ours: trivial | \
         skeleton, tokio timers | skeleton, precise timers | chain info − ideal | trivial − ideal | \
         target: ≤ ideal + 1 ms |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for n in SIZES {
        for spread in Spread::ALL {
            let id = scenario_id(spread, n);
            let ideal = ideal(&spread.delays(n));
            let get = |results: &mut Results, name: &str| {
                results.median(&format!("quorum_mem/{name}/{id}"))
            };
            let (Some(info), Some(trivial), Some(bare), Some(precise)) = (
                get(results, "ours_chain_info"),
                get(results, "ours_trivial"),
                get(results, "floor_bare_timers"),
                get(results, "floor_precise_timers"),
            ) else {
                continue;
            };
            let ideal_ns = ideal.quorum_plus_grace.as_nanos() as f64;
            let limit = (ideal.quorum_plus_grace + ALLOWANCE).as_nanos() as f64;
            println!(
                "| {id} | {} | {} | {} | {} | {} | {} | {:+.2} ms | {:+.2} ms | chain info {}, trivial {} |",
                time(ideal_ns),
                time(ideal.best.as_nanos() as f64),
                time(info),
                time(trivial),
                time(bare),
                time(precise),
                (info - ideal_ns) / 1e6,
                (trivial - ideal_ns) / 1e6,
                met(info <= limit),
                met(trivial <= limit)
            );
        }
    }
}

fn sync(results: &mut Results) {
    println!("\n### 4. Syncing a validator that lags by {LAG} blocks (committee of 4)\n");
    let one = results.median("sync_1000/floor_direct_one_by_one");
    let batched = results.median("sync_1000/floor_direct_batched");
    let (Some(one), Some(batched)) = (one, batched) else {
        return;
    };
    let floor = one.min(batched);
    let rate = |ns: f64| LAG as f64 / (ns / 1e9);
    println!(
        "Floor: the Worker handed the certificates directly: one call each {} ({:.0} certificates/s), \
         in batches of 500 {} ({:.0}/s); the faster is the floor.\n",
        time(one),
        rate(one),
        time(batched),
        rate(batched)
    );
    println!(
        "| path | time | certificates/s | floor/s | ratio | target | |\n|---|---|---|---|---|---|---|"
    );
    for (what, id, target) in [
        (
            "transport-mem, batched (updater)",
            "ours_mem_batched",
            Some(0.8),
        ),
        (
            "transport-mem with BCS round trips, batched (updater)",
            "ours_mem_bcs_batched",
            Some(0.8),
        ),
        (
            "transport-mem, one at a time (baseline)",
            "baseline_mem_one_at_a_time",
            None,
        ),
        (
            "TCP loopback, batched (updater)",
            "ours_tcp_batched",
            Some(0.7),
        ),
        (
            "TCP loopback, one at a time (baseline)",
            "baseline_tcp_one_at_a_time",
            None,
        ),
    ] {
        let Some(ours) = results.median(&format!("sync_1000/{id}")) else {
            continue;
        };
        let ratio = floor / ours;
        let (target, verdict) = match target {
            Some(min) => (format!("≥ {min}"), met(ratio >= min).to_owned()),
            None => ("baseline".to_owned(), "(no target)".to_owned()),
        };
        println!(
            "| {what} | {} | {:.0} | {:.0} | {ratio:.2} | {target} | {verdict} |",
            time(ours),
            rate(ours),
            rate(floor)
        );
    }
}

fn tcp(results: &mut Results) {
    println!("\n### 5. TCP loopback\n");
    println!("| ours | ours | floor | ratio | target | |\n|---|---|---|---|---|---|");
    for size in ["64b", "16kib"] {
        for (message, id) in [
            ("`Vec<u8>`", "ours_client_server"),
            ("byte string", "ours_client_server_bytes_payload"),
        ] {
            at_most(
                results,
                &format!("one round trip, {size} {message} message, vs bare tokio echo"),
                &format!("tcp_round_trip_{size}/{id}"),
                &format!("tcp_round_trip_{size}/floor_bare_tokio_echo"),
                2.0,
            );
        }
    }
    let one = results.median("tcp_in_flight_64/ours_one_at_a_time");
    let many = results.median("tcp_in_flight_64/ours_64_in_flight");
    if let (Some(one), Some(many)) = (one, many) {
        let per_second = |ns: f64| 64.0 / (ns / 1e9);
        let ratio = one / many;
        println!(
            "| 64 in flight on one connection vs one at a time (requests/s) | {:.0}/s | {:.0}/s | {ratio:.2} | ≥ 3 | {} |",
            per_second(many),
            per_second(one),
            met(ratio >= 3.0)
        );
    }
    let bare_one = results.median("tcp_in_flight_64/bare_echo_one_at_a_time");
    let bare_many = results.median("tcp_in_flight_64/bare_echo_64_pipelined");
    if let (Some(one), Some(many)) = (bare_one, bare_many) {
        println!(
            "| (context) bare echo: 64 pipelined vs one at a time | {:.0}/s | {:.0}/s | {:.2} | | |",
            64.0 / (many / 1e9),
            64.0 / (one / 1e9),
            one / many
        );
    }
}

fn redb(results: &mut Results) {
    println!("\n### 6. redb: a block's write batch\n");
    let paired = std::fs::read_to_string(results.dir.join("redb_block_batch/paired.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    println!("| ours | ours | floor | ratio | target | |\n|---|---|---|---|---|---|");
    for durability in ["immediate", "eventual"] {
        if let Some(pair) = paired.as_ref().map(|json| &json[durability]) {
            if let (Some(ours), Some(floor)) = (
                pair["ours_median_ns"].as_f64(),
                pair["floor_median_ns"].as_f64(),
            ) {
                let ratio = ours / floor;
                println!(
                    "| `RedbStorage::write_batch` vs raw transaction, durability {durability}, \
                     interleaved pairs (judged) | {} | {} | {ratio:.2} | ≤ 1.3 | {} |",
                    time(ours),
                    time(floor),
                    met(ratio <= 1.3)
                );
            }
        }
        let ours = format!("redb_block_batch/ours_write_batch_{durability}");
        let floor = format!("redb_block_batch/floor_raw_redb_{durability}");
        if let (Some(o), Some(f)) = (results.median(&ours), results.median(&floor)) {
            println!(
                "| same, criterion's separate runs | {} | {} | {:.2} | | |",
                time(o),
                time(f),
                o / f
            );
        }
        for (what, id) in [
            ("part: floor + BCS encoding", "part_encode_and_raw_redb"),
            (
                "part: floor on the blocking pool, from a task",
                "part_raw_redb_via_spawn_blocking",
            ),
        ] {
            let part = format!("redb_block_batch/{id}_{durability}");
            if let (Some(p), Some(f)) = (results.median(&part), results.median(&floor)) {
                println!("| {what} | {} | {} | {:.2} | | |", time(p), time(f), p / f);
            }
        }
    }
}

fn hashing(results: &mut Results) {
    println!("\n### DESIGN §9 (no target in issue 6): BCS + hash vs raw hash\n");
    println!(
        "| value | `CryptoHash::new` | raw SHA-256 of the same bytes | ratio | naive `bcs::to_bytes` + SHA-256 |\n\
         |---|---|---|---|---|"
    );
    for value in ["block_1_event", "block_100_transfers", "block_64k_event"] {
        let ours = results.median(&format!("hash_{value}/ours_cryptohash_new"));
        let raw = results.median(&format!("hash_{value}/floor_raw_sha256"));
        let naive = results.median(&format!("hash_{value}/naive_bcs_then_sha256"));
        if let (Some(ours), Some(raw), Some(naive)) = (ours, raw, naive) {
            println!(
                "| {value} | {} | {} | {:.2} | {} |",
                time(ours),
                time(raw),
                ours / raw,
                time(naive)
            );
        }
    }
}

/// Throughput (DESIGN §9): every rate the committee reached beside the floor's rate on this
/// machine's cores (run the report where the bench ran). Returns whether the floor held: no
/// run may beat it.
fn throughput(results: &mut Results) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n### Throughput against its floor ({cores} cores)\n\n\
         | rounds | chains | blocks/s | floor blocks/s | of the floor | storage per block, apart | |\n\
         |---|---|---|---|---|---|---|"
    );
    let mut held = true;
    for rounds in [Rounds::Fast, Rounds::TwoPhase] {
        let name = rounds.name();
        let floor = results.median(&format!("throughput/cpu_floor_64_blocks_one_core_{name}"));
        let storage = results.median(&format!("throughput/storage_group_commit_64_blocks_{name}"));
        let Some(floor) = floor else { continue };
        let blocks = FLOOR_BLOCKS as f64;
        let floor_rate = cores as f64 * blocks * 1e9 / floor;
        let storage = storage.map_or("—".to_owned(), |ns| time(ns / blocks));
        for chains in CHAIN_COUNTS {
            let id = format!("throughput/tcp_redb_4_validators_{name}_{chains}_chains");
            let Some(ns) = results.median(&id) else {
                continue;
            };
            let rate = chains as f64 * 1e9 / ns;
            let holds = rate <= floor_rate;
            held &= holds;
            println!(
                "| {name} | {chains} | {rate:.0} | {floor_rate:.0} | {:.2}× | {storage} | {} |",
                rate / floor_rate,
                if holds {
                    "floor holds"
                } else {
                    "**beats the floor**"
                }
            );
        }
    }
    held
}

fn main() {
    let mut results = Results {
        dir: criterion_dir(),
        missing: Vec::new(),
    };
    println!(
        "Figures: medians of criterion's samples, from {}.",
        results.dir.display()
    );
    certificate(&mut results);
    tally(&mut results);
    quorum(&mut results);
    sync(&mut results);
    tcp(&mut results);
    redb(&mut results);
    hashing(&mut results);
    let floor_held = throughput(&mut results);
    if !results.missing.is_empty() {
        println!(
            "\nNot run (no estimates found): {}",
            results.missing.join(", ")
        );
    }
    if !floor_held {
        eprintln!("a run of the committee beat the throughput floor: the floor is not a floor");
        std::process::exit(1);
    }
}
