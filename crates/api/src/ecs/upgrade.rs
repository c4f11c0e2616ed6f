//! Rewrites of documents stored by earlier versions, run once at start
//! (idempotent: a document already in the current form is left alone).

use super::container_instances::InstanceDoc;
use super::tasks::AssignmentDoc;
use super::Ecs;
use crate::records::{self, kind, load, store_error, try_commit};
use berth_core::EcsError;
use berth_store::Query;

impl Ecs {
    /// Brings stored documents to the current form; answers how many it
    /// rewrote. Run before serving, so placement never reads an old form.
    pub async fn upgrade_stored(&self) -> Result<usize, EcsError> {
        let mut rewritten = 0;
        for scope in self
            .store()
            .scopes(kind::ASSIGNMENT)
            .await
            .map_err(store_error)?
        {
            let q = Query {
                limit: 10_000_000,
                ..Default::default()
            };
            for mut a in records::list::<AssignmentDoc>(self.store(), &scope, &q).await? {
                if !a.value.cluster.is_empty() {
                    continue;
                }
                // Assignments sort under their instance's cluster now.
                let instance =
                    load::<InstanceDoc>(self.store(), &scope, &a.value.instance_id).await?;
                let Some(instance) = instance else {
                    continue;
                };
                a.value.cluster = instance.value.cluster.clone();
                // A conflict means its task moved on meanwhile (stopped, or
                // rewritten in the new form): nothing left to do for it.
                if try_commit(self.store(), &scope, vec![a.write()]).await? {
                    rewritten += 1;
                }
            }
        }
        Ok(rewritten)
    }
}
