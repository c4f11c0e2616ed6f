//! Amazon SQS (`AmazonSQS`, AWS JSON 1.0): standard queues, persistent in
//! the store per account and region, at-least-once.
//!
//! Long polls hold nothing while they wait but a slot in [`PollSlots`]: no
//! store connection (each look is a fresh read) and no request-body budget
//! (the server releases it once a ReceiveMessage body is read). A send
//! wakes the queue's waiting polls at once.

pub mod errors;
pub mod messages;
pub mod queues;

pub use errors::query_compatible;

use berth_core::pagination::TokenCodec;
use berth_store::{Scope, Store};
use berth_wire::sqs::*;
use berth_wire::{ApiError, RequestContext};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Long polls that may wait at once, per account and in all.
pub const POLLS_PER_ACCOUNT: usize = 256;
pub const POLLS_IN_ALL: usize = 4096;

#[derive(Clone)]
pub struct Sqs {
    store: Arc<dyn Store>,
    tokens: TokenCodec,
    /// What queue URLs start with: berth's own endpoint.
    endpoint: String,
    pub(crate) waiters: Waiters,
    polls: PollSlots,
}

impl Sqs {
    pub fn new(store: Arc<dyn Store>, token_key: Vec<u8>, endpoint: &str) -> Sqs {
        Sqs {
            store,
            tokens: TokenCodec::new(token_key),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            waiters: Waiters::default(),
            polls: PollSlots::new(POLLS_PER_ACCOUNT, POLLS_IN_ALL),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A queue generation's key: account, region, generation.
type QueueKey = (String, String, String);

/// One `Notify` per queue generation that has had a waiting poll.
#[derive(Clone, Default)]
pub(crate) struct Waiters(Arc<Mutex<HashMap<QueueKey, Arc<Notify>>>>);

impl Waiters {
    fn key(sc: &Scope, generation: &str) -> QueueKey {
        (
            sc.account.clone(),
            sc.region.clone(),
            generation.to_string(),
        )
    }

    pub fn get(&self, sc: &Scope, generation: &str) -> Arc<Notify> {
        self.0
            .lock()
            .entry(Self::key(sc, generation))
            .or_default()
            .clone()
    }

    pub fn wake(&self, sc: &Scope, generation: &str) {
        if let Some(n) = self.0.lock().get(&Self::key(sc, generation)) {
            n.notify_waiters();
        }
    }

    pub fn forget(&self, sc: &Scope, generation: &str) {
        if let Some(n) = self.0.lock().remove(&Self::key(sc, generation)) {
            n.notify_waiters();
        }
    }
}

/// Counts waiting long polls, per account and in all, so that many of them
/// cannot wear the server down: past either cap a poll is answered
/// `RequestThrottled` (which SDKs retry with back-off) instead of waiting.
#[derive(Clone)]
pub(crate) struct PollSlots {
    inner: Arc<Mutex<(usize, HashMap<String, usize>)>>,
    per_account: usize,
    in_all: usize,
}

/// A waiting poll's slot; given back on drop.
pub(crate) struct PollSlot {
    slots: PollSlots,
    account: String,
}

impl PollSlots {
    fn new(per_account: usize, in_all: usize) -> PollSlots {
        PollSlots {
            inner: Arc::default(),
            per_account,
            in_all,
        }
    }

    pub fn enter(&self, account: &str) -> Option<PollSlot> {
        let mut g = self.inner.lock();
        let (total, by) = &mut *g;
        let n = by.entry(account.to_string()).or_default();
        if *total >= self.in_all || *n >= self.per_account {
            return None;
        }
        *n += 1;
        *total += 1;
        Some(PollSlot {
            slots: self.clone(),
            account: account.to_string(),
        })
    }
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        let mut g = self.slots.inner.lock();
        let (total, by) = &mut *g;
        *total -= 1;
        if let Some(n) = by.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                by.remove(&self.account);
            }
        }
    }
}

#[async_trait::async_trait]
impl SqsApi for Sqs {
    async fn create_queue(
        &self,
        ctx: &RequestContext,
        input: CreateQueueRequest,
    ) -> Result<CreateQueueResult, ApiError> {
        queues::create(self, ctx, input).await
    }

    async fn get_queue_url(
        &self,
        ctx: &RequestContext,
        input: GetQueueUrlRequest,
    ) -> Result<GetQueueUrlResult, ApiError> {
        queues::get_url(self, ctx, input).await
    }

    async fn get_queue_attributes(
        &self,
        ctx: &RequestContext,
        input: GetQueueAttributesRequest,
    ) -> Result<GetQueueAttributesResult, ApiError> {
        queues::get_attributes(self, ctx, input).await
    }

    async fn set_queue_attributes(
        &self,
        ctx: &RequestContext,
        input: SetQueueAttributesRequest,
    ) -> Result<(), ApiError> {
        queues::set_attributes(self, ctx, input).await
    }

    async fn delete_queue(
        &self,
        ctx: &RequestContext,
        input: DeleteQueueRequest,
    ) -> Result<(), ApiError> {
        queues::delete(self, ctx, input).await
    }

    async fn purge_queue(
        &self,
        ctx: &RequestContext,
        input: PurgeQueueRequest,
    ) -> Result<(), ApiError> {
        queues::purge(self, ctx, input).await
    }

    async fn list_queues(
        &self,
        ctx: &RequestContext,
        input: ListQueuesRequest,
    ) -> Result<ListQueuesResult, ApiError> {
        queues::list(self, ctx, input).await
    }

    async fn send_message(
        &self,
        ctx: &RequestContext,
        input: SendMessageRequest,
    ) -> Result<SendMessageResult, ApiError> {
        messages::send(self, ctx, input).await
    }

    async fn send_message_batch(
        &self,
        ctx: &RequestContext,
        input: SendMessageBatchRequest,
    ) -> Result<SendMessageBatchResult, ApiError> {
        messages::send_batch(self, ctx, input).await
    }

    async fn receive_message(
        &self,
        ctx: &RequestContext,
        input: ReceiveMessageRequest,
    ) -> Result<ReceiveMessageResult, ApiError> {
        messages::receive(self, ctx, input).await
    }

    async fn delete_message(
        &self,
        ctx: &RequestContext,
        input: DeleteMessageRequest,
    ) -> Result<(), ApiError> {
        messages::delete(self, ctx, input).await
    }

    async fn delete_message_batch(
        &self,
        ctx: &RequestContext,
        input: DeleteMessageBatchRequest,
    ) -> Result<DeleteMessageBatchResult, ApiError> {
        messages::delete_batch(self, ctx, input).await
    }

    async fn change_message_visibility(
        &self,
        ctx: &RequestContext,
        input: ChangeMessageVisibilityRequest,
    ) -> Result<(), ApiError> {
        messages::change_visibility(self, ctx, input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_polls_are_capped_per_account_and_in_all() {
        let slots = PollSlots::new(2, 3);
        let a1 = slots.enter("a").unwrap();
        let _a2 = slots.enter("a").unwrap();
        assert!(slots.enter("a").is_none(), "per-account cap");
        let _b1 = slots.enter("b").unwrap();
        assert!(slots.enter("c").is_none(), "global cap");
        drop(a1);
        assert!(slots.enter("c").is_some(), "a slot given back is reusable");
    }
}
