//! A committee across four "machines" (directories) with no secret leaving any of them: each
//! runs `quorum keygen`, their public keys and addresses go into a committee file, `quorum
//! genesis` builds the genesis from it, and four `quorum validator` processes on loopback serve
//! a client that commits transfers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write;

use common::{free_ports, quorum, start_validator, Validators};

const MACHINES: u16 = 4;

#[test]
fn committee_from_keygen_on_four_machines_commits_transfers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = free_ports(MACHINES);
    let machines: Vec<_> = (0..MACHINES)
        .map(|i| path.join(format!("machine-{i}")))
        .collect();

    // On each machine: a key and a configuration.
    let mut committee = String::from("chains = 2\n");
    for (i, machine) in (0..MACHINES).zip(&machines) {
        let address = format!("127.0.0.1:{}", base + i);
        quorum(
            path,
            &[
                "keygen",
                "--dir",
                machine.to_str().unwrap(),
                "--listen",
                &address,
            ],
        );
        let public = std::fs::read_to_string(machine.join("validator.pub")).unwrap();
        write!(
            committee,
            "\n[[validators]]\npublic_key = \"{}\"\naddress = \"{address}\"\n",
            public.trim()
        )
        .unwrap();
    }

    // On the coordinator's machine: the genesis from public keys only.
    let coordinator = path.join("coordinator");
    std::fs::create_dir_all(&coordinator).unwrap();
    let committee_file = coordinator.join("committee.toml");
    std::fs::write(&committee_file, &committee).unwrap();
    quorum(
        path,
        &[
            "genesis",
            "--committee",
            committee_file.to_str().unwrap(),
            "--dir",
            coordinator.to_str().unwrap(),
        ],
    );
    let readable = std::fs::read_to_string(coordinator.join("genesis.toml")).unwrap();
    for machine in &machines {
        let public = std::fs::read_to_string(machine.join("validator.pub")).unwrap();
        assert!(readable.contains(public.trim()), "{readable}");
        let secret = std::fs::read_to_string(machine.join("validator.key")).unwrap();
        for entry in std::fs::read_dir(&coordinator).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(secret.trim()));
        }
        std::fs::copy(coordinator.join("genesis.bcs"), machine.join("genesis.bcs")).unwrap();
    }

    let _validators = Validators(
        machines
            .iter()
            .map(|machine| start_validator(&machine.join("validator.toml")))
            .collect(),
    );
    let d = coordinator.to_str().unwrap();
    let said = quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "0", "--to", "1", "--amount", "5",
        ],
    );
    assert!(
        said.contains("transferred 5 from chain 0 to chain 1"),
        "{said}"
    );
    let said = quorum(path, &["client", "--dir", d, "receive", "--chain", "1"]);
    assert!(said.contains("chain 1 committed height 0"), "{said}");
    let info = quorum(path, &["client", "--dir", d, "info"]);
    assert!(info.contains("balance 1000005"), "{info}");
}
