//! `quorum keygen`: a validator's keys made on the machine that will run it, from the
//! operating system's random source, with its configuration and committee entry (the key
//! files themselves are [`crate::keys`]').

use std::path::PathBuf;

use rand::rngs::OsRng;

use quorum_core::ValidatorSecretKey;

use crate::error::CliError;
use crate::files::{ensure_absent, write_new, GENESIS_FILE};
use crate::keys::{
    generate_network_key, write_network_key, write_validator_key, CONFIG_FILE, DATABASE_FILE,
    KEY_FILE, NETWORK_KEY_FILE, PUBLIC_KEY_FILE,
};
use crate::operator::validator_config::ValidatorConfig;

/// `quorum keygen`: makes a validator key on the machine that will run the validator.
#[derive(Clone, Debug, clap::Args)]
pub struct KeygenArgs {
    /// Directory to write into (created if missing): `validator.key` and `network.key`
    /// (secrets, mode 0600), `validator.pub` and, with `--listen`, `validator.toml`.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Address the validator will listen on, e.g. `0.0.0.0:9100` (TCP) or
    /// `quic://0.0.0.0:9100`; also writes a configuration `validator.toml` using the new keys.
    #[arg(long)]
    pub listen: Option<String>,
    /// Address other machines reach the validator at, for the committee file (default: the
    /// `--listen` address).
    #[arg(long)]
    pub address: Option<String>,
}

/// Makes a validator key from the operating system's random source, writes it and its public
/// key, and prints the committee file entry.
pub fn keygen(args: &KeygenArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.dir).map_err(|source| CliError::File {
        path: args.dir.clone(),
        source,
    })?;
    let key_path = args.dir.join(KEY_FILE);
    let network_path = args.dir.join(NETWORK_KEY_FILE);
    let public_path = args.dir.join(PUBLIC_KEY_FILE);
    let config_path = args.dir.join(CONFIG_FILE);
    let mut outputs = vec![key_path.as_path(), network_path.as_path()];
    if args.listen.is_some() {
        outputs.push(config_path.as_path());
    }
    ensure_absent(outputs)?;
    let key = ValidatorSecretKey::generate(&mut OsRng);
    write_validator_key(&key_path, &key)?;
    let network = generate_network_key(&mut OsRng);
    write_network_key(&network_path, &network)?;
    let public = key.public();
    std::fs::write(&public_path, format!("{public}\n")).map_err(|source| CliError::File {
        path: public_path.clone(),
        source,
    })?;
    println!(
        "wrote {} and {} (secrets, mode 0600: keep them on this machine)",
        key_path.display(),
        network_path.display()
    );
    println!("wrote {}", public_path.display());
    if let Some(listen) = &args.listen {
        let mut config = ValidatorConfig::new(
            listen.clone(),
            PathBuf::from(DATABASE_FILE),
            PathBuf::from(KEY_FILE),
            PathBuf::from(GENESIS_FILE),
        );
        config.network_key_file = Some(PathBuf::from(NETWORK_KEY_FILE));
        write_new(&config_path, &config.to_toml()?)?;
        println!("wrote {}", config_path.display());
    }
    let address = args
        .address
        .as_deref()
        .or(args.listen.as_deref())
        .unwrap_or("HOST:PORT");
    let network_public = network.public();
    println!("public key: {public}");
    println!("network key: {network_public}");
    println!("add this validator to the committee file:\n");
    println!(
        "[[validators]]\npublic_key = \"{public}\"\nnetwork_key = \"{network_public}\"\n\
         address = \"{address}\"\nvotes = 1"
    );
    Ok(())
}
