//! [`LogLiar`]: a validator that answers honestly except about received logs, which it
//! withholds or pads with entries of its own, signing its answers with its real key. It is a
//! [`Carrier`]: every request but the two it lies about is dispatched to the honest node.

use std::sync::Arc;

use async_trait::async_trait;

use quorum_core::protocol::{dispatch, Carrier, Request, Response};
use quorum_core::{
    ChainInfoQuery, ChainInfoResponse, NodeError, ReceivedEntry, ValidatorNode, ValidatorSecretKey,
};

/// What the liar does to received logs.
pub enum Lie {
    /// Answers every received-log query with an empty log.
    Withhold,
    /// Adds these entries after its honest log (and counts them in its length).
    Invent(Vec<ReceivedEntry>),
    /// Gives its log honestly, but answers every certificate download with nothing.
    HideCertificates,
}

/// A validator whose received logs lie as [`Lie`] says.
pub struct LogLiar {
    pub honest: Arc<dyn ValidatorNode>,
    pub key: ValidatorSecretKey,
    pub lie: Lie,
}

impl LogLiar {
    /// The honest answer to `query`, its received log changed as the lie says, signed again.
    async fn chain_info(&self, query: ChainInfoQuery) -> Result<ChainInfoResponse, NodeError> {
        let from = query.request_received_log_from;
        let response = self.honest.handle_chain_info_query(query).await?;
        let mut info = *response.info;
        match &self.lie {
            Lie::Withhold => {
                info.received_log_len = 0;
                info.requested_received_log.clear();
            }
            Lie::HideCertificates => {}
            Lie::Invent(extra) => {
                let honest_len = info.received_log_len;
                info.received_log_len = honest_len + extra.len() as u64;
                if let Some(from) = from {
                    let skip = from.saturating_sub(honest_len) as usize;
                    info.requested_received_log
                        .extend(extra.iter().skip(skip).copied());
                }
            }
        }
        Ok(ChainInfoResponse::new(info, Some(&self.key)))
    }
}

#[async_trait]
impl Carrier for LogLiar {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        Ok(match request {
            Request::ChainInfoQuery(query) => {
                Response::ChainInfoQuery(self.chain_info(*query).await)
            }
            Request::DownloadCertificatesByHeights { .. }
                if matches!(self.lie, Lie::HideCertificates) =>
            {
                Response::DownloadCertificatesByHeights(Ok(Vec::new()))
            }
            other => dispatch(self.honest.as_ref(), other).await,
        })
    }
}
