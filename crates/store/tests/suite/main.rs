//! One suite for every store backend: each test here runs against SQLite
//! always, and against PostgreSQL when `BERTH_TEST_POSTGRES` names a
//! database (see fixture.rs for how CI is kept from skipping it).

mod concurrency;
mod copy;
mod docs;
mod fixture;
mod log_events;

/// Instantiates every listed test once per backend, as
/// `sqlite::<name>` and `postgres::<name>`.
macro_rules! suite {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = crate::fixture::Fixture::sqlite();
                    crate::$module::$name(&f).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = crate::fixture::Fixture::postgres() else { return };
                    crate::$module::$name(&f).await;
                    f.cleanup().await;
                }
            )*
        }
    };
}

suite!(
    docs::put_get_and_versions,
    docs::batches_are_atomic,
    docs::list_filters_orders_and_pages,
    docs::concurrent_commits_are_grouped_and_all_land,
    log_events::streams_are_created_once_and_appends_need_them,
    log_events::reads_order_by_time_then_sequence_in_both_directions,
    log_events::group_reads_interleave_streams_and_select_them,
    log_events::stream_listings_order_and_continue,
    log_events::expiry_deletes_old_events_in_bounded_steps,
    log_events::deletes_take_streams_and_events_together,
    log_events::concurrent_appends_and_commits_all_land_durably,
    log_events::messages_round_trip_exactly,
    concurrency::exactly_one_writer_wins_each_version,
    concurrency::increments_are_never_lost_and_batches_never_half_apply,
    concurrency::appends_from_several_stores_number_events_once,
    copy::a_store_copies_into_another_and_back_losing_nothing,
);
