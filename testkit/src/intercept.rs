//! [`Intercepted`]: a validator that answers through an honest node, except where an
//! [`Interceptor`] answers in its place or changes the honest answer.
//!
//! It is a [`Carrier`], so it has every request of the protocol through the one
//! [`dispatch`]: a test names only the requests it twists, and a request added to the
//! protocol needs nothing here.

use std::sync::Arc;

use async_trait::async_trait;

use quorum_core::protocol::{dispatch, Carrier, Request, Response};
use quorum_core::{ChainId, NodeError, Subscription, ValidatorNode};

/// What a test changes about an honest validator. Both methods default to honesty.
pub trait Interceptor: Send + Sync {
    /// An answer in place of the honest node's, or `None` to ask the honest node.
    fn answer(&self, request: &Request) -> Option<Response> {
        let _ = request;
        None
    }

    /// The honest node's `response` to `request`, changed as the test wants.
    fn change(&self, request: &Request, response: Response) -> Response {
        let _ = request;
        response
    }
}

/// An honest node behind an [`Interceptor`]: a [`Carrier`] whose every request goes to the
/// honest node through the one [`dispatch`], unless the interceptor answers it first; the
/// honest answer passes through [`Interceptor::change`].
pub struct Intercepted<I> {
    honest: Arc<dyn ValidatorNode>,
    interceptor: I,
}

impl<I: Interceptor> Intercepted<I> {
    /// `honest`, twisted by `interceptor`.
    pub fn new(honest: Arc<dyn ValidatorNode>, interceptor: I) -> Self {
        Intercepted {
            honest,
            interceptor,
        }
    }

    /// The interceptor, to read what it counted.
    pub fn interceptor(&self) -> &I {
        &self.interceptor
    }
}

#[async_trait]
impl<I: Interceptor> Carrier for Intercepted<I> {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        if let Some(answer) = self.interceptor.answer(&request) {
            return Ok(answer);
        }
        let response = dispatch(self.honest.as_ref(), request.clone()).await;
        Ok(self.interceptor.change(&request, response))
    }

    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        self.honest.subscribe(chains).await
    }
}
