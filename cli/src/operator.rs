//! The operator wing: what the person who runs a validator does.
//!
//! * `keygen`, `genesis` and `setup`: keys, a committee's genesis, and the files of a
//!   development committee (`quorum keygen`, `quorum genesis`, `quorum dev-genesis`).
//! * `committee_file`, `validator_config`, `storage_config` and `shards_config`: the TOML files
//!   an operator edits.
//! * `validator`: `quorum validator`, alone or sharded, with its listeners; `metrics_server`
//!   serves its `/metrics`.
//! * `byzantine` and `testing_clock`: the testing options of `quorum validator`, which say so.

pub(crate) mod byzantine;
pub(crate) mod committee_file;
pub(crate) mod genesis;
pub(crate) mod keygen;
pub(crate) mod metrics_server;
pub(crate) mod setup;
pub(crate) mod shards_config;
pub(crate) mod storage_config;
pub(crate) mod testing_clock;
pub(crate) mod validator;
pub(crate) mod validator_config;
