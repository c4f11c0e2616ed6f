//! The ECS API (`AmazonEC2ContainerServiceV20141113`).

mod account_settings;
mod agent_channel;
mod capacity_providers;
mod clusters;
mod container_instances;
mod daemons;
mod liveness;
mod paging;
pub mod scaling;
mod services;
mod simulate;
mod sweeper;
mod tags;
mod task_definitions;
pub mod task_role;
mod tasks;
mod upgrade;
mod work;

use crate::locks::StripedLocks;
use berth_core::clock::{Clock, SystemClock};
use berth_core::pagination::TokenCodec;
use berth_store::Store;
use berth_wire::ecs::*;
use berth_wire::{ApiError, RequestContext};
use std::sync::Arc;

/// The ECS control plane over one store.
#[derive(Clone)]
pub struct Ecs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: TokenCodec,
    pub(crate) locks: Arc<StripedLocks>,
    pub(crate) timings: Timings,
    /// What every decision by time and every timestamp written reads.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) liveness: Arc<Liveness>,
    pub(crate) work: Arc<work::WorkSignals>,
    /// This server's URL, for DiscoverPollEndpoint.
    pub(crate) endpoint: String,
    /// When the sweep last looked for expired tasks (monotonic time).
    pub(crate) last_expiry: Arc<parking_lot::Mutex<Option<std::time::Duration>>>,
    /// Services waiting for a reconcile pass.
    pub(crate) services: Arc<services::ServiceScheduler>,
    /// Seals task-role credentials (`task_role`); none: no task gets any.
    pub(crate) sessions: Option<Arc<berth_auth::SessionKey>>,
    /// Each cluster's instances and reservations as placement reads them.
    pub(crate) placement: Arc<tasks::launch::PlacementIndex>,
    /// Simulated hosts (`simulate`), when the server was asked for them.
    pub(crate) simulated: Arc<std::sync::OnceLock<Arc<simulate::Simulated>>>,
}

pub use agent_channel::MANAGED_CLUSTER;
pub(crate) use container_instances::InstanceDoc;
use liveness::Liveness;
pub use liveness::Timings;
pub use simulate::{Simulation, SIMULATED_ATTRIBUTE};
pub use sweeper::Swept;
pub(crate) use tasks::launch::{placement_written, touches_placement};

impl Ecs {
    /// `token_key` signs pagination tokens; keep it stable across restarts
    /// so tokens handed out before a restart stay valid.
    pub fn new(store: Arc<dyn Store>, token_key: Vec<u8>) -> Self {
        Self::with_timings(store, token_key, Timings::default())
    }

    pub fn with_timings(store: Arc<dyn Store>, token_key: Vec<u8>, timings: Timings) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let grace = timings.agent_disconnect_grace;
        Ecs {
            store,
            tokens: TokenCodec::new(token_key),
            locks: Arc::default(),
            timings,
            liveness: Arc::new(Liveness::new(clock.clone(), grace)),
            clock,
            work: Arc::default(),
            endpoint: String::new(),
            last_expiry: Arc::default(),
            services: Arc::default(),
            sessions: None,
            placement: Arc::default(),
            simulated: Arc::default(),
        }
    }

    /// Decides by `clock` instead of the system's (tests use a
    /// `ManualClock`). Call before any agent is seen: liveness starts over.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.liveness = Arc::new(Liveness::new(
            clock.clone(),
            self.timings.agent_disconnect_grace,
        ));
        self.clock = clock;
        self
    }

    /// Wall time now, for the timestamps written on resources.
    pub(crate) fn now(&self) -> berth_wire::Timestamp {
        self.clock.now()
    }

    /// Sets the URL DiscoverPollEndpoint answers with.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Serializes this process's writers of one resource (see `locks`).
    pub(crate) async fn lock(
        &self,
        ctx: &RequestContext,
        kind: &str,
        id: &str,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks
            .lock(&[&ctx.account_id, &ctx.region, kind, id])
            .await
    }
}

/// Routes each implemented operation to its module; everything else keeps
/// the generated default, a modeled `UnsupportedFeatureException` naming it.
#[async_trait::async_trait]
impl EcsApi for Ecs {
    async fn create_cluster(
        &self,
        ctx: &RequestContext,
        input: CreateClusterRequest,
    ) -> Result<CreateClusterResponse, ApiError> {
        Ok(clusters::create(self, ctx, input).await?)
    }
    async fn describe_clusters(
        &self,
        ctx: &RequestContext,
        input: DescribeClustersRequest,
    ) -> Result<DescribeClustersResponse, ApiError> {
        Ok(clusters::describe(self, ctx, input).await?)
    }
    async fn list_clusters(
        &self,
        ctx: &RequestContext,
        input: ListClustersRequest,
    ) -> Result<ListClustersResponse, ApiError> {
        Ok(clusters::list(self, ctx, input).await?)
    }
    async fn update_cluster(
        &self,
        ctx: &RequestContext,
        input: UpdateClusterRequest,
    ) -> Result<UpdateClusterResponse, ApiError> {
        Ok(clusters::update(self, ctx, input).await?)
    }
    async fn update_cluster_settings(
        &self,
        ctx: &RequestContext,
        input: UpdateClusterSettingsRequest,
    ) -> Result<UpdateClusterSettingsResponse, ApiError> {
        Ok(clusters::update_settings(self, ctx, input).await?)
    }
    async fn delete_cluster(
        &self,
        ctx: &RequestContext,
        input: DeleteClusterRequest,
    ) -> Result<DeleteClusterResponse, ApiError> {
        Ok(clusters::delete(self, ctx, input).await?)
    }
    async fn create_capacity_provider(
        &self,
        ctx: &RequestContext,
        input: CreateCapacityProviderRequest,
    ) -> Result<CreateCapacityProviderResponse, ApiError> {
        Ok(capacity_providers::create(self, ctx, input).await?)
    }
    async fn update_capacity_provider(
        &self,
        ctx: &RequestContext,
        input: UpdateCapacityProviderRequest,
    ) -> Result<UpdateCapacityProviderResponse, ApiError> {
        Ok(capacity_providers::update(self, ctx, input).await?)
    }
    async fn delete_capacity_provider(
        &self,
        ctx: &RequestContext,
        input: DeleteCapacityProviderRequest,
    ) -> Result<DeleteCapacityProviderResponse, ApiError> {
        Ok(capacity_providers::delete(self, ctx, input).await?)
    }
    async fn describe_capacity_providers(
        &self,
        ctx: &RequestContext,
        input: DescribeCapacityProvidersRequest,
    ) -> Result<DescribeCapacityProvidersResponse, ApiError> {
        Ok(capacity_providers::describe(self, ctx, input).await?)
    }
    async fn put_cluster_capacity_providers(
        &self,
        ctx: &RequestContext,
        input: PutClusterCapacityProvidersRequest,
    ) -> Result<PutClusterCapacityProvidersResponse, ApiError> {
        Ok(clusters::put_capacity_providers(self, ctx, input).await?)
    }
    async fn register_task_definition(
        &self,
        ctx: &RequestContext,
        input: RegisterTaskDefinitionRequest,
    ) -> Result<RegisterTaskDefinitionResponse, ApiError> {
        Ok(task_definitions::register(self, ctx, input).await?)
    }
    async fn describe_task_definition(
        &self,
        ctx: &RequestContext,
        input: DescribeTaskDefinitionRequest,
    ) -> Result<DescribeTaskDefinitionResponse, ApiError> {
        Ok(task_definitions::describe(self, ctx, input).await?)
    }
    async fn list_task_definitions(
        &self,
        ctx: &RequestContext,
        input: ListTaskDefinitionsRequest,
    ) -> Result<ListTaskDefinitionsResponse, ApiError> {
        Ok(task_definitions::list(self, ctx, input).await?)
    }
    async fn list_task_definition_families(
        &self,
        ctx: &RequestContext,
        input: ListTaskDefinitionFamiliesRequest,
    ) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
        Ok(task_definitions::list_families(self, ctx, input).await?)
    }
    async fn deregister_task_definition(
        &self,
        ctx: &RequestContext,
        input: DeregisterTaskDefinitionRequest,
    ) -> Result<DeregisterTaskDefinitionResponse, ApiError> {
        Ok(task_definitions::deregister(self, ctx, input).await?)
    }
    async fn delete_task_definitions(
        &self,
        ctx: &RequestContext,
        input: DeleteTaskDefinitionsRequest,
    ) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
        Ok(task_definitions::delete(self, ctx, input).await?)
    }
    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceRequest,
    ) -> Result<TagResourceResponse, ApiError> {
        Ok(tags::tag(self, ctx, input).await?)
    }
    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, ApiError> {
        Ok(tags::untag(self, ctx, input).await?)
    }
    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse, ApiError> {
        Ok(tags::list(self, ctx, input).await?)
    }
    async fn put_account_setting(
        &self,
        ctx: &RequestContext,
        input: PutAccountSettingRequest,
    ) -> Result<PutAccountSettingResponse, ApiError> {
        Ok(account_settings::put(self, ctx, input).await?)
    }
    async fn put_account_setting_default(
        &self,
        ctx: &RequestContext,
        input: PutAccountSettingDefaultRequest,
    ) -> Result<PutAccountSettingDefaultResponse, ApiError> {
        Ok(account_settings::put_default(self, ctx, input).await?)
    }
    async fn delete_account_setting(
        &self,
        ctx: &RequestContext,
        input: DeleteAccountSettingRequest,
    ) -> Result<DeleteAccountSettingResponse, ApiError> {
        Ok(account_settings::delete(self, ctx, input).await?)
    }
    async fn list_account_settings(
        &self,
        ctx: &RequestContext,
        input: ListAccountSettingsRequest,
    ) -> Result<ListAccountSettingsResponse, ApiError> {
        Ok(account_settings::list(self, ctx, input).await?)
    }
    async fn register_container_instance(
        &self,
        ctx: &RequestContext,
        input: RegisterContainerInstanceRequest,
    ) -> Result<RegisterContainerInstanceResponse, ApiError> {
        Ok(container_instances::register(self, ctx, input).await?)
    }
    async fn deregister_container_instance(
        &self,
        ctx: &RequestContext,
        input: DeregisterContainerInstanceRequest,
    ) -> Result<DeregisterContainerInstanceResponse, ApiError> {
        Ok(container_instances::deregister(self, ctx, input).await?)
    }
    async fn describe_container_instances(
        &self,
        ctx: &RequestContext,
        input: DescribeContainerInstancesRequest,
    ) -> Result<DescribeContainerInstancesResponse, ApiError> {
        Ok(container_instances::describe(self, ctx, input).await?)
    }
    async fn list_container_instances(
        &self,
        ctx: &RequestContext,
        input: ListContainerInstancesRequest,
    ) -> Result<ListContainerInstancesResponse, ApiError> {
        Ok(container_instances::list(self, ctx, input).await?)
    }
    async fn update_container_instances_state(
        &self,
        ctx: &RequestContext,
        input: UpdateContainerInstancesStateRequest,
    ) -> Result<UpdateContainerInstancesStateResponse, ApiError> {
        Ok(container_instances::update_state(self, ctx, input).await?)
    }
    async fn put_attributes(
        &self,
        ctx: &RequestContext,
        input: PutAttributesRequest,
    ) -> Result<PutAttributesResponse, ApiError> {
        Ok(container_instances::put_attributes(self, ctx, input).await?)
    }
    async fn delete_attributes(
        &self,
        ctx: &RequestContext,
        input: DeleteAttributesRequest,
    ) -> Result<DeleteAttributesResponse, ApiError> {
        Ok(container_instances::delete_attributes(self, ctx, input).await?)
    }
    async fn list_attributes(
        &self,
        ctx: &RequestContext,
        input: ListAttributesRequest,
    ) -> Result<ListAttributesResponse, ApiError> {
        Ok(container_instances::list_attributes(self, ctx, input).await?)
    }
    async fn run_task(
        &self,
        ctx: &RequestContext,
        input: RunTaskRequest,
    ) -> Result<RunTaskResponse, ApiError> {
        Ok(tasks::run(self, ctx, input).await?)
    }
    async fn start_task(
        &self,
        ctx: &RequestContext,
        input: StartTaskRequest,
    ) -> Result<StartTaskResponse, ApiError> {
        Ok(tasks::start(self, ctx, input).await?)
    }
    async fn stop_task(
        &self,
        ctx: &RequestContext,
        input: StopTaskRequest,
    ) -> Result<StopTaskResponse, ApiError> {
        Ok(tasks::stop(self, ctx, input).await?)
    }
    async fn describe_tasks(
        &self,
        ctx: &RequestContext,
        input: DescribeTasksRequest,
    ) -> Result<DescribeTasksResponse, ApiError> {
        Ok(tasks::describe(self, ctx, input).await?)
    }
    async fn list_tasks(
        &self,
        ctx: &RequestContext,
        input: ListTasksRequest,
    ) -> Result<ListTasksResponse, ApiError> {
        Ok(tasks::list(self, ctx, input).await?)
    }
    async fn submit_task_state_change(
        &self,
        ctx: &RequestContext,
        input: SubmitTaskStateChangeRequest,
    ) -> Result<SubmitTaskStateChangeResponse, ApiError> {
        Ok(tasks::submit_task_state_change(self, ctx, input).await?)
    }
    async fn submit_container_state_change(
        &self,
        ctx: &RequestContext,
        input: SubmitContainerStateChangeRequest,
    ) -> Result<SubmitContainerStateChangeResponse, ApiError> {
        Ok(tasks::submit_container_state_change(self, ctx, input).await?)
    }
    async fn discover_poll_endpoint(
        &self,
        _ctx: &RequestContext,
        _input: DiscoverPollEndpointRequest,
    ) -> Result<DiscoverPollEndpointResponse, ApiError> {
        Ok(container_instances::discover_poll_endpoint(&self.endpoint))
    }
    async fn create_service(
        &self,
        ctx: &RequestContext,
        input: CreateServiceRequest,
    ) -> Result<CreateServiceResponse, ApiError> {
        Ok(services::create(self, ctx, input).await?)
    }
    async fn update_service(
        &self,
        ctx: &RequestContext,
        input: UpdateServiceRequest,
    ) -> Result<UpdateServiceResponse, ApiError> {
        Ok(services::update(self, ctx, input).await?)
    }
    async fn delete_service(
        &self,
        ctx: &RequestContext,
        input: DeleteServiceRequest,
    ) -> Result<DeleteServiceResponse, ApiError> {
        Ok(services::delete(self, ctx, input).await?)
    }
    async fn describe_services(
        &self,
        ctx: &RequestContext,
        input: DescribeServicesRequest,
    ) -> Result<DescribeServicesResponse, ApiError> {
        Ok(services::describe(self, ctx, input).await?)
    }
    async fn list_services(
        &self,
        ctx: &RequestContext,
        input: ListServicesRequest,
    ) -> Result<ListServicesResponse, ApiError> {
        Ok(services::list(self, ctx, input).await?)
    }
    async fn list_services_by_namespace(
        &self,
        ctx: &RequestContext,
        input: ListServicesByNamespaceRequest,
    ) -> Result<ListServicesByNamespaceResponse, ApiError> {
        Ok(services::list_by_namespace(self, ctx, input).await?)
    }
    async fn list_service_deployments(
        &self,
        ctx: &RequestContext,
        input: ListServiceDeploymentsRequest,
    ) -> Result<ListServiceDeploymentsResponse, ApiError> {
        Ok(services::list_deployments(self, ctx, input).await?)
    }
    async fn describe_service_deployments(
        &self,
        ctx: &RequestContext,
        input: DescribeServiceDeploymentsRequest,
    ) -> Result<DescribeServiceDeploymentsResponse, ApiError> {
        Ok(services::describe_deployments(self, ctx, input).await?)
    }
    async fn describe_service_revisions(
        &self,
        ctx: &RequestContext,
        input: DescribeServiceRevisionsRequest,
    ) -> Result<DescribeServiceRevisionsResponse, ApiError> {
        Ok(services::describe_revisions(self, ctx, input).await?)
    }
    async fn stop_service_deployment(
        &self,
        ctx: &RequestContext,
        input: StopServiceDeploymentRequest,
    ) -> Result<StopServiceDeploymentResponse, ApiError> {
        Ok(services::stop_deployment(self, ctx, input).await?)
    }
    async fn create_task_set(
        &self,
        ctx: &RequestContext,
        input: CreateTaskSetRequest,
    ) -> Result<CreateTaskSetResponse, ApiError> {
        Ok(services::create_task_set(self, ctx, input).await?)
    }
    async fn update_task_set(
        &self,
        ctx: &RequestContext,
        input: UpdateTaskSetRequest,
    ) -> Result<UpdateTaskSetResponse, ApiError> {
        Ok(services::update_task_set(self, ctx, input).await?)
    }
    async fn delete_task_set(
        &self,
        ctx: &RequestContext,
        input: DeleteTaskSetRequest,
    ) -> Result<DeleteTaskSetResponse, ApiError> {
        Ok(services::delete_task_set(self, ctx, input).await?)
    }
    async fn describe_task_sets(
        &self,
        ctx: &RequestContext,
        input: DescribeTaskSetsRequest,
    ) -> Result<DescribeTaskSetsResponse, ApiError> {
        Ok(services::describe_task_sets(self, ctx, input).await?)
    }
    async fn update_service_primary_task_set(
        &self,
        ctx: &RequestContext,
        input: UpdateServicePrimaryTaskSetRequest,
    ) -> Result<UpdateServicePrimaryTaskSetResponse, ApiError> {
        Ok(services::update_primary_task_set(self, ctx, input).await?)
    }
    async fn update_task_protection(
        &self,
        ctx: &RequestContext,
        input: UpdateTaskProtectionRequest,
    ) -> Result<UpdateTaskProtectionResponse, ApiError> {
        Ok(tasks::protection::update(self, ctx, input).await?)
    }
    async fn get_task_protection(
        &self,
        ctx: &RequestContext,
        input: GetTaskProtectionRequest,
    ) -> Result<GetTaskProtectionResponse, ApiError> {
        Ok(tasks::protection::get(self, ctx, input).await?)
    }
    async fn register_daemon_task_definition(
        &self,
        ctx: &RequestContext,
        input: RegisterDaemonTaskDefinitionRequest,
    ) -> Result<RegisterDaemonTaskDefinitionResponse, ApiError> {
        Ok(daemons::task_definitions::register(self, ctx, input).await?)
    }
    async fn describe_daemon_task_definition(
        &self,
        ctx: &RequestContext,
        input: DescribeDaemonTaskDefinitionRequest,
    ) -> Result<DescribeDaemonTaskDefinitionResponse, ApiError> {
        Ok(daemons::task_definitions::describe(self, ctx, input).await?)
    }
    async fn list_daemon_task_definitions(
        &self,
        ctx: &RequestContext,
        input: ListDaemonTaskDefinitionsRequest,
    ) -> Result<ListDaemonTaskDefinitionsResponse, ApiError> {
        Ok(daemons::task_definitions::list(self, ctx, input).await?)
    }
    async fn delete_daemon_task_definition(
        &self,
        ctx: &RequestContext,
        input: DeleteDaemonTaskDefinitionRequest,
    ) -> Result<DeleteDaemonTaskDefinitionResponse, ApiError> {
        Ok(daemons::task_definitions::delete(self, ctx, input).await?)
    }
    async fn create_daemon(
        &self,
        ctx: &RequestContext,
        input: CreateDaemonRequest,
    ) -> Result<CreateDaemonResponse, ApiError> {
        Ok(daemons::create(self, ctx, input).await?)
    }
    async fn update_daemon(
        &self,
        ctx: &RequestContext,
        input: UpdateDaemonRequest,
    ) -> Result<UpdateDaemonResponse, ApiError> {
        Ok(daemons::update(self, ctx, input).await?)
    }
    async fn delete_daemon(
        &self,
        ctx: &RequestContext,
        input: DeleteDaemonRequest,
    ) -> Result<DeleteDaemonResponse, ApiError> {
        Ok(daemons::delete(self, ctx, input).await?)
    }
    async fn describe_daemon(
        &self,
        ctx: &RequestContext,
        input: DescribeDaemonRequest,
    ) -> Result<DescribeDaemonResponse, ApiError> {
        Ok(daemons::describe(self, ctx, input).await?)
    }
    async fn list_daemons(
        &self,
        ctx: &RequestContext,
        input: ListDaemonsRequest,
    ) -> Result<ListDaemonsResponse, ApiError> {
        Ok(daemons::list(self, ctx, input).await?)
    }
    async fn describe_daemon_deployments(
        &self,
        ctx: &RequestContext,
        input: DescribeDaemonDeploymentsRequest,
    ) -> Result<DescribeDaemonDeploymentsResponse, ApiError> {
        Ok(daemons::describe_deployments(self, ctx, input).await?)
    }
    async fn list_daemon_deployments(
        &self,
        ctx: &RequestContext,
        input: ListDaemonDeploymentsRequest,
    ) -> Result<ListDaemonDeploymentsResponse, ApiError> {
        Ok(daemons::list_deployments(self, ctx, input).await?)
    }
    async fn describe_daemon_revisions(
        &self,
        ctx: &RequestContext,
        input: DescribeDaemonRevisionsRequest,
    ) -> Result<DescribeDaemonRevisionsResponse, ApiError> {
        Ok(daemons::describe_revisions(self, ctx, input).await?)
    }
}
