//! Keys and configuration through the `quorum` binary: keys from the operating system's random
//! source unless a seed is asked for, key files private from the start and never overwritten, a
//! validator that refuses a key file others can read, and clear errors for bad TOML files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use quorum_core::ValidatorPublicKey;
use quorum_node::Genesis;

use common::{quorum, quorum_fails};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn genesis(dir: &Path) -> Genesis {
    bcs::from_bytes(&std::fs::read(dir.join("genesis.bcs")).unwrap()).unwrap()
}

fn validator_keys(dir: &Path) -> Vec<ValidatorPublicKey> {
    genesis(dir)
        .committee
        .validators()
        .map(|(k, _)| *k)
        .collect()
}

/// `quorum dev-genesis` into `DIR/name`, with extra arguments.
fn dev_genesis(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "dev-genesis",
        "--dir",
        out.to_str().unwrap(),
        "--chains",
        "2",
    ];
    args.extend_from_slice(extra);
    quorum(dir, &args);
    out
}

#[test]
fn dev_genesis_keys_differ_on_every_run_unless_a_seed_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let first = validator_keys(&dev_genesis(path, "a", &[]));
    let second = validator_keys(&dev_genesis(path, "b", &[]));
    assert_eq!(first.len(), 4);
    assert!(
        first.iter().all(|key| !second.contains(key)),
        "two runs without a seed share keys"
    );
    let seeded = validator_keys(&dev_genesis(path, "c", &["--insecure-seed", "42"]));
    let again = validator_keys(&dev_genesis(path, "d", &["--insecure-seed", "42"]));
    assert_eq!(seeded, again, "the same seed must give the same keys");
    assert!(seeded.iter().all(|key| !first.contains(key)));
    let help = quorum(path, &["dev-genesis", "--help"]);
    assert!(help.contains("insecure: for demos and tests"), "{help}");
}

#[test]
fn key_files_are_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let machine = path.join("machine");
    let d = machine.to_str().unwrap();
    let said = quorum(path, &["keygen", "--dir", d, "--listen", "127.0.0.1:9100"]);
    let key_file = machine.join("validator.key");
    assert_eq!(mode(&key_file), 0o600);
    let public = std::fs::read_to_string(machine.join("validator.pub")).unwrap();
    let public = public.trim();
    assert_eq!(public.len(), 64);
    assert!(
        said.contains(&format!("public_key = \"{public}\"")),
        "{said}"
    );
    assert!(said.contains("address = \"127.0.0.1:9100\""), "{said}");
    // The network key (DESIGN §6.2): private, its public half in the printed entry.
    assert_eq!(mode(&machine.join("network.key")), 0o600);
    let network = said
        .lines()
        .find_map(|line| line.strip_prefix("network_key = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no network_key in {said}"));
    assert!(
        network.parse::<quorum_core::NetworkPublicKey>().is_ok(),
        "{network}"
    );
    // The configuration keygen writes is TOML pointing at the key, the key not in it.
    let config: toml::Table = std::fs::read_to_string(machine.join("validator.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(config["listen"].as_str(), Some("127.0.0.1:9100"));
    assert_eq!(config["key_file"].as_str(), Some("validator.key"));
    assert_eq!(config["network_key_file"].as_str(), Some("network.key"));
    assert!(config.contains_key("limits"));
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert!(!std::fs::read_to_string(machine.join("validator.toml"))
        .unwrap()
        .contains(secret.trim()));

    // A second keygen refuses and leaves the key as it was.
    let error = quorum_fails(path, &["keygen", "--dir", d]);
    assert!(error.contains("validator.key already exists"), "{error}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), secret);

    // dev-genesis writes private key files and wallet, and refuses to write over them.
    let committee = dev_genesis(path, "committee", &[]);
    for index in 0..4 {
        for file in [
            format!("validator-{index}.key"),
            format!("validator-{index}.network.key"),
        ] {
            assert_eq!(mode(&committee.join(file)), 0o600);
        }
    }
    assert_eq!(mode(&committee.join("wallet.bcs")), 0o600);
    let error = quorum_fails(path, &["dev-genesis", "--dir", committee.to_str().unwrap()]);
    assert!(error.contains("already exists"), "{error}");
}

#[test]
fn a_quic_validator_refuses_a_network_key_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = common::free_ports(1).to_string();
    let quic = [
        "--validators",
        "1",
        "--base-port",
        &base,
        "--transport",
        "quic",
    ];
    let committee = dev_genesis(path, "c", &quic);
    let key_file = committee.join("validator-0.network.key");
    let config = committee.join("validator-0.toml");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = quorum_fails(path, &["validator", "--config", config.to_str().unwrap()]);
    assert!(error.contains(key_file.to_str().unwrap()), "{error}");
}

#[test]
fn validator_refuses_a_key_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = common::free_ports(1).to_string();
    let committee = dev_genesis(path, "c", &["--validators", "1", "--base-port", &base]);
    let key_file = committee.join("validator-0.key");
    let config = committee.join("validator-0.toml");
    for bad in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(bad)).unwrap();
        let error = quorum_fails(path, &["validator", "--config", config.to_str().unwrap()]);
        assert!(error.contains(key_file.to_str().unwrap()), "{error}");
        assert!(
            error.contains(&format!("chmod 600 {}", key_file.display())),
            "{error}"
        );
    }
}

#[test]
fn bad_toml_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();

    // A misspelt field in a validator configuration.
    let config = path.join("validator.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\nstorage = \"v.redb\"\nkeyfile = \"v.key\"\n",
    )
    .unwrap();
    let error = quorum_fails(path, &["validator", "--config", config.to_str().unwrap()]);
    assert!(error.contains("validator.toml"), "{error}");
    assert!(error.contains("invalid validator configuration"), "{error}");
    assert!(error.contains("keyfile"), "{error}");
    assert!(error.contains("line 3"), "{error}");

    // A limit out of range.
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\nstorage = \"v.redb\"\nkey_file = \"v.key\"\n\
         [limits]\nmax_in_flight_per_connection = 0\n",
    )
    .unwrap();
    let error = quorum_fails(path, &["validator", "--config", config.to_str().unwrap()]);
    assert!(
        error.contains("max_in_flight_per_connection must be at least 1"),
        "{error}"
    );

    // A committee file with a public key that is not hex.
    let committee = path.join("committee.toml");
    std::fs::write(
        &committee,
        "chains = 1\n\n[[validators]]\npublic_key = \"not-hex\"\naddress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = path.join("out");
    let args = [
        "genesis",
        "--committee",
        committee.to_str().unwrap(),
        "--dir",
        out.to_str().unwrap(),
    ];
    let error = quorum_fails(path, &args);
    assert!(error.contains("committee.toml"), "{error}");
    assert!(error.contains("invalid public key"), "{error}");
    assert!(error.contains("line 4"), "{error}");
    assert!(!out.join("genesis.bcs").exists());
}
