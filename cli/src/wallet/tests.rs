//! The wallet database, its portable form, chain arguments and the lock.

use std::path::Path;
use std::time::Duration;

use super::*;
use rand::SeedableRng;

fn key(seed: u64) -> AccountSecretKey {
    AccountSecretKey::generate(&mut rand::rngs::StdRng::seed_from_u64(seed))
}

fn chain(byte: u8) -> ChainId {
    ChainId(CryptoHash([byte; 32]))
}

fn no_admin() -> Result<ChainId, CliError> {
    panic!("the admin chain is asked for only when importing")
}

#[test]
fn a_wallet_keeps_chains_and_keys_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::create(dir.path(), chain(0), &PortableWallet::default()).unwrap();
    wallet.add_key(&key(1)).unwrap();
    assert_eq!(wallet.add_chain(chain(1), Some(&key(2))).unwrap(), 0);
    assert_eq!(wallet.add_chain(chain(2), None).unwrap(), 1);
    // Following again attaches a key, and keeps the index.
    assert_eq!(wallet.add_chain(chain(2), Some(&key(1))).unwrap(), 1);
    drop(wallet);
    let wallet = Wallet::open(dir.path(), no_admin).unwrap();
    assert_eq!(wallet.admin_chain().unwrap(), chain(0));
    assert_eq!(wallet.chains().unwrap(), vec![chain(1), chain(2)]);
    assert_eq!(wallet.resolve(ChainArg::Index(1)).unwrap(), chain(2));
    let owner = wallet.owner_of(chain(2)).unwrap().map(|k| k.public());
    assert_eq!(owner, Some(key(1).public()));
    assert!(wallet.secret_of(&key(1).public()).unwrap().is_some());
    assert!(wallet.secret_of(&key(9).public()).unwrap().is_none());
    let mode = std::fs::metadata(dir.path().join(WALLET_DB_FILE))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        SECRET_FILE_MODE
    );
    assert!(matches!(
        Wallet::create(dir.path(), chain(0), &PortableWallet::default()),
        Err(CliError::AlreadyExists { .. })
    ));
    let validator = |byte| ValidatorPublicKey::from_bytes([byte; 32]);
    assert!(wallet.cursors(chain(1)).unwrap().is_empty());
    wallet
        .save_cursors(chain(1), &[(validator(1), 5), (validator(2), 7)])
        .unwrap();
    wallet.save_cursors(chain(2), &[(validator(1), 9)]).unwrap();
    wallet.save_cursors(chain(1), &[(validator(1), 6)]).unwrap();
    assert_eq!(
        wallet.cursors(chain(1)).unwrap(),
        vec![(validator(1), 6), (validator(2), 7)]
    );
    assert_eq!(wallet.cursors(chain(2)).unwrap(), vec![(validator(1), 9)]);
}

#[test]
fn portable_wallets_of_both_layouts_are_imported_once() {
    for legacy in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let bytes = if legacy {
            bcs::to_bytes(&vec![(chain(3), key(3))]).unwrap()
        } else {
            let portable = PortableWallet {
                chains: vec![WalletChain {
                    chain_id: chain(3),
                    owner: Some(key(3)),
                }],
                keys: vec![key(4)],
            };
            portable.encode(Path::new("wallet.bcs")).unwrap()
        };
        std::fs::write(dir.path().join(WALLET_FILE), bytes).unwrap();
        let wallet = Wallet::open(dir.path(), || Ok(chain(0))).unwrap();
        assert_eq!(wallet.chains().unwrap(), vec![chain(3)]);
        let owner = wallet.owner_of(chain(3)).unwrap().map(|k| k.public());
        assert_eq!(owner, Some(key(3).public()));
        assert_eq!(
            wallet.secret_of(&key(4).public()).unwrap().is_some(),
            !legacy
        );
        drop(wallet);
        // Imported: the portable file is not read again.
        std::fs::write(dir.path().join(WALLET_FILE), b"garbage").unwrap();
        assert!(Wallet::open(dir.path(), no_admin).is_ok());
    }
}

#[test]
fn chain_arguments_are_indices_or_ids() {
    assert_eq!("3".parse::<ChainArg>().unwrap(), ChainArg::Index(3));
    let hex = chain_hex(&chain(0xab));
    assert_eq!(hex.parse::<ChainArg>().unwrap(), ChainArg::Id(chain(0xab)));
    for bad in ["", "-1", "abc", &hex[..62], "zz"] {
        assert!(bad.parse::<ChainArg>().is_err(), "{bad:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::create(dir.path(), chain(0), &PortableWallet::default()).unwrap();
    assert!(matches!(
        wallet.resolve(ChainArg::Index(0)),
        Err(CliError::NoSuchChain {
            index: 0,
            chains: 0
        })
    ));
    assert!(matches!(
        wallet.owned(ChainArg::Id(chain(1))),
        Err(CliError::NotOwned(_))
    ));
}

#[test]
fn a_second_holder_of_the_lock_waits_then_is_told_the_wallet_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let first = WalletLock::acquire(dir.path(), Duration::ZERO).unwrap();
    let second = WalletLock::acquire(dir.path(), Duration::from_millis(50));
    assert!(matches!(second, Err(CliError::WalletBusy(_))));
    drop(first);
    WalletLock::acquire(dir.path(), Duration::ZERO).unwrap();
}
