//! [`observe`]: asks one validator, through any [`ValidatorNode`], for everything the checker
//! reads about the run's chains.

use std::collections::BTreeMap;
use std::time::Duration;

use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, Committee, Limits, NodeError, ValidatorNode,
};

use crate::evidence::{BlockRecord, ChainView, ValidatorView};

/// Bounds of [`observe`]; [`Default`] gives the protocol's batch size and 10 s per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherConfig {
    /// Certificates asked for in one request (default the protocol's
    /// `max_certificates_per_batch`).
    pub batch: usize,
    /// The longest one request may take before the validator counts as unreachable
    /// (default 10 s).
    pub request_timeout: Duration,
}

impl Default for GatherConfig {
    fn default() -> Self {
        GatherConfig {
            batch: Limits::DEFAULT.max_certificates_per_batch,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What `node` (called `name` in reports) says about each of `chains`: its balance, next
/// height and tip, and every certified block below its next height, each certificate's
/// signatures checked against `committee`. A request that fails or times out ends the
/// questioning, and the view says why in [`ValidatorView::unreachable`].
pub async fn observe(
    name: String,
    node: &dyn ValidatorNode,
    chains: &[ChainId],
    committee: &Committee,
    config: GatherConfig,
) -> ValidatorView {
    let mut view = ValidatorView {
        name,
        chains: BTreeMap::new(),
        unreachable: None,
    };
    for chain in chains {
        match observe_chain(node, *chain, committee, config).await {
            Ok(chain_view) => {
                view.chains.insert(*chain, chain_view);
            }
            Err(error) => {
                view.unreachable = Some(format!("chain {chain}: {error}"));
                break;
            }
        }
    }
    view
}

/// `request` within `timeout`, a timeout being [`NodeError::Timeout`].
async fn within<T>(
    timeout: Duration,
    request: impl std::future::Future<Output = Result<T, NodeError>>,
) -> Result<T, NodeError> {
    tokio::time::timeout(timeout, request)
        .await
        .unwrap_or(Err(NodeError::Timeout))
}

async fn observe_chain(
    node: &dyn ValidatorNode,
    chain: ChainId,
    committee: &Committee,
    config: GatherConfig,
) -> Result<ChainView, NodeError> {
    let info = within(
        config.request_timeout,
        node.handle_chain_info_query(ChainInfoQuery::new(chain)),
    )
    .await?
    .info;
    let mut blocks = BTreeMap::new();
    let heights: Vec<BlockHeight> = (0..info.next_block_height.0).map(BlockHeight).collect();
    for batch in heights.chunks(config.batch.max(1)) {
        let certificates = within(
            config.request_timeout,
            node.download_certificates_by_heights(chain, batch.to_vec()),
        )
        .await?;
        for certificate in certificates {
            let block = certificate.value().inner().block();
            // A certificate of another chain, or of a height not asked, is not this chain's.
            if block.chain_id != chain || !batch.contains(&block.height) {
                continue;
            }
            let certified = certificate.check(committee).is_ok();
            let record = BlockRecord::of(&certificate, certified);
            blocks.insert(record.height, record);
        }
    }
    Ok(ChainView {
        balance: info.balance,
        next_height: info.next_block_height,
        tip: info.block_hash,
        blocks,
    })
}
