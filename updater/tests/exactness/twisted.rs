//! [`Twisted`]: an honest Worker, except where a scenario says otherwise (an [`Interceptor`]
//! of the test kit's [`Intercepted`]).

use std::sync::Arc;

use quorum_core::protocol::{Request, Response};
use quorum_core::{NodeError, TimeDelta};
use quorum_node::{Clock, MemoryStorage, Worker};
use quorum_testkit::{Intercepted, Interceptor};

/// What a scenario twists about an honest validator.
pub struct Twisted {
    /// The validator's clock, for the deadline it names.
    clock: Arc<dyn Clock>,
    /// Answers timeout requests with no vote and a deadline a year away.
    late_deadline: bool,
    /// Refuses every blob download.
    withhold_blobs: bool,
}

impl Twisted {
    /// `honest`, twisted as the flags say.
    pub fn new(
        honest: Arc<Worker<MemoryStorage>>,
        late_deadline: bool,
        withhold_blobs: bool,
    ) -> Arc<Intercepted<Twisted>> {
        let clock = honest.clock().clone();
        Arc::new(Intercepted::new(
            honest,
            Twisted {
                clock,
                late_deadline,
                withhold_blobs,
            },
        ))
    }
}

impl Interceptor for Twisted {
    fn answer(&self, request: &Request) -> Option<Response> {
        match request {
            Request::DownloadBlob(id) if self.withhold_blobs => {
                Some(Response::DownloadBlob(Err(NodeError::BlobsNotFound(vec![
                    *id,
                ]))))
            }
            _ => None,
        }
    }

    fn change(&self, request: &Request, response: Response) -> Response {
        match (request, response) {
            (Request::ChainInfoQuery(query), Response::ChainInfoQuery(Ok(mut answer)))
                if self.late_deadline && query.request_timeout.is_some() =>
            {
                let year = TimeDelta::from_secs(365 * 24 * 3600);
                answer.info.manager.timeout_vote = None;
                answer.info.manager.round_timeout = Some(self.clock.now().saturating_add(year));
                Response::ChainInfoQuery(Ok(answer))
            }
            (_, response) => response,
        }
    }
}
