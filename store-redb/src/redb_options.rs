//! [`RedbOptions`]: how a [`crate::RedbStorage`] opens its file and commits.

/// How durable a committed write batch is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `write_batch` returns once the commit is on disk (fsync): a crash, even `kill -9` or a
    /// power loss, loses nothing that was acknowledged. The default.
    #[default]
    Immediate,
    /// `write_batch` returns once the commit is queued for the disk: faster, but a crash may
    /// lose the latest acknowledged batches (each one still all or nothing). For benchmarks and
    /// data that can be fetched again.
    Eventual,
}

impl From<Durability> for redb::Durability {
    fn from(durability: Durability) -> Self {
        match durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::Eventual => redb::Durability::Eventual,
        }
    }
}

/// Options of [`crate::RedbStorage::open_with`]. `RedbOptions::default()` is what
/// [`crate::RedbStorage::open`] uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedbOptions {
    /// Durability of each write batch's commit. Default: [`Durability::Immediate`].
    pub durability: Durability,
    /// Whether a missing (or empty) file is created as a new, empty database. With `false`,
    /// opening a path where no database exists fails. Default: `true`.
    pub create: bool,
    /// Memory redb may use to cache pages, in bytes (allocated as used). `None` keeps redb's
    /// default of 1 GiB.
    pub cache_size: Option<usize>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            durability: Durability::Immediate,
            create: true,
            cache_size: None,
        }
    }
}
