//! Pagination shared by the List operations: a token names the sort key of
//! the last item returned, bound to the operation, caller and filters.

use super::Ecs;
use berth_core::pagination::PageKey;
use berth_core::EcsError;
use berth_wire::RequestContext;

pub struct Pager<'a> {
    ecs: &'a Ecs,
    key: PageKey<'a>,
    /// Items per page.
    pub limit: usize,
}

impl Ecs {
    pub(crate) fn pager<'a>(
        &'a self,
        ctx: &'a RequestContext,
        operation: &'a str,
        filter: &'a str,
        limit: usize,
    ) -> Pager<'a> {
        let key = PageKey {
            operation,
            account: &ctx.account_id,
            region: &ctx.region,
            filter,
        };
        Pager {
            ecs: self,
            key,
            limit,
        }
    }
}

impl Pager<'_> {
    /// The sort key to continue after, from the caller's `nextToken`.
    pub fn start(&self, token: Option<&str>) -> Result<Option<String>, EcsError> {
        token
            .map(|t| self.ecs.tokens.decode(&self.key, t))
            .transpose()
    }

    /// Cuts `items` (read with one more than a page) to the page, and
    /// returns the token for the rest, if there is more.
    pub fn finish<T>(&self, items: &mut Vec<T>, sort_key: impl Fn(&T) -> String) -> Option<String> {
        (items.len() > self.limit).then(|| {
            items.truncate(self.limit);
            self.ecs
                .tokens
                .encode(&self.key, &sort_key(&items[self.limit - 1]))
        })
    }
}
